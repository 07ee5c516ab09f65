"""The data contract's validation and atomic writing; each kind's keys and value rules live in gansim.kinds."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.atomic import atomic_path
from gansim.data.h5file import create_h5
from gansim.errors import GansimError, brief
from gansim.kinds import DataKind, Key, detect_kind, get_kind
from gansim.kinds.calo import CALO_KEYS, CALO_LAYERS


class SchemaError(GansimError, ValueError):
    """A file that does not follow the data contract; the message names the problem."""


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


def _raised_inside_h5py(exc: BaseException) -> bool:
    """True when the innermost frame of exc's traceback is h5py's own code (Python or Cython)."""
    tb, filename = exc.__traceback__, ""
    while tb is not None:
        filename, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
    return "h5py" in Path(filename).parts


@contextmanager
def damaged_as_schema_error(path: str | Path) -> Iterator[None]:
    """Turn errors that h5py raises on a damaged file (bad object headers, heaps, B-trees: OSError, RuntimeError,
    KeyError) into one SchemaError naming the file; errors raised by gansim's own code pass through untouched."""
    try:
        yield
    except (OSError, RuntimeError, KeyError) as exc:
        if not _raised_inside_h5py(exc):
            raise
        raise SchemaError(f"{path}: cannot be read ({brief(exc)}); the file is damaged") from None


def detect_format(f: h5py.File) -> DataKind:
    """The kind whose datasets the file holds (SchemaError naming what was found otherwise)."""
    kind = detect_kind(set(f.keys()))
    if kind is None:
        raise SchemaError(f"no CaloGAN ('energy', 'layer_0'...) or jet ('image') datasets; found: "
                          f"{', '.join(sorted(f.keys())) or 'nothing'}")
    return kind


def open_h5(path: str | Path) -> h5py.File:
    """Open for reading with clear errors for missing and non-HDF5 files."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{path}: file not found")
    if path.is_dir():
        raise SchemaError(f"{path}: is a directory (for a production run pass {path}/dataset.h5)")
    if not h5py.is_hdf5(path):
        raise SchemaError(f"{path}: not an HDF5 file")
    try:  # registers the zstd / blosc filters that `gansim produce --compression zstd` files use
        import hdf5plugin  # noqa: F401
    except ImportError:
        pass
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


def read_rows(ds: h5py.Dataset, rows: slice, path: str | Path) -> np.ndarray:
    """ds[rows]; a failed read (a corrupt compressed chunk, a failing disk) is a SchemaError naming the file, the
    dataset and the events, where h5py would say only "filter returned failure during read"."""
    try:
        return ds[rows]
    except (OSError, RuntimeError) as exc:  # what h5py raises for HDF5 read errors
        start, stop, _ = rows.indices(ds.shape[0])
        raise SchemaError(f"{path}: dataset '{ds.name.lstrip('/')}' cannot be read at events {start}..{stop - 1} "
                          f"({brief(exc)}); the file is damaged") from None


def iter_blocks(ds: h5py.Dataset, path: str | Path, block: int = BLOCK) -> Iterator[np.ndarray]:
    """Stream a dataset in blocks of events (bounded memory on huge files)."""
    for start in range(0, ds.shape[0], block):
        yield read_rows(ds, slice(start, start + block), path)


def _scan_values(f: h5py.File, kind: DataKind, path: Path) -> None:
    for key in (*kind.keys, *kind.optional_keys):
        if key.name not in f:
            continue
        for i, blk in enumerate(iter_blocks(f[key.name], path)):
            if not np.isfinite(blk).all():
                bad = int((~np.isfinite(blk)).reshape(len(blk), -1).any(axis=1).argmax()) + i * BLOCK
                raise SchemaError(f"{path}: dataset '{key.name}' contains NaN or inf (first at event {bad})")
            problem = kind.value_error(key.name, blk, i * BLOCK)
            if problem:
                raise SchemaError(f"{path}: {problem}")


def validate(path: str | Path, expect: str | None = None, scan: bool = True) -> Summary:
    """Check a file against the contract; return a Summary or raise SchemaError naming the problem."""
    path = Path(path)
    with open_h5(path) as f, damaged_as_schema_error(path):
        kind = detect_format(f)
        if expect is not None and kind is not get_kind(expect):
            raise SchemaError(f"{path}: is a {kind.name} file, expected {expect}")
        n = None
        for key in kind.keys:
            n = _check_key(f, key, path, n)
        for key in kind.optional_keys:
            if key.name in f:
                _check_key(f, key, path, n)
        assert n is not None
        if n == 0:
            raise SchemaError(f"{path}: contains no events")
        virtual = any(f[k.name].is_virtual for k in kind.keys)
        if virtual:  # every source present and openable at once: HDF5 would otherwise read fill values silently
            from gansim.data.vds import check_virtual

            check_virtual(path, f)
        if scan:
            _scan_values(f, kind, path)
        try:
            rng, means, empty = kind.summary(f, n)
        except (OSError, RuntimeError):
            _scan_values(f, kind, path)  # a damaged chunk: the scan names the dataset and the events
            raise
        return Summary(path=str(path), format=kind.name, n_events=n, energy_range=rng, layer_mean=means,
                       layer_sparsity=empty, attrs={k: _plain(v) for k, v in f.attrs.items()},
                       virtual=virtual)


def written_by_gansim(path: str | Path) -> bool:
    """True for an HDF5 file whose provenance says a gansim simulator wrote it (its 'generator' attribute)."""
    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            generator = _plain(f.attrs.get("generator", ""))
    except OSError:
        return False
    return isinstance(generator, str) and generator.startswith("gansim")


def _plain(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


# Self-description written into every file gansim makes: the file says which contract it follows (and its
# version), each dataset its units and meaning, and a dataset that holds placeholder zeros (a quantity the source
# does not provide: a generator's overflow, a converted CaloChallenge file's overflow) says so.
FORMAT_VERSION = 1


def file_attrs(kind: DataKind, not_modelled: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """File attributes: format (gansim-calo / gansim-jets), format_version, and not_modelled when any."""
    out: dict[str, Any] = {"format": f"gansim-{kind.name}", "format_version": FORMAT_VERSION}
    if not_modelled:
        out["not_modelled"] = ",".join(not_modelled)  # the same spelling production writes
    return out


def dataset_attrs(kind: DataKind, name: str, not_modelled: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    """Attributes of one dataset: units ('' = dimensionless), description, and not_modelled=True for placeholder
    zeros. Produce's writers use these too."""
    key = next((k for k in (*kind.keys, *kind.optional_keys) if k.name == name), None)
    out: dict[str, Any] = {"units": key.unit if key else "", "description": key.doc if key else ""}
    if name in not_modelled:
        out["not_modelled"] = True
        out["description"] = f"{out['description']}: NOT MODELLED, placeholder zeros"
    return out


def describe(f: h5py.File, not_modelled: tuple[str, ...] | list[str] = ()) -> None:
    """Write the format attributes and every dataset's attributes into an open file of a known kind."""
    kind = detect_format(f)
    for k, v in file_attrs(kind, not_modelled).items():
        f.attrs[k] = v
    for name in f:
        if isinstance(f[name], h5py.Dataset):
            for k, v in dataset_attrs(kind, name, not_modelled).items():
                f[name].attrs[k] = v


def write_calo(path: str | Path, energy: np.ndarray, layers: dict[str, np.ndarray], overflow: np.ndarray,
               attrs: dict[str, Any] | None = None, compression: str | None = "gzip",
               not_modelled: tuple[str, ...] = ()) -> Path:
    """Write a CaloGAN-format file atomically (temporary name, then rename)."""
    path = Path(path)
    n = len(energy)
    energy = np.asarray(energy, dtype=np.float32).reshape(n, 1)
    arrays = {"energy": energy, **{k: np.asarray(layers[k], dtype=np.float32) for k in CALO_LAYERS},
              "overflow": np.asarray(overflow, dtype=np.float32).reshape(n, 3)}
    for key in CALO_KEYS:
        if arrays[key.name].shape[1:] != key.shape:
            raise SchemaError(f"cannot write '{key.name}': shape {arrays[key.name].shape}, expected (N, {key.shape})")
    return write_atomic(path, arrays, attrs, compression, not_modelled)


WRITE_BLOCK = 65536  # events per write: converting to float32 (and a contiguous copy) costs one block of memory


def write_atomic(path: str | Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any] | None = None,
                 compression: str | None = "gzip", not_modelled: tuple[str, ...] = ()) -> Path:
    """Write float32 datasets (+ attributes, + the self-description of `describe` when the arrays form a known
    kind) to a temporary name, then rename: no half-written file is ever visible under `path`, and an existing
    file there survives any failure. A full disk is an OSError naming the file (see gansim.data.h5file), raised
    as soon as a block cannot be written."""
    path = Path(path)
    with atomic_path(path) as tmp, create_h5(tmp, shown=path) as (f, guard):
        for name, arr in arrays.items():
            arr = np.asarray(arr)
            kw: dict[str, Any] = {}
            if compression and len(arr) > 0:
                kw = {"compression": compression, "shuffle": True, "chunks": (min(len(arr), 1024), *arr.shape[1:])}
            ds = f.create_dataset(name, shape=arr.shape, dtype=np.float32, **kw)
            for start in range(0, len(arr), WRITE_BLOCK):
                ds[start:start + WRITE_BLOCK] = np.asarray(arr[start:start + WRITE_BLOCK], dtype=np.float32)
                guard.check()
        if detect_kind(set(arrays)) is not None:
            describe(f, not_modelled)
        for k, v in (attrs or {}).items():
            f.attrs[k] = v
    return path


def read_calo(path: str | Path, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
    """Read (a slice of) a CaloGAN file as float32 arrays; energy as shape (N,)."""
    validate(path, expect="calo", scan=False)
    with h5py.File(path, "r") as f:
        out = {k.name: np.asarray(read_rows(f[k.name], slice(start, stop), path), dtype=np.float32)
               for k in CALO_KEYS}
    out["energy"] = out["energy"].reshape(-1)
    return out
