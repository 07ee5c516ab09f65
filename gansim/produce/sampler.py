"""Chunk sampler: draws chunk k's conditioning and latents from its own streams and runs the generator in batches."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gansim.produce.conditioning import EnergySpec, sample_labels
from gansim.produce.plan import Plan
from gansim.produce.seeding import chunk_streams
from gansim.produce.storage import to_storage


class ChunkSampler:
    """Generates whole chunks in storage dtypes; the same (plan, k) gives the same bytes on any rank."""

    def __init__(self, artifact: Any, plan: Plan, energy: EnergySpec | None, device: str = "cpu",
                 amp: bool = False, compile: bool = False) -> None:
        self.art, self.plan, self.energy = artifact, plan, energy
        self.device = torch.device(device)
        self.amp = amp
        if compile:
            # Compiled kernels fuse the generator's pointwise ops; worth it on GPU for long runs.
            self.art.module = torch.compile(self.art.module, mode="max-autotune-no-cudagraphs")

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.amp:
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype)

    def conditioning(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.plan.kind == "calo":
            assert self.energy is not None
            return self.energy.sample(rng, n)
        return sample_labels(rng, n, self.plan.signal_fraction)

    def generate(self, k: int, on_batch: Callable[[int], None] | None = None, n: int | None = None
                 ) -> dict[str, np.ndarray]:
        """Chunk k (or its first n events, for dry-run measurements) in file units and storage dtypes."""
        n = self.plan.chunk_events(k) if n is None else n
        rng, tgen = chunk_streams(self.plan.seed, k, self.device)
        cond = self.conditioning(rng, n)
        bufs: dict[str, np.ndarray] = {}
        bs = self.plan.batch_size
        for s in range(0, n, bs):
            b = min(bs, n - s)
            z = torch.randn(b, self.art.latent_dim, generator=tgen, device=self.device)
            c = torch.from_numpy(cond[s:s + b])
            with self._autocast():
                out = self.art.forward_batch(z, c)
            part = self.art.to_file_units({key: v.float() for key, v in out.items()}, c)
            for key, a in part.items():
                if key not in bufs:
                    bufs[key] = np.empty((n, *a.shape[1:]), dtype=np.float32)
                bufs[key][s:s + b] = a
            if on_batch is not None:
                on_batch(b)
        return to_storage(bufs, self.plan.kind, self.plan.dtype, where=f"chunk {k}")
