"""Conditioning of generated events: incident energies (distribution or file) and jet labels, per chunk."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gansim.errors import GansimError

DEFAULT_ENERGY = "uniform:1,100"


@dataclass(frozen=True)
class EnergySpec:
    """A distribution of incident energies in GeV: uniform, log-uniform, fixed, or resampled from a file."""

    kind: str  # uniform | log-uniform | fixed | file
    a: float = 0.0
    b: float = 0.0
    values: np.ndarray | None = None  # file values (GeV)
    text: str = ""
    file_sha256: str = ""

    @property
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest energy this distribution can draw (GeV)."""
        if self.kind == "file":
            assert self.values is not None
            return float(self.values.min()), float(self.values.max())
        return (self.a, self.a) if self.kind == "fixed" else (self.a, self.b)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n energies (float32, GeV) drawn from rng; file values are sampled with replacement."""
        if self.kind == "uniform":
            e = rng.uniform(self.a, self.b, size=n)
        elif self.kind == "log-uniform":
            e = np.exp(rng.uniform(math.log(self.a), math.log(self.b), size=n))
        elif self.kind == "fixed":
            e = np.full(n, self.a)
        else:
            assert self.values is not None
            e = self.values[rng.integers(0, len(self.values), size=n)]
        return e.astype(np.float32)


def parse_energy(text: str) -> EnergySpec:
    """'uniform:1,100', 'log-uniform:1,100' or 'fixed:50' (GeV)."""
    s = text.strip().lower()
    kind, _, args = s.partition(":")
    try:
        nums = [float(x) for x in args.split(",")] if args else []
    except ValueError:
        raise GansimError(f"--energy {text!r}: numbers expected after ':' (e.g. uniform:1,100)") from None
    if kind in ("uniform", "log-uniform"):
        if len(nums) != 2:
            raise GansimError(f"--energy {text!r}: {kind} needs two values, e.g. {kind}:1,100")
        a, b = nums
        if not (math.isfinite(a) and math.isfinite(b) and 0 < a < b):
            raise GansimError(f"--energy {text!r}: need 0 < low < high (GeV)")
        return EnergySpec(kind, a, b, text=f"{kind}:{a:g},{b:g}")
    if kind == "fixed":
        if len(nums) != 1 or not (math.isfinite(nums[0]) and nums[0] > 0):
            raise GansimError(f"--energy {text!r}: fixed needs one positive value, e.g. fixed:50")
        return EnergySpec("fixed", nums[0], text=f"fixed:{nums[0]:g}")
    raise GansimError(f"--energy {text!r}: unknown distribution (use uniform:a,b, log-uniform:a,b or fixed:E, in GeV)")


def load_energy_file(path: str | Path) -> EnergySpec:
    """Energies from an HDF5 file ('energy' dataset), a .npy array or a text column; checked positive."""
    path = Path(path)
    if not path.is_file():
        raise GansimError(f"--energy-file {path}: file not found")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    try:
        if path.suffix.lower() in (".h5", ".hdf5", ".hdf"):
            import h5py

            with h5py.File(path, "r") as f:
                if "energy" not in f:
                    raise GansimError(f"--energy-file {path}: no 'energy' dataset (found: {', '.join(f.keys())})")
                if not isinstance(f["energy"], h5py.Dataset):
                    raise GansimError(f"--energy-file {path}: 'energy' is a group, expected a dataset of energies")
                values = np.asarray(f["energy"][:], dtype=np.float64)
        elif path.suffix.lower() == ".npy":
            values = np.load(path, allow_pickle=False).astype(np.float64)
        else:
            values = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except GansimError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise GansimError(f"--energy-file {path}: cannot read energies ({first})") from None
    # one column only: a two-column table ("energy weight") must not be flattened into one list of numbers
    if values.ndim > 2 or (values.ndim == 2 and values.shape[1] != 1):
        raise GansimError(f"--energy-file {path}: has shape {values.shape}; give one column of incident "
                          "energies in GeV (one value per line, or an (N,) / (N, 1) array)")
    values = values.reshape(-1)
    if values.size == 0:
        raise GansimError(f"--energy-file {path}: contains no energies")
    if not np.isfinite(values).all() or (values <= 0).any():
        raise GansimError(f"--energy-file {path}: energies must be finite and positive (GeV)")
    return EnergySpec("file", values=values, text=f"file:{path.name}", file_sha256=sha)
