"""The one way events are generated: a generator module + its kind, latents from the seeding rule, file units out.

Training's per-epoch check, `gansim evaluate`, `gansim produce` and the tests all generate through `Sampler`.
Latents of events [start, stop) of a stream (seed, purpose) come in blocks of LATENT_BLOCK events, block b
drawn on the inference device from SeedSequence([seed, purpose, b]): any split of the events into calls,
ranks or chunks gives the same latent rows (on the same device type).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from gansim.errors import GansimError
from gansim.kinds import DataKind
from gansim.seeding import Purpose, torch_generator

LATENT_BLOCK = 4096


class Sampler:
    """Runs a generator module in inference mode on `device`; outputs are dicts of file-unit arrays."""

    def __init__(self, module: nn.Module, kind: DataKind, latent_dim: int, device: str | torch.device = "cpu",
                 amp: bool = False) -> None:
        self.module, self.kind, self.latent_dim = module, kind, latent_dim
        self.device = torch.device(device)
        self.amp = amp

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def latents(self, seed: int, purpose: Purpose, start: int, stop: int) -> torch.Tensor:
        """z of events [start, stop) of the stream (seed, purpose), on the device."""
        parts = []
        for b in range(start // LATENT_BLOCK, (stop - 1) // LATENT_BLOCK + 1) if stop > start else ():
            g = torch_generator(seed, purpose, b, device=self.device)
            block = torch.randn(LATENT_BLOCK, self.latent_dim, generator=g, device=self.device)
            first = b * LATENT_BLOCK
            parts.append(block[max(start, first) - first:min(stop, first + LATENT_BLOCK) - first])
        return torch.cat(parts) if parts else torch.empty(0, self.latent_dim, device=self.device)

    def forward(self, z: torch.Tensor, cond: torch.Tensor) -> dict[str, torch.Tensor]:
        """Model units, no grad; cond (B,) energies in GeV or 0/1 labels."""
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.inference_mode(), self._autocast():
                z = z.to(self.device, torch.float32, non_blocking=True)
                cond = cond.to(self.device, torch.float32, non_blocking=True).reshape(-1)
                out = self.module(z, cond)
            return {k: v.float() for k, v in out.items()}
        finally:
            self.module.train(was_training)

    def generate(self, cond: np.ndarray, seed: int, purpose: Purpose = Purpose.GENERATE, start: int = 0,
                 batch_size: int = 1024, z: np.ndarray | None = None,
                 on_batch: Callable[[int], None] | None = None) -> dict[str, np.ndarray]:
        """Events [start, start + len(cond)) of the stream for these conditions, every dataset in file units.

        z (optional, (N, latent_dim)) replaces the stream's latents (e.g. one latent at several energies).
        """
        cond = np.asarray(cond, dtype=np.float32).reshape(-1)
        n = len(cond)
        if batch_size < 1:
            raise GansimError(f"batch_size must be >= 1, got {batch_size}")
        if z is not None and np.shape(z) != (n, self.latent_dim):
            raise GansimError(f"z has shape {np.shape(z)}, expected ({n}, {self.latent_dim})")
        bufs: dict[str, np.ndarray] = {}
        for s in range(0, max(n, 1), batch_size):
            b = min(batch_size, n - s)
            zb = (torch.from_numpy(np.asarray(z[s:s + b], np.float32)) if z is not None
                  else self.latents(seed, purpose, start + s, start + s + b))
            cb = torch.from_numpy(cond[s:s + b])
            part = self.kind.from_model(self.forward(zb, cb), cond[s:s + b])
            for key, a in part.items():
                if key not in bufs:
                    bufs[key] = np.empty((n, *a.shape[1:]), dtype=np.float32)
                bufs[key][s:s + b] = a
            if on_batch is not None and b:
                on_batch(b)
        return bufs
