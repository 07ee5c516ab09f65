"""--layout shards on disk: GB-scale chunk files fanned out into subdirectories, one VDS index per subdirectory,
one top-level dataset.h5 over the indices, and the open-file limit that reading them needs.

    DIR/manifest.json                      plan, environment, committed chunks (sha256, bytes)
    DIR/dataset.h5                         virtual datasets over the subdirectory indices (plain h5py reads it)
    DIR/chunks/DDDDD/index.h5              virtual datasets over the <= files_per_dir chunk files of DDDDD/
    DIR/chunks/DDDDD/chunk_KKKKKKKK.h5     chunk k: events [k*C, (k+1)*C), compressed, committed atomically

No VDS maps more than files_per_dir sources, no directory holds more than files_per_dir + 1 entries, and a reader
that slices at most one chunk file's events at a time never needs more than a few files open.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.atomic import atomic_path
from gansim.produce.plan import Plan, chunk_filename, chunk_subdir
from gansim.produce.storage import keys_for, storage_dtype

CHUNK_DIR = "chunks"
DATASET = "dataset.h5"
INDEX = "index.h5"
FILES_PER_DIR = 1000
TARGET_FILE_BYTES = 2 * 10**9  # GB-scale files: what Lustre/GPFS stripe well and tape systems like
MIN_AUTO_CHUNK = 10_000


def chunk_relpath(plan: Plan, k: int) -> str:
    """chunks/DDDDD/chunk_KKKKKKKK.h5, relative to DIR."""
    return f"{CHUNK_DIR}/{chunk_subdir(k, plan.files_per_dir)}/{chunk_filename(k)}"


def n_dirs(plan: Plan) -> int:
    return -(-plan.n_chunks // plan.files_per_dir)


def auto_chunk_size(bytes_per_event: float, events: int, target: int = TARGET_FILE_BYTES) -> int:
    """Events per chunk file for a target file size, rounded down to 1, 2 or 5 x 10^n (stable under small changes
    of the measured size), never below MIN_AUTO_CHUNK, never above the run."""
    raw = max(target / max(bytes_per_event, 1e-3), 1.0)
    exp = 10 ** math.floor(math.log10(raw))
    nice = max(m * exp for m in (1, 2, 5) if m * exp <= raw)
    return int(min(max(nice, MIN_AUTO_CHUNK), events))


def _write_vds(path: Path, plan: Plan, sources: list[tuple[str, int, int]], attrs: dict[str, Any]) -> None:
    """A file of virtual datasets (one per key) over `sources`: (relative file, first event, events)."""
    first, last = sources[0][1], sources[-1][1] + sources[-1][2]
    with atomic_path(path, fsync=True) as tmp, h5py.File(tmp, "w", libver=("earliest", "latest")) as f:
        for key, shape in keys_for(plan.kind).items():
            dt = storage_dtype(key, plan.dtype)
            layout = h5py.VirtualLayout(shape=(last - first, *shape), dtype=dt)
            for name, start, n in sources:
                layout[start - first:start - first + n] = h5py.VirtualSource(name, key, shape=(n, *shape), dtype=dt)
            # NaN, never a valid value: a source HDF5 cannot open reads as NaN, which every gansim reader rejects
            f.create_virtual_dataset(key, layout, fillvalue=np.nan)
        for name, v in attrs.items():
            f.attrs[name] = v


def build_index(out: Path, plan: Plan, attrs: dict[str, Any]) -> Path:
    """Write every chunks/DDDDD/index.h5, then DIR/dataset.h5 over them (relative paths: DIR can be moved)."""
    per = plan.files_per_dir
    top: list[tuple[str, int, int]] = []
    for d in range(n_dirs(plan)):
        ks = range(d * per, min((d + 1) * per, plan.n_chunks))
        leaves = [(chunk_filename(k), plan.chunk_range(k)[0], plan.chunk_events(k)) for k in ks]
        sub = f"{CHUNK_DIR}/{chunk_subdir(ks[0], per)}"
        _write_vds(out / sub / INDEX, plan, leaves, {"first_chunk": ks[0], "chunks": len(ks)})
        top.append((f"{sub}/{INDEX}", leaves[0][1], sum(n for _, _, n in leaves)))
    _write_vds(out / DATASET, plan, top, attrs)
    return out / DATASET
