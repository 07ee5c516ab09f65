"""Chunk sampler: chunk k's conditions from stream (seed, CONDITION, k), its events from the one Sampler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gansim.produce.plan import Plan
from gansim.produce.storage import to_storage
from gansim.seeding import Purpose, numpy_rng


class ChunkSampler:
    """Generates whole chunks in storage dtypes; the same (plan, k) gives the same bytes on any rank."""

    def __init__(self, artifact: Any, plan: Plan, condition: Any, amp: bool = False, compile: bool = False) -> None:
        self.art, self.plan, self.condition = artifact, plan, condition
        self.sampler = artifact.sampler
        self.sampler.amp = amp
        if compile:
            # Compiled kernels fuse the generator's pointwise ops; worth it on GPU for long runs.
            self.sampler.module = torch.compile(self.sampler.module, mode="max-autotune-no-cudagraphs")

    def conditions(self, k: int, n: int) -> np.ndarray:
        return self.art.kind.conditions(self.condition, numpy_rng(self.plan.seed, Purpose.CONDITION, k), n)

    def generate(self, k: int, on_batch: Callable[[int], None] | None = None, n: int | None = None
                 ) -> dict[str, np.ndarray]:
        """Chunk k (or its first n events, for dry-run measurements) in file units and storage dtypes."""
        n = self.plan.chunk_events(k) if n is None else n
        start, _ = self.plan.chunk_range(k)
        arrays = self.sampler.generate(self.conditions(k, n), self.plan.seed, Purpose.GENERATE, start=start,
                                       batch_size=self.plan.batch_size, on_batch=on_batch)
        return to_storage(arrays, self.plan.kind, self.plan.dtype, where=f"chunk {k}")
