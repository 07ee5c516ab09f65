"""--layout shards: one compressed HDF5 file per chunk (atomic commit) and a dataset.h5 of virtual datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.atomic import atomic_path
from gansim.produce.plan import Plan, chunk_filename
from gansim.produce.storage import H5_CHUNK_EVENTS, filter_kwargs, keys_for, storage_dtype

CHUNK_DIR = "chunks"
DATASET = "dataset.h5"


def write_chunk_file(out_dir: Path, k: int, arrays: dict[str, np.ndarray], plan: Plan,
                     attrs: dict[str, Any]) -> tuple[Path, int]:
    """Write chunk k to chunks/chunk_k.h5 via a temporary name, fsync and rename; return (path, bytes)."""
    final = out_dir / CHUNK_DIR / chunk_filename(k)
    kw = filter_kwargs(plan.compression)
    with atomic_path(final, fsync=True) as tmp, h5py.File(tmp, "w") as f:
        for key, a in arrays.items():
            n = len(a)
            chunks = (min(n, H5_CHUNK_EVENTS), *a.shape[1:]) if n else None
            f.create_dataset(key, data=a, chunks=chunks, **(kw if n else {}))
        for name, v in attrs.items():
            f.attrs[name] = v
    return final, final.stat().st_size


def read_chunk_file(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[key][...] for key in f.keys()}


def chunk_attrs(path: Path) -> dict[str, Any]:
    """The commit record stamped into a chunk file (chunk, events, sha256, plan_id); {} when unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                    for k, v in f.attrs.items()}
    except OSError:
        return {}


def cleanup_temporaries(out_dir: Path) -> int:
    """Remove half-written chunk files left by a killed rank; returns how many."""
    n = 0
    for p in (out_dir / CHUNK_DIR).glob(".chunk_*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n


def build_vds(out_dir: Path, plan: Plan, attrs: dict[str, Any]) -> Path:
    """Write DIR/dataset.h5: one virtual dataset per key spanning every chunk file, with relative source paths.

    HDF5 resolves a relative source name against the directory of the virtual file, so DIR can be moved or copied
    whole. Missing sources read as NaN (the fill value), which `gansim inspect` rejects.
    """
    final = out_dir / DATASET
    with atomic_path(final, fsync=True) as tmp, h5py.File(tmp, "w", libver=("earliest", "latest")) as f:
        for key, shape in keys_for(plan.kind).items():
            dt = storage_dtype(key, plan.dtype)
            layout = h5py.VirtualLayout(shape=(plan.events, *shape), dtype=dt)
            for k in range(plan.n_chunks):
                start, stop = plan.chunk_range(k)
                src = h5py.VirtualSource(f"{CHUNK_DIR}/{chunk_filename(k)}", key, shape=(stop - start, *shape),
                                         dtype=dt)
                layout[start:stop] = src
            f.create_virtual_dataset(key, layout, fillvalue=np.nan)
        for name, v in attrs.items():
            f.attrs[name] = v
    return final
