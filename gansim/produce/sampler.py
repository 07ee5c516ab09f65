"""Chunk sampler: chunk k's conditions from stream (seed, CONDITION, k), its events from the one Sampler, one
micro-batch of the plan's --batch-size at a time, each with a single intra-op thread, several in flight on a pool.

Why: torch's CPU kernels (GEMM blocking, vectorised reductions) sum in an order that depends on how many threads
split the work, so the same batch differs in the last bits between 1 and 2 threads. Fixing the batch partition
(the plan) and the intra-op threads (one) makes every micro-batch's bytes independent of cores, ranks and
OMP_NUM_THREADS; the parallelism comes from independent micro-batches on the pool instead (torch releases the
GIL inside its kernels), and the pool also compresses and hashes HDF5 chunks for the writer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from gansim.produce.codec import encoder
from gansim.produce.plan import Plan
from gansim.produce.precision import parse_precision
from gansim.produce.storage import block_digest, keys_for, to_storage
from gansim.seeding import Purpose, numpy_rng

Block = dict[str, tuple[bytes | None, bytes, np.ndarray | None]]  # key -> (stored bytes | None, sha256, raw rows)


def pool_threads(requested: int, local_ranks: int) -> int:
    """Pool threads of this rank: `requested`, else OMP_NUM_THREADS, else this rank's share of the usable cores.
    Never changes the bytes, only the speed."""
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(local_ranks, 1))


class ChunkSampler:
    """Generates chunks in storage dtypes; the same (plan, k) gives the same bytes on any rank, thread or core."""

    def __init__(self, artifact: Any, plan: Plan, condition: Any, amp: bool = False, compile: bool = False,
                 threads: int = 1) -> None:
        self.art, self.plan, self.condition = artifact, plan, condition
        self.sampler = artifact.sampler
        self.sampler.amp = amp
        self.precision = parse_precision(plan.precision)
        self.cells = set(artifact.kind.event_keys)
        torch.set_num_threads(1)  # one intra-op thread per micro-batch: see the module docstring
        if compile:
            # Compiled kernels fuse the generator's pointwise ops; worth it on GPU for long runs.
            self.sampler.module = torch.compile(self.sampler.module, mode="max-autotune-no-cudagraphs")
            threads = 1  # dynamo is not meant to be entered from several threads at once
        self.threads = threads
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gansim-produce")
        self.encode = encoder(plan.compression)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def conditions(self, k: int, n: int) -> np.ndarray:
        return self.art.kind.conditions(self.condition, numpy_rng(self.plan.seed, Purpose.CONDITION, k), n)

    def _batch(self, k: int, cond: np.ndarray, offset: int) -> dict[str, np.ndarray]:
        """Events [offset, offset + len(cond)) of chunk k: generated, rounded (--precision), in storage dtypes."""
        start, _ = self.plan.chunk_range(k)
        arrays = self.sampler.generate(cond, self.plan.seed, Purpose.GENERATE, start=start + offset,
                                       batch_size=self.plan.batch_size)
        arrays = {key: self.precision.apply(a) if key in self.cells else a for key, a in arrays.items()}
        return to_storage(arrays, self.plan.kind, self.plan.dtype, where=f"chunk {k}")

    def batches(self, k: int, n: int | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Chunk k's micro-batches in order (the first n events only, for dry-run measurements); up to threads + 1
        are generated ahead on the pool."""
        n = self.plan.chunk_events(k) if n is None else n
        cond = self.conditions(k, n)
        b = self.plan.batch_size
        offsets = iter(range(0, n, b))
        inflight: list[Future[dict[str, np.ndarray]]] = []
        try:
            while True:
                while len(inflight) <= self.threads and (s := next(offsets, None)) is not None:
                    inflight.append(self.pool.submit(self._batch, k, cond[s:s + b], s))
                if not inflight:
                    return
                yield inflight.pop(0).result()
        finally:
            for f in inflight:
                f.cancel()

    def generate(self, k: int, on_batch: Callable[[int], None] | None = None, n: int | None = None
                 ) -> dict[str, np.ndarray]:
        """Chunk k (or its first n events) as whole arrays."""
        parts = []
        for arrays in self.batches(k, n):
            parts.append(arrays)
            if on_batch is not None:
                on_batch(len(next(iter(arrays.values()))))
        return {key: np.concatenate([p[key] for p in parts]) for key in keys_for(self.plan.kind)}

    def blocks(self, k: int, on_batch: Callable[[int], None] | None = None
               ) -> Iterator[tuple[int, Future[Block]]]:
        """Chunk k as HDF5-chunk-sized blocks of h5_rows events, in order: (first row, future of the block's
        stored bytes and sha256 per key), each compressed and hashed on the pool."""
        rows = min(self.plan.h5_rows, self.plan.chunk_events(k))
        pending: list[dict[str, np.ndarray]] = []
        have, row = 0, 0
        for arrays in self.batches(k):
            m = len(next(iter(arrays.values())))
            if on_batch is not None:
                on_batch(m)
            pending.append(arrays)
            have += m
            while have >= rows:
                block, pending, have = _take(pending, rows, have)
                yield row, self.pool.submit(self._encode, block, rows)
                row += rows
        if have:
            block, pending, have = _take(pending, have, have)
            yield row, self.pool.submit(self._encode, block, rows)

    def _encode(self, block: dict[str, np.ndarray], rows: int) -> Block:
        """Hash the block's events, pad them to a full HDF5 chunk and compress (None: the HDF5 filter will)."""
        out: Block = {}
        for key, a in block.items():
            digest = block_digest(a)
            if self.encode is None:
                out[key] = (None, digest, a)
                continue
            if len(a) < rows:  # HDF5 stores edge chunks at full size
                a = np.concatenate([a, np.zeros((rows - len(a), *a.shape[1:]), a.dtype)])
            out[key] = (self.encode(a), digest, None)
        return out


def _take(parts: list[dict[str, np.ndarray]], rows: int, have: int
          ) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]], int]:
    """The first `rows` events of the queued micro-batches, the rest, and how many remain."""
    keys = list(parts[0])
    joined = {key: np.concatenate([p[key] for p in parts]) if len(parts) > 1 else parts[0][key] for key in keys}
    block = {key: np.ascontiguousarray(a[:rows]) for key, a in joined.items()}
    rest = [{key: a[rows:] for key, a in joined.items()}] if have > rows else []
    return block, rest, have - rows
