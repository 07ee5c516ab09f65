"""--layout shards bookkeeping: reading chunk files back, their commit records, and left-over temporaries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.produce.layout import CHUNK_DIR, DATASET  # noqa: F401 - re-exported for callers of this module


def read_chunk_file(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[key][...] for key in f.keys()}


def chunk_attrs(path: Path) -> dict[str, Any]:
    """The commit record stamped into a chunk file (chunk, events, sha256, plan_id); {} when unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return {k: (v.decode() if isinstance(v, bytes) else v.item() if hasattr(v, "item") else v)
                    for k, v in f.attrs.items()}
    except (OSError, RuntimeError):
        return {}


def cleanup_temporaries(out_dir: Path) -> int:
    """Remove half-written chunk files left by a killed rank (in every fan-out directory); returns how many."""
    n = 0
    for p in (out_dir / CHUNK_DIR).glob("*/.chunk_*.tmp"):
        p.unlink(missing_ok=True)
        n += 1
    return n
