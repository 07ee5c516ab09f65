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
    indices: set[Path] = set()

    def walk(vpath: Path, vfile: h5py.File) -> None:
        for name in vfile:
            ds = vfile[name]
            if not isinstance(ds, h5py.Dataset) or not ds.is_virtual:
                continue
            for m in ds.virtual_sources():
                src = vpath if m.file_name == "." else Path(m.file_name)
                src = (src if src.is_absolute() else vpath.parent / src).resolve()
                if src in seen or src in indices or src == vpath.resolve():
                    continue
                if not src.is_file():
                    raise GansimError(f"{path}: source file {src} of virtual dataset '{name}' is missing; HDF5 would "
                                      "read its events as fill values (NaN)")
                with h5py.File(src, "r") as sf:
                    nested = any(isinstance(sf[n], h5py.Dataset) and sf[n].is_virtual for n in sf)
                    if nested:  # the index of a subdirectory: follow it
                        indices.add(src)
                        walk(src, sf)
                        continue
                seen[src] = None

    walk(Path(path), f)
    return list(seen), len(seen) + len(indices)


def ensure_open_files(needed: int, what: str) -> int:
    """Raise the soft RLIMIT_NOFILE so that `needed` files can be open at once (plus a margin); GansimError when
    the hard limit forbids it. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + OPEN_FILES_MARGIN
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft if soft != resource.RLIM_INFINITY else 1 << 30
    if hard != resource.RLIM_INFINITY and hard < want:
        raise GansimError(f"reading all of {what} at once needs {needed:,} open files, but this process may open "
                          f"at most {hard:,} (ulimit -n hard limit) and HDF5 would silently read the rest as fill "
                          f"values. Raise the limit (ulimit -n {want}), or read a production run with "
                          "gansim.open_dataset(DIR), which holds only a few files open")
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def check_virtual(path: Path, f: h5py.File) -> int:
    """Before reading a virtual file: all sources present and openable together; returns the number of sources."""
    leaves, files = source_files(path, f)
    nested = f" + {files - len(leaves):,} nested indices" if files > len(leaves) else ""
    ensure_open_files(files, f"{path} ({len(leaves):,} source files{nested})")
    return len(leaves)
