"""Helpers for the production tests: tiny generator artefacts and dataset readers."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_generator(path: Path, kind: str = "calo", particle: str = "eplus") -> Path:
    """A tiny, randomly initialised generator artefact (seeded, so every test sees the same weights)."""
    import torch

    from gansim.config import load_config
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    if kind == "calo":
        over = ["model.latent_dim=8", "model.gen_channels=2", "model.attention=false", f"data.particle={particle}"]
    else:
        over = ["model.name=lagan", "data.particle=jets", "model.latent_dim=8",
                "model.gen_channels=2"]
    cfg = load_config(REPO / "configs" / "debug.yaml", over)
    torch.manual_seed(7)
    return save_generator(path, build_generator(cfg), cfg)


def read_all(dataset: Path) -> dict[str, np.ndarray]:
    with h5py.File(dataset, "r") as f:
        return {k: f[k][...] for k in f.keys()}


def chunk_sums(out: Path) -> dict[str, str]:
    m = json.loads((out / "manifest.json").read_text())
    return {k: v["sha256"] for k, v in m["chunks"].items()}


def mpiexec() -> str | None:
    """The mpiexec matching this interpreter's mpi4py: the venv's Open MPI wheel, else the system one."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def mpi_cmd(n: int, *args: str) -> list[str]:
    exe = mpiexec()
    assert exe is not None
    return [exe, "--oversubscribe", "-n", str(n), sys.executable, "-m", "gansim.cli", *args]


MPI_VARS = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", "PYTHONUNBUFFERED": "1",
            "OMPI_MCA_rmaps_base_oversubscribe": "1"}


def mpi_env() -> dict[str, str]:
    return {**os.environ, **MPI_VARS, "OMP_NUM_THREADS": "1"}


# -- fault injection through gansim.produce.hooks (no environment variable is read by production code) -----------

def install_fault(spec: str) -> None:
    """Add a hook for one fault: kill:RANK:N (SIGKILL while committing that rank's (N+1)-th chunk, its file written
    under the temporary name), killchunk:RANK:N (SIGKILL when that rank starts its (N+1)-th chunk; any layout),
    raise:RANK:N (an error when that rank starts its (N+1)-th chunk, inside the chunk
    loop), crash:RANK (an error on that rank after its chunk loop, outside every agreed path), enospc:RANK:N (the
    (N+1)-th commit fails with errno 28)."""
    import errno
    import signal

    from gansim.produce import hooks

    kind, rank, *rest = spec.split(":")
    n = int(rest[0]) if rest else 0
    started = {"chunks": 0}

    def hook(event: str, **info: object) -> None:
        if info.get("rank", -1) != int(rank):
            return
        if kind == "kill" and event == "commit" and info["written"] == n:
            os.kill(os.getpid(), signal.SIGKILL)
        if kind in ("raise", "killchunk") and event == "chunk":
            started["chunks"] += 1
            if started["chunks"] == n + 1 and kind == "killchunk":
                os.kill(os.getpid(), signal.SIGKILL)
            if started["chunks"] == n + 1:
                raise RuntimeError(f"injected failure in chunk {info['chunk']}")
        if kind == "crash" and event == "finish":
            raise RuntimeError("injected crash after the chunk loop")
        if kind == "enospc" and event == "commit" and info["written"] == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    hooks.HOOKS.append(hook)


def fault_cmd(spec: str, *args: str) -> list[str]:
    """`python -m tests.produce_helpers SPEC gansim-args...`: the CLI with one fault installed."""
    return [sys.executable, "-m", "tests.produce_helpers", spec, *args]


def mpi_fault_cmd(n: int, spec: str, *args: str) -> list[str]:
    exe = mpiexec()
    assert exe is not None
    return [exe, "--oversubscribe", "-n", str(n), *fault_cmd(spec, *args)]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment with thread-count variables removed (torch picks its default), tests/ importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**env, **extra}


if __name__ == "__main__":
    install_fault(sys.argv[1])
    from gansim.cli import main

    sys.exit(main(sys.argv[2:]))


def synthetic_run(out: Path, chunks: int, per_chunk: int, files_per_dir: int, compression: str = "none") -> Any:
    """A complete shards run of `chunks` tiny chunk files written by the real writer, manifest and index code, with
    cheap known values instead of a generator: every value of event i is i + 1 (so a fill value can never pass)."""
    import gansim.produce.writer as writer
    from gansim.produce.layout import build_index
    from gansim.produce.manifest import new_manifest, save_manifest
    from gansim.produce.plan import Plan

    plan = Plan(kind="calo", particle="eplus", events=chunks * per_chunk, chunk_size=per_chunk, seed=0,
                condition="uniform:1,100", condition_sha256="", batch_size=per_chunk, layout="shards",
                dtype="float32", precision="lossless", compression=compression, h5_rows=256,
                files_per_dir=files_per_dir, generator_sha256="synthetic", device_type="cpu", amp=False, compile=False)
    manifest = new_manifest(plan, {"sha256": "synthetic"}, {})
    real_fsync, writer.fsync_path = writer.fsync_path, lambda path: None  # thousands of fsyncs: not what is tested
    try:
        _synthetic_chunks(out, plan, manifest, chunks)
    finally:
        writer.fsync_path = real_fsync
    manifest["complete"] = True
    save_manifest(out, manifest)
    build_index(out, plan, {"particle": "eplus"})
    return plan


def _synthetic_chunks(out: Path, plan: Any, manifest: dict[str, Any], chunks: int) -> None:
    from gansim.produce.storage import block_digest, keys_for
    from gansim.produce.writer import _OpenChunk

    for k in range(chunks):
        start, stop = plan.chunk_range(k)
        ids = np.arange(start + 1, stop + 1, dtype=np.float32)
        block = {key: np.broadcast_to(ids.reshape(-1, *([1] * len(shape))), (stop - start, *shape)).copy()
                 for key, shape in keys_for("calo").items()}
        chunk = _OpenChunk(out, plan, k)
        chunk.append(0, {key: (None, block_digest(a), a) for key, a in block.items()})
        sha, nbytes = chunk.commit({"chunk": k, "start": start, "events": stop - start, "plan_id": plan.plan_id()})
        manifest["chunks"][str(k)] = {"chunk": k, "events": stop - start, "sha256": sha, "bytes": nbytes, "rank": 0,
                                      "file": str(chunk.final.relative_to(out))}
