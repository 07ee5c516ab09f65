"""Checkpoint → generator-only artefact (gansim.models.artifact format), EMA weights when present."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gansim.config import ConfigError, config_from_dict
from gansim.errors import GansimError
from gansim.paths import refuse_overwrite
from gansim.train.checkpoint import best_checkpoint, load_state, resolve_checkpoint


def _check_out(out: Path) -> None:
    """An existing --out is replaced only when it is a generator artefact (an earlier export), never another file:
    a checkpoint of the run, the training data or anything else of the user's."""
    from gansim.models.artifact import is_generator_file

    if out.is_dir():
        raise GansimError(f"--out {out} is a directory; give a file name such as {out / 'generator.pt'}")
    if out.exists() and not is_generator_file(out):
        raise GansimError(f"--out {out} exists and is not a gansim generator artefact; export replaces only "
                          "earlier exports: remove it or choose another name")


def export_checkpoint(checkpoint: str | Path, out: str | Path, use_ema: bool = True, best: bool = False
                      ) -> tuple[Path, dict[str, Any]]:
    """Write the generator of CHECKPOINT (state.pt, its directory, or a run directory → latest, or with `best`
    the checkpoint of lowest validation fidelity score below it) to `out`.

    Returns (artefact path, extra dict stored in it: source checkpoint, epoch, step, ema, metrics).
    """
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    state_path = best_checkpoint(checkpoint) if best else resolve_checkpoint(checkpoint)
    refuse_overwrite(out, state_path)
    _check_out(Path(out))
    state = load_state(state_path)
    if not isinstance(state.get("config"), dict):
        raise GansimError(f"{state_path}: the checkpoint holds no config (not written by gansim train)")
    for key in ("G", "epoch", "step"):
        if key not in state:
            raise GansimError(f"{state_path}: the checkpoint lacks '{key}' (not written by gansim train)")
    try:
        cfg = config_from_dict(state["config"])
    except ConfigError as exc:
        raise GansimError(f"{state_path}: stored config is not valid here ({exc})") from None
    has_ema = state.get("G_ema") is not None
    weights = state["G_ema"] if (use_ema and has_ema) else state["G"]
    generator = build_generator(cfg)
    try:
        generator.load_state_dict(weights)
    except RuntimeError as exc:
        raise GansimError(f"{state_path}: generator weights do not match model config ({str(exc)[:200]})") from None
    generator.eval()
    extra = {
        "source_checkpoint": str(state_path.resolve()),
        "condition_range": [float(x) for x in state.get("condition_range") or []] or None,
        "epoch": int(state["epoch"]),
        "step": int(state["step"]),
        "ema": bool(use_ema and has_ema),
        "metrics": {k: float(v) for k, v in (state.get("metrics") or {}).items()},
    }
    path = save_generator(out, generator, cfg, extra=extra)
    return path, extra
