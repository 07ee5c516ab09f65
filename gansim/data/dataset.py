"""Torch Datasets over CaloGAN and jet-image HDF5 files: lazy per-worker h5py handles or in-memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from gansim.data.schema import read_rows, validate
from gansim.kinds import get_kind
from gansim.seeding import Purpose, numpy_rng


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split: a permutation from `seed`, the last val_fraction held out.

    The rule depends only on (n, val_fraction, seed), so every worker and every restart agree.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    perm = numpy_rng(seed, Purpose.SPLIT, n).permutation(n)
    n_val = int(round(n * val_fraction))
    train, val = perm[: n - n_val], perm[n - n_val:]
    return np.sort(train), np.sort(val)


class H5EventDataset(Dataset):
    """Events of one HDF5 file as dicts of float32 tensors.

    Items hold the kind's condition (shape (1,)) and modelled keys in file units, e.g. energy (1,) GeV and
    layer_0 (3, 96), layer_1 (12, 12), layer_2 (12, 6) MeV for showers; signal (1,) and image (25, 25) GeV for jets.
    With in_memory=False the file is opened lazily once per process (DataLoader workers each get
    their own handle: h5py handles must not cross fork boundaries).
    """

    def __init__(self, path: str | Path, indices: np.ndarray | None = None, in_memory: bool = True,
                 max_events: int = 0) -> None:
        self.path = str(path)
        summary = validate(self.path, scan=False)
        self.format = summary.format
        self.kind = get_kind(summary.format)
        self.keys: tuple[str, ...] = self.kind.read_keys()
        n = summary.n_events if max_events <= 0 else min(summary.n_events, max_events)
        self.indices = np.arange(n) if indices is None else np.asarray(indices, dtype=np.int64)
        if len(self.indices) and (self.indices.min() < 0 or self.indices.max() >= summary.n_events):
            raise IndexError("dataset indices out of range")
        self.attrs = summary.attrs
        self._h5: h5py.File | None = None
        self._pid: int | None = None
        self._mem: dict[str, np.ndarray] | None = None
        if in_memory:
            with h5py.File(self.path, "r") as f:
                self._mem = {k: self._read(f[k], self.indices) for k in self.keys}

    def _read(self, ds: h5py.Dataset, idx: np.ndarray) -> np.ndarray:
        # Contiguous read then gather: far faster than h5py fancy indexing on big index lists.
        lo, hi = (int(idx.min()), int(idx.max()) + 1) if len(idx) else (0, 0)
        out = np.asarray(read_rows(ds, slice(lo, hi), self.path), dtype=np.float32)[idx - lo]
        if ds.name.lstrip("/") == self.kind.cond_key:
            out = out.reshape(len(idx), 1)  # one shape for the condition, (N,) or (N, 1) in the file
        return out

    def _file(self) -> h5py.File:
        import os

        if self._h5 is None or self._pid != os.getpid():
            self._h5 = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._h5

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if self._mem is not None:
            # np.asarray: per-event scalars (jet `signal`) index to numpy scalars, which from_numpy rejects.
            return {k: torch.from_numpy(np.asarray(v[i])) for k, v in self._mem.items()}
        f = self._file()
        j = int(self.indices[i])
        item: dict[str, Any] = {}
        for k in self.keys:
            v = np.asarray(read_rows(f[k], slice(j, j + 1), self.path)[0], dtype=np.float32)
            item[k] = torch.from_numpy(v.reshape(1) if k == self.kind.cond_key else v)
        return item

    def arrays(self) -> dict[str, np.ndarray]:
        """All selected events as numpy arrays (for validation samples and metrics)."""
        if self._mem is not None:
            return dict(self._mem)
        with h5py.File(self.path, "r") as f:
            return {k: self._read(f[k], self.indices) for k in self.keys}

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_h5"] = None  # never pickle an open handle
        return state


def train_val_datasets(path: str | Path, val_fraction: float, seed: int, in_memory: bool = True,
                       max_events: int = 0) -> tuple[H5EventDataset, H5EventDataset]:
    """The seeded train/validation pair used by training and tuning."""
    n = validate(path, scan=False).n_events
    if max_events > 0:
        n = min(n, max_events)
    tr, va = split_indices(n, val_fraction, seed)
    return (H5EventDataset(path, tr, in_memory=in_memory), H5EventDataset(path, va, in_memory=in_memory))


__all__ = ["H5EventDataset", "split_indices", "train_val_datasets"]
