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
from gansim.data.schema import CALO_LAYERS
from gansim.errors import GansimError
from gansim.models.registry import DATA_SCALE, build_generator, model_kind

FORMAT = "gansim-generator/1"
Z_BLOCK = 4096  # latent vectors are drawn per block of this many events, so outputs do not depend on batch_size


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


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _z_block(seed: int, k: int, latent_dim: int) -> torch.Tensor:
    """Latent vectors of events [k*Z_BLOCK, (k+1)*Z_BLOCK), seeded from (seed, k) on the CPU (device independent)."""
    s = int(np.random.SeedSequence([seed, k]).generate_state(1, np.uint64)[0])
    g = torch.Generator().manual_seed(s)
    return torch.randn(Z_BLOCK, latent_dim, generator=g)


def draw_latent(seed: int, start: int, stop: int, latent_dim: int) -> torch.Tensor:
    """z for events [start, stop) of the stream defined by seed; any split into ranges gives the same rows."""
    parts = []
    for k in range(start // Z_BLOCK, (stop - 1) // Z_BLOCK + 1):
        lo, hi = max(start, k * Z_BLOCK) - k * Z_BLOCK, min(stop, (k + 1) * Z_BLOCK) - k * Z_BLOCK
        parts.append(_z_block(seed, k, latent_dim)[lo:hi])
    return torch.cat(parts) if parts else torch.empty(0, latent_dim)


class GeneratorArtifact:
    """A loaded generator: module (eval, on device), config, kind ("calo"|"jets"), latent_dim, sha256."""

    def __init__(self, module: nn.Module, config: Config, sha256: str, extra: dict[str, Any], path: Path,
                 device: str) -> None:
        self.module, self.config, self.sha256, self.extra, self.path = module, config, sha256, extra, path
        self.device = torch.device(device)
        self.kind = model_kind(config)
        self.latent_dim = config.model.latent_dim

    def forward_batch(self, z: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model units (GeV cells / 100-GeV pixels), no grad. cond: (B,) or (B,1) energies in GeV or 0/1 labels."""
        with torch.inference_mode():
            z = z.to(self.device, torch.float32, non_blocking=True)
            cond = cond.to(self.device, torch.float32, non_blocking=True).reshape(-1)
            if self.kind == "calo":
                return self.module(z, cond.unsqueeze(1))
            return {"image": self.module(z, cond)}

    def to_file_units(self, out: dict[str, torch.Tensor], cond: torch.Tensor | np.ndarray) -> dict[str, np.ndarray]:
        """calo: energy (N,1) GeV, layer_0..2 MeV, overflow zeros (N,3); jets: image GeV, signal 0/1. float32."""
        cond_np = (cond.detach().cpu().numpy() if isinstance(cond, torch.Tensor) else np.asarray(cond))
        cond_np = cond_np.astype(np.float32).reshape(-1)
        scale = 1.0 / DATA_SCALE[self.kind]
        if self.kind == "calo":
            res = {"energy": cond_np.reshape(-1, 1)}
            for k in CALO_LAYERS:
                res[k] = np.ascontiguousarray((out[k].float() * scale).cpu().numpy(), dtype=np.float32)
            res["overflow"] = np.zeros((len(cond_np), 3), np.float32)
            return res
        return {"image": np.ascontiguousarray((out["image"].float() * scale).cpu().numpy(), dtype=np.float32),
                "signal": cond_np}

    def generate(self, cond: np.ndarray, seed: int = 0, batch_size: int = 1024,
                 z: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Events for each condition (GeV energies or 0/1 labels) in file units; same seed -> same events."""
        cond = np.asarray(cond, dtype=np.float32).reshape(-1)
        n = len(cond)
        if batch_size < 1:
            raise GansimError(f"batch_size must be >= 1, got {batch_size}")
        if z is not None:
            z = np.asarray(z, dtype=np.float32)
            if z.shape != (n, self.latent_dim):
                raise GansimError(f"z has shape {z.shape}, expected ({n}, {self.latent_dim})")
        chunks: list[dict[str, np.ndarray]] = []
        for start in range(0, n, batch_size):
            stop = min(n, start + batch_size)
            zb = torch.from_numpy(z[start:stop]) if z is not None else draw_latent(seed, start, stop, self.latent_dim)
            cb = torch.from_numpy(cond[start:stop])
            chunks.append(self.to_file_units(self.forward_batch(zb, cb), cb))
        if not chunks:
            return self.to_file_units(self.forward_batch(torch.empty(0, self.latent_dim), torch.empty(0)),
                                      torch.empty(0))
        return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def load_generator(path: str | Path, device: str = "cpu") -> GeneratorArtifact:
    """Read an artefact with torch.load(weights_only=True); GansimError naming the problem on a bad file."""
    path = Path(path)
    if not path.is_file():
        raise GansimError(f"generator file not found: {path}")
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


__all__ = ["FORMAT", "GeneratorArtifact", "draw_latent", "file_sha256", "load_generator", "save_generator"]
