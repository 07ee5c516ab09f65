"""Storage choices shared by both layouts: keys per kind, on-disk dtypes, HDF5 filters, chunk checksums."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from gansim.errors import GansimError
from gansim.kinds import get_kind

# Events per HDF5 chunk inside a dataset (= per checksum block): ~300 KB for layer_0 in float32, small enough for
# the default 1 MiB chunk cache and random access, large enough that the codec sees plenty of zero runs.
H5_CHUNK_EVENTS = 256
GZIP_LEVEL = 1  # 1.7x faster than level 4 for 2 % more bytes (measured)
ZSTD_LEVEL = 1  # fastest positive level; on trained showers as small as level 3 (516 vs 523 B/event, measured)
# Keys stored in reduced precision with --dtype float16 (the bulky cell arrays); energies and labels stay float32.
HALF_KEYS = ("layer_0", "layer_1", "layer_2", "image")
F16_MAX = float(np.finfo(np.float16).max)


def keys_for(kind: str) -> dict[str, tuple[int, ...]]:
    """Per-event shapes of the datasets written for a generator kind, in file order."""
    return get_kind(kind).shapes()


def storage_dtype(key: str, dtype: str) -> np.dtype:
    return np.dtype(np.float16 if dtype == "float16" and key in HALF_KEYS else np.float32)


def to_storage(arrays: dict[str, np.ndarray], kind: str, dtype: str, where: str) -> dict[str, np.ndarray]:
    """Cast generator output to the on-disk dtypes, in key order; refuse NaN/inf and float16 overflow."""
    out: dict[str, np.ndarray] = {}
    for key, shape in keys_for(kind).items():
        if key not in arrays:
            raise GansimError(f"{where}: the generator artefact produced no '{key}'")
        a = np.asarray(arrays[key], dtype=np.float32)
        a = a.reshape(len(a), *shape)
        if not np.isfinite(a).all():
            raise GansimError(f"{where}: the generator produced NaN or inf in '{key}'")
        sd = storage_dtype(key, dtype)
        if sd == np.float16:
            peak = float(a.max()) if a.size else 0.0
            if peak > F16_MAX:
                raise GansimError(f"{where}: '{key}' has a value {peak:.0f} above the float16 range ({F16_MAX:.0f}); "
                                  "use --dtype float32")
            a = a.astype(np.float16)
        out[key] = np.ascontiguousarray(a)
    return out


def block_digest(block: np.ndarray) -> bytes:
    """sha256 of one block of events (C order): computed once, in the pool task that also compresses the block."""
    return hashlib.sha256(memoryview(np.ascontiguousarray(block)).cast("B")).digest()


def key_header(key: str, a: np.ndarray | tuple[str, tuple[int, ...]]) -> bytes:
    dtype, shape = (a.dtype.str, a.shape) if isinstance(a, np.ndarray) else a
    return f"{key}|{dtype}|{tuple(shape)}|".encode()


def combine(headers: dict[str, bytes], digests: dict[str, list[bytes]]) -> str:
    """The chunk checksum from each key's header and its block digests in order (keys sorted)."""
    h = hashlib.sha256()
    for key in sorted(headers):
        h.update(headers[key])
        for d in digests[key]:
            h.update(d)
    return h.hexdigest()


def checksum(arrays: dict[str, np.ndarray], rows: int) -> str:
    """sha256 over (name, dtype, shape, sha256 of every block of `rows` events) per key: layout- and
    filter-independent, and computable block by block in parallel while the blocks are compressed."""
    headers = {k: key_header(k, a) for k, a in arrays.items()}
    digests = {k: [block_digest(a[s:s + rows]) for s in range(0, len(a), rows)] for k, a in arrays.items()}
    return combine(headers, digests)


def filter_kwargs(compression: str) -> dict[str, Any]:
    """h5py create_dataset keywords for a compression choice (byte shuffle helps every codec on floats)."""
    if compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": GZIP_LEVEL, "shuffle": True}
    if compression == "lzf":
        return {"compression": "lzf", "shuffle": True}
    try:
        import hdf5plugin
    except ImportError:
        raise GansimError(f"--compression {compression} needs the hdf5plugin package (pip install hdf5plugin); "
                          "gzip and lzf work with plain h5py") from None
    if compression == "zstd":
        return {"compression": hdf5plugin.Zstd(clevel=ZSTD_LEVEL), "shuffle": True}
    if compression == "blosc-lz4":
        return {"compression": hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)}
    raise GansimError(f"unknown compression {compression!r}")


def load_plugins_for(compression: str) -> None:
    """Register hdf5plugin filters before reading files compressed with them."""
    if compression in ("zstd", "blosc-lz4"):
        try:
            import hdf5plugin  # noqa: F401
        except ImportError:
            raise GansimError(f"reading {compression}-compressed data needs hdf5plugin (pip install hdf5plugin)") \
                from None
