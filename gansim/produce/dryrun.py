"""--dry-run: print the plan with sizes and times measured on a sample chunk; writes nothing."""

from __future__ import annotations

import time
from typing import Any

import h5py

from gansim.produce.plan import Plan, assign_chunks
from gansim.produce.storage import H5_CHUNK_EVENTS, filter_kwargs

SAMPLE_EVENTS = 2048


def measure(plan: Plan, sampler: Any, n: int) -> tuple[float, float]:
    """(events/s of the generator on this rank, compressed bytes/event) from the first n events of chunk 0."""
    sampler.generate(0, n=min(n, plan.batch_size))  # warm-up (allocations, lazy init, compile)
    t = time.perf_counter()
    arrays = sampler.generate(0, n=n)
    rate = n / (time.perf_counter() - t)
    kw = filter_kwargs(plan.compression)
    # an in-memory HDF5 file with the real filters and chunking measures the real compression ratio
    with h5py.File(f"dryrun-{id(arrays)}.h5", "w", driver="core", backing_store=False) as f:
        for key, a in arrays.items():
            f.create_dataset(key, data=a, chunks=(min(n, H5_CHUNK_EVENTS), *a.shape[1:]), **kw)
        f.flush()
        size = f.id.get_filesize()
    return rate, size / n


def dry_run(run: Any, plan: Plan, sampler: Any, comm: Any) -> dict[str, Any]:
    size = comm.Get_size()
    if comm.Get_rank() != 0:
        return {}
    n = min(plan.chunk_events(0), max(SAMPLE_EVENTS, plan.batch_size))
    rate, bpe = measure(plan, sampler, n)
    per_rank = [sum(plan.chunk_events(k) for k in assign_chunks(list(range(plan.n_chunks)), r, size))
                for r in range(size)]
    last = plan.chunk_events(plan.n_chunks - 1)
    total_bytes = bpe * plan.events
    seconds = max(per_rank) / rate
    lines = [
        f"plan       {plan.events:,} {plan.kind} events ({plan.particle}), seed {plan.seed}, conditions "
        f"{plan.condition}",
        f"chunks     {plan.n_chunks:,} x {plan.chunk_size:,} events (last {last:,}), batch {plan.batch_size}",
        f"ranks      {size}; events per rank {min(per_rank):,} .. {max(per_rank):,}",
        f"storage    layout {plan.layout}, {plan.dtype}, {plan.compression}: {bpe:,.0f} B/event measured on "
        f"{n:,} events -> {total_bytes / 1e9:,.3f} GB",
        f"speed      {rate:,.0f} events/s per rank on {sampler.sampler.device} (measured) -> about "
        f"{_fmt(seconds)} wall time",
        f"output     {run.out} (dry run: nothing written)",
    ]
    print("\n".join(lines))
    return {"dry_run": True, "events": plan.events, "chunks": plan.n_chunks, "ranks": size,
            "events_per_rank": per_rank, "bytes_per_event": bpe, "bytes": total_bytes, "events_per_s": rate,
            "seconds": seconds}


def _fmt(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"
