"""gansim.open_dataset(DIR): read a production run of any size without HDF5's silent fill values.

    import gansim
    with gansim.open_dataset("DIR") as ds:          # DIR of `gansim produce` (either layout)
        len(ds), ds.keys()                          # events; energy, layer_0, ... (or image, signal)
        x = ds["layer_0"][10**9:10**9 + 5000]       # any slice, int, or integer array; numpy out
        for block in ds.iter_blocks(100_000):       # dicts of arrays, in event order
            ...

Rows are read straight from the chunk files listed in manifest.json, at most MAX_OPEN of them open at a time,
so the open-file limit never matters; a missing or unreadable chunk file is an error naming it, never NaN.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.errors import GansimError
from gansim.produce.layout import DATASET, chunk_relpath
from gansim.produce.manifest import MANIFEST, load_manifest
from gansim.produce.plan import Plan
from gansim.produce.storage import keys_for, load_plugins_for, storage_dtype

MAX_OPEN = 8


class ProductionDataset:
    """A read-only view of a complete production run (both layouts)."""

    def __init__(self, out: str | Path, max_open: int = MAX_OPEN) -> None:
        self.dir = Path(out)
        if self.dir.is_file() and self.dir.name == DATASET:
            self.dir = self.dir.parent
        manifest = load_manifest(self.dir)
        if manifest is None:
            raise GansimError(f"{self.dir}: no {MANIFEST} (not a gansim production directory)")
        self.plan = Plan.from_dict(manifest["plan"])
        done = len(manifest["chunks"])
        if done != self.plan.n_chunks:
            raise GansimError(f"{self.dir}: incomplete production ({done} of {self.plan.n_chunks} chunks committed); "
                              "rerun the produce command to finish it")
        load_plugins_for(self.plan.compression)
        self.shapes = keys_for(self.plan.kind)
        self.max_open = max(1, max_open)
        self._files: OrderedDict[Path, h5py.File] = OrderedDict()

    # -- mapping-like -------------------------------------------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self.shapes)

    def __len__(self) -> int:
        return self.plan.events

    def __getitem__(self, key: str) -> Column:
        if key not in self.shapes:
            raise KeyError(f"{key!r} (datasets: {', '.join(self.shapes)})")
        return Column(self, key)

    def __enter__(self) -> ProductionDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._files:
            self._files.popitem(last=False)[1].close()

    def iter_blocks(self, block: int = 65536, keys: list[str] | None = None) -> Iterator[dict[str, np.ndarray]]:
        """Consecutive blocks of `block` events (the last shorter), every key or `keys`."""
        for s in range(0, len(self), block):
            yield {k: self.read(k, s, min(s + block, len(self))) for k in (keys or self.keys())}

    # -- reading ------------------------------------------------------------------------------------------------
    def read(self, key: str, start: int, stop: int) -> np.ndarray:
        """Rows [start, stop) of `key`."""
        shape = self.shapes[key]
        out = np.empty((max(stop - start, 0), *shape), dtype=storage_dtype(key, self.plan.dtype))
        if stop <= start:
            return out
        c = self.plan.chunk_size
        for k in range(start // c, (stop - 1) // c + 1):
            first, last = self.plan.chunk_range(k)
            a, b = max(start, first), min(stop, last)
            f, offset = self._source(k)
            out[a - start:b - start] = f[key][a - first + offset:b - first + offset]
        return out

    def _source(self, k: int) -> tuple[h5py.File, int]:
        """(open file holding chunk k, row of the chunk's first event in it)."""
        if self.plan.layout == "single":
            path, offset = self.dir / DATASET, self.plan.chunk_range(k)[0]
        else:
            path, offset = self.dir / chunk_relpath(self.plan, k), 0
        f = self._files.get(path)
        if f is None:
            try:
                f = h5py.File(path, "r")
            except (OSError, RuntimeError) as exc:
                raise GansimError(f"{path}: chunk {k} cannot be read ({str(exc).splitlines()[0]}); "
                                  "`gansim inspect DIR/dataset.h5 --deep` checks the whole run") from None
            self._files[path] = f
            if len(self._files) > self.max_open:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(path)
        return f, offset


class Column:
    """One dataset of a production run, sliced like a numpy array along the event axis."""

    def __init__(self, ds: ProductionDataset, key: str) -> None:
        self.ds, self.key = ds, key
        self.shape = (len(ds), *ds.shapes[key])
        self.dtype = storage_dtype(key, ds.plan.dtype)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, idx: Any) -> np.ndarray:
        n = len(self)
        if isinstance(idx, (int, np.integer)):
            i = int(idx) + (n if idx < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"event {idx} outside 0..{n - 1}")
            return self.ds.read(self.key, i, i + 1)[0]
        if isinstance(idx, slice):
            start, stop, step = idx.indices(n)
            if step == 1:
                return self.ds.read(self.key, start, max(start, stop))
            idx = np.arange(start, stop, step)
        rows = np.asarray(idx)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.where(rows < 0, rows + n, rows).astype(np.int64)
        if rows.size and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"event index outside 0..{n - 1}")
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.shape[1:]), self.dtype)
        sorted_rows = rows[order]
        c = self.ds.plan.chunk_size
        bounds = np.flatnonzero(np.diff(sorted_rows // c)) + 1
        for group, pos in zip(np.split(sorted_rows, bounds), np.split(order, bounds), strict=True):
            if group.size:
                lo = int(group[0])
                block = self.ds.read(self.key, lo, int(group[-1]) + 1)
                out[pos] = block[group - lo]
        return out


def open_dataset(out: str | Path, max_open: int = MAX_OPEN) -> ProductionDataset:
    """Open a production directory (or its dataset.h5) for reading; see the module docstring."""
    return ProductionDataset(out, max_open=max_open)
