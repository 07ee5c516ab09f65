"""--layout single: one shared DIR/dataset.h5 written collectively by all ranks with parallel HDF5 (driver="mpio").

Datasets are preallocated at full size (N events) and chunked along events. Compressed datasets under parallel
HDF5 (>= 1.10.2) must be written collectively, so every rank takes part in every write round: round i writes the
i-th chunk of each rank, and a rank without one joins with an empty selection. gzip/lzf/none are supported here;
plugin filters (zstd, blosc) are not, because they would have to be loaded identically on every rank.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.errors import GansimError
from gansim.produce.plan import Plan
from gansim.produce.storage import H5_CHUNK_EVENTS, filter_kwargs, keys_for, storage_dtype

SINGLE_COMPRESSIONS = ("gzip", "lzf", "none")
HOW_TO_GET = ("h5py here was built without MPI (h5py.get_config().mpi is False), which --layout single needs. "
              "Build parallel h5py with `bash cluster/setup_phdf5.sh` (creates .venv-phdf5 with system parallel HDF5 "
              "+ Open MPI; then run .venv-phdf5/bin/gansim under mpiexec), or on a cluster: load the parallel HDF5 "
              "module and `CC=mpicc HDF5_MPI=ON pip install --no-binary=h5py --no-build-isolation h5py`. "
              "Or use --layout shards, which needs no parallel HDF5")


def check_parallel_h5py(compression: str) -> None:
    """Fail fast (before any file is touched) when this h5py cannot do collective parallel writes."""
    import h5py

    if not h5py.get_config().mpi:
        raise GansimError(HOW_TO_GET)
    if compression not in SINGLE_COMPRESSIONS:
        raise GansimError(f"--layout single supports --compression {', '.join(SINGLE_COMPRESSIONS)} "
                          f"(got {compression}); use --layout shards for plugin filters")


def h5_chunk_events(plan: Plan) -> int:
    """HDF5 chunk rows: a divisor of the production chunk when possible, so ranks rarely share an HDF5 chunk."""
    c = plan.chunk_size
    for h in range(min(H5_CHUNK_EVENTS, c), max(H5_CHUNK_EVENTS // 4, 1) - 1, -1):
        if c % h == 0:
            return h
    return min(H5_CHUNK_EVENTS, c)


class SingleFile:
    """The shared file, open on every rank; every method is collective."""

    def __init__(self, path: Path, plan: Plan, comm: Any, create: bool, attrs: dict[str, Any]) -> None:
        import h5py

        self.plan, self.comm = plan, comm
        try:
            self.f = h5py.File(path, "w" if create else "r+", driver="mpio", comm=comm)
        except OSError as exc:
            raise GansimError(f"{path}: cannot {'create' if create else 'reopen'} the shared file ({exc}); a run "
                              "killed mid-write can leave it unreadable - rerun with --overwrite") from None
        self.ds: dict[str, Any] = {}
        rows = h5_chunk_events(plan)
        kw = filter_kwargs(plan.compression)
        for key, shape in keys_for(plan.kind).items():
            if create:
                self.ds[key] = self.f.create_dataset(key, shape=(plan.events, *shape),
                                                     dtype=storage_dtype(key, plan.dtype),
                                                     chunks=(min(rows, plan.events), *shape), **kw)
            else:
                self.ds[key] = self.f[key]
        if create:
            for name, v in attrs.items():
                self.f.attrs[name] = v

    def write_round(self, k: int | None, arrays: dict[str, np.ndarray] | None) -> None:
        """Collective: this rank writes chunk k (or nothing when k is None) into every dataset."""
        import h5py

        dxpl = h5py.h5p.create(h5py.h5p.DATASET_XFER)
        dxpl.set_dxpl_mpio(h5py.h5fd.MPIO_COLLECTIVE)
        for key, shape in keys_for(self.plan.kind).items():
            ds = self.ds[key]
            fspace = ds.id.get_space()
            if k is None or arrays is None:
                fspace.select_none()
                mspace = h5py.h5s.create_simple((1, *shape))
                mspace.select_none()
                buf = np.zeros((1, *shape), dtype=ds.dtype)
            else:
                start, stop = self.plan.chunk_range(k)
                buf = np.ascontiguousarray(arrays[key], dtype=ds.dtype)
                fspace.select_hyperslab((start, *([0] * len(shape))), (stop - start, *shape))
                mspace = h5py.h5s.create_simple(buf.shape)
            ds.id.write(mspace, fspace, buf, dxpl=dxpl)
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def read_chunk(path: Path, plan: Plan, k: int) -> dict[str, np.ndarray]:
    """Chunk k's rows of the shared file (serial read; any h5py can read a file written with mpio)."""
    import h5py

    start, stop = plan.chunk_range(k)
    with h5py.File(path, "r") as f:
        return {key: f[key][start:stop] for key in keys_for(plan.kind)}
