"""Compression of HDF5 chunks outside HDF5: byte shuffle + deflate / zstd in pool threads, for write_direct_chunk.

HDF5 runs its filters under one global lock, so h5py compresses on one core. Here each block of `h5_rows` events is
shuffled and compressed in the thread pool (zlib and zstandard release the GIL), producing exactly the bytes
HDF5's own shuffle + deflate / zstd filters would store; the writer thread only appends them. Codecs without a
Python encoder here (lzf, blosc-lz4, or zstd without the zstandard package) return None: the writer then lets
HDF5 filter the block itself.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable

import numpy as np

from gansim.produce.storage import GZIP_LEVEL, ZSTD_LEVEL

_local = threading.local()


def shuffle(block: np.ndarray) -> bytes:
    """HDF5's shuffle filter: byte j of every element, for j = 0..itemsize-1, one plane after the other."""
    b = np.ascontiguousarray(block).view(np.uint8).reshape(-1, block.dtype.itemsize)
    return np.ascontiguousarray(b.T).tobytes()


def _zstd(data: bytes) -> bytes:
    comp = getattr(_local, "zstd", None)
    if comp is None:  # one compressor per thread: ZstdCompressor objects are not thread-safe
        import zstandard

        comp = _local.zstd = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    return comp.compress(data)


def encoder(compression: str) -> Callable[[np.ndarray], bytes] | None:
    """The function turning a full-size block into the stored chunk bytes, or None (HDF5 filters it)."""
    if compression == "none":
        return lambda block: np.ascontiguousarray(block).tobytes()
    if compression == "gzip":
        return lambda block: zlib.compress(shuffle(block), GZIP_LEVEL)
    if compression == "zstd":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            return None
        return lambda block: _zstd(shuffle(block))
    return None
