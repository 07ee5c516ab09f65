"""Atomic file commits: write to a temporary name beside the target, optionally fsync, then rename."""

from __future__ import annotations

import os
import secrets
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


def _new_temporary(path: Path) -> Path:
    """Create an empty `.NAME.XXXXXXXX.tmp` beside path with the mode a plain open() gives (0666 minus the umask).

    tempfile.mkstemp would make it 0600, and the rename would keep that: colleagues and web servers could not
    read productions, reports or generators. O_EXCL keeps mkstemp's guarantee that the name is ours alone.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


@contextmanager
def atomic_path(path: str | Path, *, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path `.NAME.XXXXXXXX.tmp` in the target's directory; on success rename it to `path`.

    Readers see the old file or the new one, never half of one; on any failure the temporary is removed and an
    existing file at `path` is left untouched. fsync=True also flushes the file and the directory entry. The file
    gets the mode a plain open() would give a new file under the user's umask (0644 under umask 022).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(path)
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
