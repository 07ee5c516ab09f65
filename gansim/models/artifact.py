"""The generator artefact: one self-describing file (config + weights) that export writes and produce/evaluate read."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gansim.atomic import atomic_path
from gansim.config import Config, ConfigError, config_from_dict
from gansim.errors import GansimError
from gansim.models.registry import build_generator, latent_size, model_kind
from gansim.models.sampler import Sampler

FORMAT = "gansim-generator/2"


def _unwrap(module: nn.Module) -> nn.Module:
    """Strip DDP (.module) and torch.compile (._orig_mod) wrappers."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def _check_plain(value: Any, where: str) -> None:
    """extra must survive weights_only loading: str, int, float, bool, None, lists and str-keyed dicts."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise GansimError(f"{where}: key {k!r} is not a string")
            _check_plain(v, f"{where}.{k}")
        return
    raise GansimError(f"{where}: {type(value).__name__} is not a plain type (str/int/float/bool/None/list/dict)")


def save_generator(path: str | Path, generator: nn.Module, cfg: Config, extra: dict | None = None) -> Path:
    """Write the artefact atomically (temp file in the same directory, then rename)."""
    path = Path(path)
    extra = dict(extra or {})
    _check_plain(extra, "extra")
    state = {k: v.detach().to("cpu").clone() for k, v in _unwrap(generator).state_dict().items()}
    payload = {"format": FORMAT, "config": cfg.to_dict(), "state_dict": state, "extra": extra}
    with atomic_path(path, fsync=True) as tmp:
        torch.save(payload, tmp)
    return path


def is_generator_file(path: str | Path) -> bool:
    """True when `path` is a gansim generator artefact (any version): the only kind of file export replaces."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - whatever torch cannot read is not an artefact
        return False
    fmt = payload.get("format") if isinstance(payload, dict) else None
    return isinstance(fmt, str) and fmt.startswith("gansim-generator/")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class GeneratorArtifact:
    """A loaded generator: module (eval, on device), config, kind, latent_dim, sha256, and its Sampler."""

    def __init__(self, module: nn.Module, config: Config, sha256: str, extra: dict[str, Any], path: Path,
                 device: str) -> None:
        self.module, self.config, self.sha256, self.extra, self.path = module, config, sha256, extra, path
        self.device = torch.device(device)
        self.kind = model_kind(config)
        self.latent_dim = latent_size(config)
        self.sampler = Sampler(module, self.kind, self.latent_dim, self.device)

    @property
    def condition_range(self) -> tuple[float, float] | None:
        """(min, max) of the condition the generator was trained on, when the artefact records it."""
        r = self.extra.get("condition_range")
        return (float(r[0]), float(r[1])) if isinstance(r, (list, tuple)) and len(r) == 2 else None

    def generate(self, cond: np.ndarray, seed: int = 0, batch_size: int = 1024,
                 z: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Events for each condition (GeV energies or 0/1 labels) in file units; same seed -> same events."""
        return self.sampler.generate(cond, seed, batch_size=batch_size, z=z)


def load_generator(path: str | Path, device: str = "cpu") -> GeneratorArtifact:
    """Read an artefact with torch.load(weights_only=True); GansimError naming the problem on a bad file."""
    path = Path(path)
    if not path.is_file():
        from gansim.paths import list_shipped_generators, shipped_generator

        shipped = shipped_generator(str(path))
        if shipped is None:
            names = ", ".join(list_shipped_generators()) or "none installed"
            raise GansimError(f"generator file not found: {path} (nor a shipped generator name: {names})")
        path = shipped
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch.load raises many types on junk (IndexError, UnpicklingError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GansimError(f"{path}: not a gansim generator file (cannot be read: {first[:200]})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise GansimError(f"{path}: not a gansim generator file (no 'format' entry)")
    fmt = payload["format"]
    if not isinstance(fmt, str) or not fmt.startswith("gansim-generator/"):
        raise GansimError(f"{path}: not a gansim generator file (format {fmt!r})")
    if fmt != FORMAT:
        raise GansimError(f"{path}: unsupported generator format {fmt!r} (this gansim reads {FORMAT!r})")
    missing = [k for k in ("config", "state_dict") if not isinstance(payload.get(k), dict)]
    if missing:
        raise GansimError(f"{path}: generator file lacks {', '.join(missing)}")
    try:
        cfg = config_from_dict(payload["config"])
    except ConfigError as exc:
        raise GansimError(f"{path}: its stored config no longer validates: {exc}") from None
    module = build_generator(cfg)
    try:
        result = module.load_state_dict(payload["state_dict"], strict=False)
    except RuntimeError as exc:  # shape mismatches
        first = str(exc).strip().splitlines()[-1].strip()
        raise GansimError(f"{path}: weights do not match the stored {cfg.model.name} config ({first[:200]})") from None
    if result.missing_keys or result.unexpected_keys:
        bad = (result.missing_keys or result.unexpected_keys)[0]
        raise GansimError(f"{path}: weights do not match the stored {cfg.model.name} config "
                          f"({len(result.missing_keys)} missing, {len(result.unexpected_keys)} unexpected, "
                          f"e.g. {bad!r})")
    for k, v in payload["state_dict"].items():
        if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise GansimError(f"{path}: weight {k!r} holds non-finite values")
    try:
        module = module.to(device).eval()
    except (RuntimeError, AssertionError) as exc:
        raise GansimError(f"cannot place the generator on device {device!r}: {exc}") from None
    extra = payload.get("extra") or {}
    return GeneratorArtifact(module, cfg, file_sha256(path), extra, path, device)


__all__ = ["FORMAT", "GeneratorArtifact", "file_sha256", "is_generator_file", "load_generator", "save_generator"]
