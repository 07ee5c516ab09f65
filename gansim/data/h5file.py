"""HDF5 files written through a Python file object, so that a full disk is one OSError and never an HDF5 crash.

When a write fails inside HDF5 (ENOSPC, EIO), HDF5 cannot flush its caches, so it cannot close the file: every
later close raises again, and at interpreter exit the library's own clean-up segfaults (rc 139 after a wall of
tracebacks). Writing through `GuardedFile` keeps the failure out of HDF5: the first failed write is recorded,
later writes are dropped, HDF5 closes normally, and the recorded error is raised naming the file.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py


class GuardedFile:
    """A binary file for h5py's fileobj driver that records the first I/O error instead of passing it on.

    Unbuffered on purpose: with a buffer, a seek or a tell can flush and fail too, and every call would need the
    same care; here only write, truncate and close touch the disk's free space.
    """

    def __init__(self, path: str | Path, shown: str | Path | None = None) -> None:
        self.path = Path(path)
        self.shown = Path(shown or path)  # the name errors give (the target of a temporary file)
        self._fh = open(self.path, "w+b", buffering=0)
        self.error: OSError | None = None

    def _fail(self, exc: OSError) -> None:
        if self.error is None:
            self.error = exc

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def read(self, size: int = -1) -> bytes:
        if self.error is not None:  # the file is lost anyway; HDF5 only needs an answer to finish closing
            return bytes(max(size, 0))
        try:
            return self._fh.read(size) or b""
        except OSError as exc:
            self._fail(exc)
            return bytes(max(size, 0))

    def write(self, data: bytes) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        try:
            while self.error is None and view:  # a raw write may write less than asked: write the rest
                done = self._fh.write(view)
                if not done:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[done:]
        except OSError as exc:
            self._fail(exc)
        return n

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._fh.truncate(size)
            except OSError as exc:
                self._fail(exc)
        return self._fh.tell() if size is None else size

    def flush(self) -> None:
        """Nothing is buffered here (HDF5 calls this before closing)."""

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            self._fail(exc)

    def check(self) -> None:
        """Raise the recorded write error as an OSError naming this file (call it between large writes)."""
        if self.error is not None:
            code = self.error.errno or errno.EIO
            raise OSError(code, self.error.strerror or str(self.error), str(self.shown))


@contextmanager
def create_h5(path: str | Path, shown: str | Path | None = None) -> Iterator[tuple[h5py.File, GuardedFile]]:
    """Create (truncate) an HDF5 file at `path` for writing; yields (file, guard).

    A write error raises OSError(errno, strerror, shown or path) once HDF5 has let go of the file: at the latest on
    leaving the block, earlier wherever the caller calls guard.check(). The caller owns removing the partial file
    (gansim.atomic.atomic_path does).
    """
    guard = GuardedFile(path, shown)
    try:
        with h5py.File(guard, "w") as f:
            yield f, guard
            guard.check()  # stop before HDF5 spends time writing metadata into a lost file
    finally:
        guard.close()
    guard.check()
