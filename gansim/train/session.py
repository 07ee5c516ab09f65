"""Where a training loop runs: a Ray Train worker, or plain torch.distributed / one process (tests, benches)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from gansim.train.checkpoint import STATE_FILE, latest_checkpoint, load_state


class Session:
    """Rank information plus the two services the loop needs: report(metrics, checkpoint) and the last state."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def device(self) -> torch.device:
        if torch.cuda.is_available():
            return torch.device("cuda", self.local_rank % torch.cuda.device_count())
        return torch.device("cpu")

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        raise NotImplementedError

    def restore_state(self) -> dict[str, Any] | None:
        raise NotImplementedError


class RaySession(Session):
    """Inside ray.train.torch.TorchTrainer: the process group is already set up by Ray."""

    def __init__(self) -> None:
        import ray.train

        ctx = ray.train.get_context()
        self.rank = ctx.get_world_rank()
        self.world_size = ctx.get_world_size()
        self.local_rank = ctx.get_local_rank()

    @property
    def device(self) -> torch.device:
        import ray.train.torch

        return ray.train.torch.get_device()

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        import ray.train

        ckpt = ray.train.Checkpoint.from_directory(str(checkpoint_dir)) if checkpoint_dir else None
        name = checkpoint_dir.name if checkpoint_dir else None
        # report is a collective in Train V2: every rank calls it, only rank 0 hands over a checkpoint.
        ray.train.report(metrics, checkpoint=ckpt, checkpoint_dir_name=name)

    def restore_state(self) -> dict[str, Any] | None:
        import ray.train

        ckpt = ray.train.get_checkpoint()
        if ckpt is None:
            return None
        with ckpt.as_directory() as d:
            return load_state(Path(d) / STATE_FILE)


class LocalSession(Session):
    """torch.distributed (if initialised) or a single process; checkpoints kept under `root` like Ray does."""

    def __init__(self, root: str | Path, num_to_keep: int = 3) -> None:
        self.root = Path(root)
        self.num_to_keep = num_to_keep
        self.reports: list[dict[str, Any]] = []
        if dist.is_available() and dist.is_initialized():
            self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
            self.local_rank = self.rank

    def report(self, metrics: dict[str, Any], checkpoint_dir: Path | None) -> None:
        self.reports.append(dict(metrics))
        if checkpoint_dir is not None and self.rank == 0:
            self.root.mkdir(parents=True, exist_ok=True)
            dest = self.root / checkpoint_dir.name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(checkpoint_dir, dest)
            kept = sorted(p for p in self.root.glob("checkpoint_*") if (p / STATE_FILE).is_file())
            for old in kept[: max(0, len(kept) - self.num_to_keep)]:
                shutil.rmtree(old, ignore_errors=True)
        if dist.is_available() and dist.is_initialized():
            dist.barrier()

    def restore_state(self) -> dict[str, Any] | None:
        path = latest_checkpoint(self.root)
        return load_state(path / STATE_FILE) if path else None


def scratch_dir() -> Path:
    """A private temporary directory for one checkpoint before it is handed to storage."""
    return Path(tempfile.mkdtemp(prefix="gansim-ckpt-"))
