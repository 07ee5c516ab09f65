"""--dry-run: the plan a site admin can check (files, directories, bytes, inodes, wall time per rank count, layout),
with bytes/event and speed measured here on a sample of the run's own first events; writes nothing."""

from __future__ import annotations

import time
from typing import Any

from gansim.produce.layout import CHUNK_DIR, DATASET, INDEX, n_dirs
from gansim.produce.plan import Plan
from gansim.produce.precision import parse_precision

SAMPLE_EVENTS = 4096
RANK_COUNTS = (1, 8, 64, 512, 4096)


def measure(plan: Plan, sampler: Any, n: int) -> tuple[float, float]:
    """(events/s of generation + compression on this rank, stored bytes/event) on the run's first n events."""
    from gansim.produce.run import measure_bytes

    sampler.generate(0, n=min(n, plan.batch_size))  # warm-up (allocations, lazy init, compile)
    t = time.perf_counter()
    bpe = measure_bytes(sampler, n)
    return n / (time.perf_counter() - t), bpe


def wall_seconds(plan: Plan, rate: float, ranks: int) -> float:
    """Wall time with `ranks` ranks at `rate` events/s each: the busiest rank makes ceil(chunks / ranks) chunks."""
    per_rank = -(-plan.n_chunks // ranks)
    return per_rank * plan.chunk_size / rate if plan.n_chunks > 1 else plan.events / rate


def layout_lines(plan: Plan, bpe: float) -> list[str]:
    if plan.layout == "single":
        return [f"layout     single: one {DATASET} of {plan.events * bpe / 1e9:,.1f} GB written collectively "
                f"(parallel HDF5), {plan.n_chunks:,} commit units of {plan.chunk_size:,} events",
                "inodes     2 (dataset.h5, manifest.json)"]
    dirs = n_dirs(plan)
    files = plan.n_chunks
    gb = plan.chunk_size * bpe / 1e9
    return [f"layout     shards: {files:,} chunk files of {plan.chunk_size:,} events (~{gb:,.2f} GB each) in "
            f"{dirs:,} directories {CHUNK_DIR}/00000..{dirs - 1:05d} of <= {plan.files_per_dir:,} files",
            f"index      {dirs:,} x {CHUNK_DIR}/DDDDD/{INDEX} (each a VDS over <= {plan.files_per_dir:,} files) + "
            f"{DATASET} over them; read with gansim.open_dataset(DIR) or h5py",
            f"inodes     {files + 2 * dirs + 3:,} ({files:,} chunk files, {dirs:,} indices, {dirs:,} directories, "
            f"{CHUNK_DIR}/, {DATASET}, manifest.json)"]


def dry_run(run: Any, plan: Plan, sampler: Any, comm: Any) -> dict[str, Any]:
    size = comm.Get_size()
    if comm.Get_rank() != 0:
        return {}
    n = min(plan.chunk_events(0), SAMPLE_EVENTS)
    rate, bpe = measure(plan, sampler, n)
    total = bpe * plan.events
    counts = sorted({*RANK_COUNTS, size})
    walls = {r: wall_seconds(plan, rate, r) for r in counts}
    device = sampler.sampler.device
    lines = [
        f"plan       {plan.events:,} {plan.kind} events ({plan.particle}), seed {plan.seed}, conditions "
        f"{plan.condition}, batch {plan.batch_size}",
        f"storage    {plan.dtype}, {plan.compression} + shuffle, precision {plan.precision} "
        f"({parse_precision(plan.precision).bound('file units')}): {bpe:,.0f} B/event measured on {n:,} events "
        f"-> {_bytes(total)}",
        *layout_lines(plan, bpe),
        f"speed      {rate:,.0f} events/s per rank measured here ({device}, {sampler.threads} thread(s); "
        "generate + compress)",
        "wall time  " + "; ".join(f"{r:,} rank{'s' if r > 1 else ''}: {_fmt(walls[r])}" for r in counts)
        + ("" if device.type == "cuda" else "  (CPU ranks like this one; on GPUs run --dry-run --device cuda there)"),
    ]
    if plan.n_chunks < max(counts):
        lines.append(f"note       {plan.n_chunks:,} chunks: more ranks than that wait idle; lower --chunk-size "
                     "to spread a small run over many ranks")
    lines.append(f"output     {run.out} (dry run: nothing written)")
    print("\n".join(lines))
    return {"dry_run": True, "events": plan.events, "chunks": plan.n_chunks, "chunk_size": plan.chunk_size,
            "directories": n_dirs(plan), "ranks": size, "bytes_per_event": bpe, "bytes": total,
            "events_per_s": rate, "seconds": walls[size], "wall_seconds": walls}


def _bytes(b: float) -> str:
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if b >= scale:
            return f"{b / scale:,.2f} {unit}"
    return f"{b:,.0f} B"


def _fmt(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    if s < 3 * 365 * 86400:
        return f"{s / 86400:,.1f} days"
    return f"{s / (365 * 86400):,.0f} years"
