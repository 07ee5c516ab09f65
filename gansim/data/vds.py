"""HDF5 virtual datasets without silent fill values: find every source file and make sure they can all be open.

HDF5 reads a source it cannot open (missing, unreadable, or past the open-file limit) as the fill value, without
any error: with 2,000 sources and `ulimit -n 512`, one whole-dataset read returned NaN for 75 % of the rows.
gansim's readers therefore check, before reading a virtual dataset, that every source file exists and that the
process may hold all of them open at once (raising the soft RLIMIT_NOFILE up to the hard limit when needed).
"""

from __future__ import annotations

import resource
from pathlib import Path

import h5py

from gansim.errors import GansimError

OPEN_FILES_MARGIN = 64  # descriptors kept for everything else (libraries, logs, sockets)


def source_files(path: Path, f: h5py.File) -> tuple[list[Path], int]:
    """(every non-virtual source file behind the virtual datasets of `f`, in order; how many files, indices of
    subdirectories included, a whole-dataset read opens). Nested VDS are followed. GansimError naming the first
    source file that does not exist."""
    seen: dict[Path, None] = {}
    memo: dict[Path, list[Path]] = {}

    def walk(vpath: Path, vfile: h5py.File) -> None:
        for name in vfile:
            ds = vfile[name]
            if not isinstance(ds, h5py.Dataset) or not ds.is_virtual:
                continue
            for m in ds.virtual_sources():
                src = Path(m.file_name)
                src = (vpath.parent / src) if m.file_name != "." and not src.is_absolute() else \
                    (vpath if m.file_name == "." else src)
                src = src.resolve()
                if src in seen or src == vpath.resolve():
                    continue
                if not src.is_file():
                    raise GansimError(f"{path}: source file {src} of virtual dataset '{name}' is missing; HDF5 would "
                                      "read its events as fill values (NaN)")
                if src not in memo:
                    memo[src] = []
                    with h5py.File(src, "r") as sf:
                        if any(isinstance(sf[n], h5py.Dataset) and sf[n].is_virtual for n in sf):
                            walk(src, sf)  # an index of a subdirectory: follow it
                            continue
                seen[src] = None

    walk(Path(path), f)
    return list(seen), len(memo)


def ensure_open_files(needed: int, what: str) -> int:
    """Raise the soft RLIMIT_NOFILE so that `needed` files can be open at once (plus a margin); GansimError when
    the hard limit forbids it. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + OPEN_FILES_MARGIN
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft if soft != resource.RLIM_INFINITY else 1 << 30
    if hard != resource.RLIM_INFINITY and hard < want:
        raise GansimError(f"{what} maps {needed:,} source files, which HDF5 may need open at once, but this process "
                          f"may open at most {hard:,} files (ulimit -n hard limit); HDF5 would silently read the "
                          f"rest as fill values. Raise the limit (ulimit -n {want}), or read a production run "
                          "with gansim.open_dataset(DIR), which holds only a few files open")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def check_virtual(path: Path, f: h5py.File) -> int:
    """Before reading a virtual file: all sources present and openable together; returns the number of sources."""
    leaves, files = source_files(path, f)
    ensure_open_files(files, str(path))
    return len(leaves)
