"""Training checkpoints: what state.pt holds (G, D, G-EMA, optimisers, counters, RNG, config), written and read."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.atomic import atomic_path
from gansim.errors import GansimError, brief

STATE_FILE = "state.pt"
STATE_FORMAT = "gansim-train-state/1"
CKPT_PREFIX = "checkpoint_epoch_"


def checkpoint_name(epoch: int) -> str:
    """Zero-padded so that lexical order is epoch order."""
    return f"{CKPT_PREFIX}{epoch:06d}"


def rng_state() -> dict[str, Any]:
    """torch / numpy / python RNG states as plain types and tensors (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def all_finite(obj: Any) -> bool:
    """True when every floating tensor nested in obj is finite (refuse to write NaN checkpoints)."""
    if isinstance(obj, torch.Tensor):
        return not obj.is_floating_point() or bool(torch.isfinite(obj).all())
    if isinstance(obj, dict):
        return all(all_finite(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return all(all_finite(v) for v in obj)
    return True


def save_state(directory: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write directory/state.pt; raises if any weight or optimiser moment is non-finite."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not all_finite({k: state[k] for k in ("G", "D", "G_ema", "opt_g", "opt_d") if k in state}):
        raise GansimError("refusing to write a checkpoint with non-finite weights")
    path = directory / STATE_FILE
    with atomic_path(path) as tmp:
        torch.save({"format": STATE_FORMAT, **state}, tmp)
    return path


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load state.pt with weights_only=True; GansimError naming the file on anything unexpected."""
    path = Path(path)
    if not path.is_file():
        raise GansimError(f"checkpoint file not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt, truncated or not a torch file: torch raises many types
        raise GansimError(f"{path}: not a readable gansim checkpoint (truncated or damaged? {brief(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise GansimError(f"{path}: not a gansim training checkpoint (format {STATE_FORMAT} expected)")
    return state


def list_checkpoints(root: str | Path) -> list[Path]:
    """Checkpoint directories (holding state.pt) below root, oldest epoch first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p.parent for p in root.rglob(f"{CKPT_PREFIX}*/{STATE_FILE}")]
    return sorted(found, key=lambda p: (p.name, str(p)))


def latest_checkpoint(root: str | Path) -> Path | None:
    found = list_checkpoints(root)
    return found[-1] if found else None


def best_checkpoint(root: str | Path, metric: str = "fidelity") -> Path:
    """The checkpoint below `root` with the lowest finite `metric` (the per-epoch validation fidelity score):
    GAN training is not monotone, so the last epoch is not always the best generator."""
    scored = []
    for c in list_checkpoints(root):
        value = load_state(c / STATE_FILE).get("metrics", {}).get(metric)
        if value is not None and math.isfinite(value):
            scored.append((float(value), c.name, c))
    if not scored:
        raise GansimError(f"{root}: no checkpoint records a finite '{metric}' (validation was off?); "
                          "export a checkpoint by name instead")
    return min(scored)[2] / STATE_FILE


def resolve_checkpoint(path: str | Path) -> Path:
    """A state.pt file, a checkpoint directory, or a run directory (→ its latest checkpoint) → state.pt path."""
    path = Path(path)
    if path.is_file():
        return path
    if (path / STATE_FILE).is_file():
        return path / STATE_FILE
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise GansimError(f"{path}: no checkpoint ({CKPT_PREFIX}*/{STATE_FILE}) found in this directory")
        return latest / STATE_FILE
    raise GansimError(f"checkpoint not found: {path}")


# Config sections that must match to continue from a checkpoint (others, e.g. epochs or lr, may change).
RESUME_MUST_MATCH = ("model",)


def check_resumable(cfg: Any, restored: dict[str, Any]) -> None:
    """GansimError when the checkpoint was trained with a model config other than cfg's."""
    old = restored.get("config", {})
    new = cfg.to_dict()
    for section in RESUME_MUST_MATCH:
        if old.get(section) != new[section]:
            diff = sorted(k for k in new[section] if old.get(section, {}).get(k) != new[section][k])
            raise GansimError(f"the checkpoint was trained with a different {section} config ({', '.join(diff)}); "
                              "use --fresh to start over or a different --out")


def _bare(module: Any) -> Any:
    return module.module if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module


def pack(trainer: Any, metrics: dict[str, float]) -> dict[str, Any]:
    """Everything a Trainer needs to continue, as plain types and tensors (loadable with weights_only=True)."""
    return {
        "G": _bare(trainer.G).state_dict(), "D": _bare(trainer.D).state_dict(),
        "G_ema": trainer.g_ema.state_dict() if trainer.g_ema is not None else None,
        "opt_g": trainer.opt_g.state_dict(), "opt_d": trainer.opt_d.state_dict(),
        "step": trainer.step, "epoch": trainer.epoch, "nonfinite_total": trainer.nonfinite_total,
        "condition_range": list(trainer.condition_range),
        "rng": rng_state(), "config": trainer.cfg.to_dict(),
        "metrics": {k: float(v) for k, v in metrics.items()},
    }


def restore(trainer: Any, state: dict[str, Any]) -> None:
    """Load a packed state into a freshly built Trainer; this run's learning rates and betas win."""
    _bare(trainer.G).load_state_dict(state["G"])
    _bare(trainer.D).load_state_dict(state["D"])
    if trainer.g_ema is not None:
        trainer.g_ema.load_state_dict(state["G_ema"] if state.get("G_ema") is not None else state["G"])
    trainer.opt_g.load_state_dict(state["opt_g"])
    trainer.opt_d.load_state_dict(state["opt_d"])
    t = trainer.cfg.train
    for opt, lr in ((trainer.opt_g, t.lr_g), (trainer.opt_d, t.lr_d)):
        for group in opt.param_groups:
            group["lr"], group["betas"] = lr, (t.beta1, t.beta2)
    trainer.step, trainer.epoch = int(state["step"]), int(state["epoch"])
    trainer.nonfinite_total = int(state.get("nonfinite_total", 0))
    if state.get("condition_range"):
        trainer.condition_range = [float(x) for x in state["condition_range"]]
    if trainer.rank == 0 and state.get("rng"):
        set_rng_state(state["rng"])
