"""The data contract: CaloGAN shower and LAGAN jet-image HDF5 layouts, and their validation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.atomic import atomic_path
from gansim.errors import GansimError


class SchemaError(GansimError, ValueError):
    """A file that does not follow the data contract; the message names the problem."""


@dataclass(frozen=True)
class Key:
    """One dataset of a format: per-event shape (without N), dtype written, unit."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    unit: str
    doc: str


# CaloGAN (Mendeley Data 10.17632/pvn3xc3wy5.1). Cell sizes are (eta x phi) in mm.
CALO_LAYERS: tuple[str, ...] = ("layer_0", "layer_1", "layer_2")
LAYER_SHAPES: dict[str, tuple[int, int]] = {"layer_0": (3, 96), "layer_1": (12, 12), "layer_2": (12, 6)}
CELL_SIZES_MM: dict[str, tuple[float, float]] = {
    "layer_0": (160.0, 5.0),  # rows x columns: 3 rows of 160 mm, 96 columns of 5 mm
    "layer_1": (40.0, 40.0),
    "layer_2": (40.0, 80.0),  # 12 rows of 40 mm, 6 columns of 80 mm
}
LAYER_DEPTHS_MM: tuple[float, float, float] = (90.0, 347.0, 43.0)
CALO_KEYS: tuple[Key, ...] = (
    Key("energy", (1,), "float32", "GeV", "incident particle energy"),
    Key("layer_0", (3, 96), "float32", "MeV", "cell energies, pre-sampler-like layer (3 x 96 cells)"),
    Key("layer_1", (12, 12), "float32", "MeV", "cell energies, middle layer (12 x 12 cells)"),
    Key("layer_2", (12, 6), "float32", "MeV", "cell energies, back layer (12 x 6 cells)"),
    Key("overflow", (3,), "float32", "MeV", "energy deposited outside each layer's readout"),
)

# LAGAN jet images: 25 x 25 pixels over eta, phi in [-1.25, 1.25], pixel = pT in GeV.
JET_IMAGE_SHAPE: tuple[int, int] = (25, 25)
JET_KEYS: tuple[Key, ...] = (
    Key("image", JET_IMAGE_SHAPE, "float32", "GeV", "jet image, pixel = pT"),
    Key("signal", (), "float32", "", "1 = W' -> WZ signal, 0 = QCD background"),
)
JET_OPTIONAL_KEYS: tuple[Key, ...] = (
    Key("pt", (), "float32", "GeV", "trimmed jet pT"),
    Key("eta", (), "float32", "", "jet pseudorapidity"),
    Key("phi", (), "float32", "rad", "jet azimuth"),
    Key("mass", (), "float32", "GeV", "trimmed jet mass"),
    Key("tau_21", (), "float32", "", "N-subjettiness ratio tau2/tau1"),
)
FORMATS: dict[str, tuple[Key, ...]] = {"calo": CALO_KEYS, "jets": JET_KEYS}
BLOCK = 65536  # events per streaming block when scanning large files


@dataclass
class Summary:
    """What `gansim inspect` reports about a valid file."""

    path: str
    format: str
    n_events: int
    energy_range: tuple[float, float]
    layer_mean: dict[str, float] = field(default_factory=dict)
    layer_sparsity: dict[str, float] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    virtual: bool = False


def detect_format(f: h5py.File) -> str:
    """'calo' or 'jets' from the keys present."""
    if "image" in f:
        return "jets"
    if any(k in f for k in ("energy", *CALO_LAYERS)):
        return "calo"
    raise SchemaError(f"no CaloGAN ('energy', 'layer_0'...) or jet ('image') datasets; found: "
                      f"{', '.join(sorted(f.keys())) or 'nothing'}")


def open_h5(path: str | Path) -> h5py.File:
    """Open for reading with clear errors for missing and non-HDF5 files."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: file not found")
    if path.is_dir():
        raise SchemaError(f"{path}: is a directory (for a production run pass {path}/dataset.h5)")
    if not h5py.is_hdf5(path):
        raise SchemaError(f"{path}: not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise SchemaError(f"{path}: cannot open as HDF5 ({exc})") from None


def _check_key(f: h5py.File, key: Key, path: Path, n: int | None) -> int:
    if key.name not in f:
        raise SchemaError(f"{path}: missing dataset '{key.name}' ({key.doc})")
    ds = f[key.name]
    if not isinstance(ds, h5py.Dataset):
        raise SchemaError(f"{path}: '{key.name}' is a group, expected a dataset")
    shape = tuple(ds.shape)
    # Accept (N,) where the contract says (N, 1): some writers squeeze the incident energy.
    ok = shape[1:] == key.shape or (key.shape == (1,) and len(shape) == 1)
    if len(shape) == 0 or not ok:
        want = "(N" + "".join(f", {s}" for s in key.shape) + ")"
        raise SchemaError(f"{path}: dataset '{key.name}' has shape {shape}, expected {want}")
    if ds.dtype.kind != "f":
        raise SchemaError(f"{path}: dataset '{key.name}' has dtype {ds.dtype}, expected a float type "
                          f"({key.dtype})")
    if n is not None and shape[0] != n:
        raise SchemaError(f"{path}: dataset '{key.name}' has {shape[0]} events but 'energy'/'image' has {n}")
    return shape[0]


def iter_blocks(ds: h5py.Dataset, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Stream a dataset in blocks of events (bounded memory on huge files)."""
    for start in range(0, ds.shape[0], block):
        yield ds[start:start + block]


def _scan_values(f: h5py.File, keys: tuple[Key, ...], path: Path, fmt: str) -> None:
    for key in keys:
        if key.name not in f:
            continue
        for i, blk in enumerate(iter_blocks(f[key.name])):
            if not np.isfinite(blk).all():
                bad = int((~np.isfinite(blk)).reshape(len(blk), -1).any(axis=1).argmax()) + i * BLOCK
                raise SchemaError(f"{path}: dataset '{key.name}' contains NaN or inf (first at event {bad})")
            if key.name in ("energy",) and (blk <= 0).any():
                bad = int((blk.reshape(len(blk), -1) <= 0).any(axis=1).argmax()) + i * BLOCK
                raise SchemaError(f"{path}: negative or zero incident energy in 'energy' at event {bad}")
            if fmt == "calo" and key.name != "energy" and (blk < 0).any():
                bad = int((blk.reshape(len(blk), -1) < 0).any(axis=1).argmax()) + i * BLOCK
                raise SchemaError(f"{path}: negative cell energy in '{key.name}' at event {bad}")
            if fmt == "jets" and key.name == "image" and (blk < 0).any():
                raise SchemaError(f"{path}: negative pixel pT in 'image'")


def validate(path: str | Path, expect: str | None = None, scan: bool = True) -> Summary:
    """Check a file against the contract; return a Summary or raise SchemaError naming the problem."""
    path = Path(path)
    with open_h5(path) as f:
        fmt = detect_format(f)
        if expect is not None and fmt != expect:
            raise SchemaError(f"{path}: is a {fmt} file, expected {expect}")
        keys = FORMATS[fmt]
        n = None
        for key in keys:
            n = _check_key(f, key, path, n)
        if fmt == "jets":
            for key in JET_OPTIONAL_KEYS:
                if key.name in f:
                    _check_key(f, key, path, n)
        assert n is not None
        if n == 0:
            raise SchemaError(f"{path}: contains no events")
        if scan:
            _scan_values(f, keys + (JET_OPTIONAL_KEYS if fmt == "jets" else ()), path, fmt)
        summary = Summary(path=str(path), format=fmt, n_events=n, energy_range=(0.0, 0.0),
                          attrs={k: _plain(v) for k, v in f.attrs.items()},
                          virtual=any(f[k.name].is_virtual for k in keys))
        sample = slice(0, min(n, 20000))
        if fmt == "calo":
            e = np.asarray(f["energy"][sample]).reshape(-1)
            summary.energy_range = (float(f["energy"][:].min()), float(f["energy"][:].max())) if n <= 10**6 \
                else (float(e.min()), float(e.max()))
            for layer in CALO_LAYERS:
                x = np.asarray(f[layer][sample], dtype=np.float64)
                summary.layer_mean[layer] = float(x.reshape(len(x), -1).sum(axis=1).mean())
                summary.layer_sparsity[layer] = float((x == 0).mean())
        else:
            img = np.asarray(f["image"][sample], dtype=np.float64)
            pt = img.reshape(len(img), -1).sum(axis=1)
            summary.energy_range = (float(pt.min()), float(pt.max()))
            summary.layer_mean["image"] = float(pt.mean())
            summary.layer_sparsity["image"] = float((img == 0).mean())
    return summary


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_calo(path: str | Path, energy: np.ndarray, layers: dict[str, np.ndarray], overflow: np.ndarray,
               attrs: dict[str, Any] | None = None, compression: str | None = "gzip") -> Path:
    """Write a CaloGAN-format file atomically (temporary name, then rename)."""
    path = Path(path)
    n = len(energy)
    energy = np.asarray(energy, dtype=np.float32).reshape(n, 1)
    arrays = {"energy": energy, **{k: np.asarray(layers[k], dtype=np.float32) for k in CALO_LAYERS},
              "overflow": np.asarray(overflow, dtype=np.float32).reshape(n, 3)}
    for key in CALO_KEYS:
        if arrays[key.name].shape[1:] != key.shape:
            raise SchemaError(f"cannot write '{key.name}': shape {arrays[key.name].shape}, expected (N, {key.shape})")
    return write_atomic(path, arrays, attrs, compression)


def write_atomic(path: str | Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any] | None = None,
                 compression: str | None = "gzip") -> Path:
    """Write float32 datasets (+ attributes) to a temporary name, then rename: no half-written file is ever
    visible under `path`, and an existing file there survives any failure."""
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, arr in arrays.items():
            arr = np.asarray(arr, dtype=np.float32)
            kw: dict[str, Any] = {}
            if compression and len(arr) > 0:
                kw = {"compression": compression, "shuffle": True, "chunks": (min(len(arr), 1024), *arr.shape[1:])}
            f.create_dataset(name, data=arr, **kw)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return path


def read_calo(path: str | Path, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
    """Read (a slice of) a CaloGAN file as float32 arrays; energy as shape (N,)."""
    validate(path, expect="calo", scan=False)
    with h5py.File(path, "r") as f:
        out = {k.name: np.asarray(f[k.name][start:stop], dtype=np.float32) for k in CALO_KEYS}
    out["energy"] = out["energy"].reshape(-1)
    return out
