"""Atomic file commits: write to a temporary name beside the target, optionally fsync, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def fsync_path(path: str | Path) -> None:
    """fsync a file or a directory (a directory fsync makes a rename inside it survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path `.NAME.XXXX.tmp` in the target's directory; on success rename it to `path`.

    Readers see the old file or the new one, never half of one; on any failure the temporary is removed and an
    existing file at `path` is left untouched. fsync=True also flushes the file and the directory entry.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if fsync:
            fsync_path(tmp)
        os.replace(tmp, path)
        if fsync:
            fsync_path(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
