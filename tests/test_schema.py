"""Data contract: every bad-file case gives one clear error; good files (incl. CaloGAN originals) load."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.data.dataset import H5EventDataset, split_indices, train_val_datasets
from gansim.data.schema import SchemaError, read_calo, validate, write_calo
from tests.conftest import make_calo_arrays, run_cli


def _write_raw(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    return path


def test_valid_file_summary(calo_file: Path) -> None:
    s = validate(calo_file)
    arrays = make_calo_arrays()
    assert s.format == "calo" and s.n_events == 64
    assert s.energy_range == pytest.approx((arrays["energy"].min(), arrays["energy"].max()), rel=1e-6)
    assert s.layer_mean["layer_1"] == pytest.approx(arrays["layer_1"].sum(axis=(1, 2)).mean(), rel=1e-5)
    assert s.layer_sparsity["layer_0"] == pytest.approx((arrays["layer_0"] == 0).mean())
    assert s.attrs["particle"] == "eplus"


def test_original_calogan_layout_loads(tmp_path: Path) -> None:
    # The Mendeley files: plain datasets, no attributes, float32 (energy (N,1)); some tools store float64.
    arrays = make_calo_arrays(10)
    arrays["layer_1"] = arrays["layer_1"].astype(np.float64)
    path = _write_raw(tmp_path / "eplus.hdf5", arrays)
    out = read_calo(path)
    assert out["energy"].shape == (10,) and out["layer_0"].shape == (10, 3, 96)
    np.testing.assert_allclose(out["layer_1"], arrays["layer_1"].astype(np.float32))


def _mutations() -> list[tuple[str, dict, str]]:
    a = make_calo_arrays(8)
    nan = dict(a, layer_1=a["layer_1"].copy())
    nan["layer_1"][3, 0, 0] = np.nan
    neg_e = dict(a, energy=a["energy"].copy())
    neg_e["energy"][5] = -1.0
    neg_cell = dict(a, layer_2=a["layer_2"].copy())
    neg_cell["layer_2"][2, 1, 1] = -0.5
    return [
        ("missing", {k: v for k, v in a.items() if k != "layer_2"}, "missing dataset 'layer_2'"),
        ("shape", dict(a, layer_0=np.zeros((8, 3, 95), np.float32)),
         "'layer_0' has shape (8, 3, 95), expected (N, 3, 96)"),
        ("dtype", dict(a, layer_1=a["layer_1"].astype(np.int32)), "'layer_1' has dtype int32"),
        ("nan", nan, "'layer_1' contains NaN or inf (first at event 3)"),
        ("negE", neg_e, "negative or zero incident energy in 'energy' at event 5"),
        ("negcell", neg_cell, "negative cell energy in 'layer_2' at event 2"),
        ("count", dict(a, overflow=a["overflow"][:7]), "'overflow' has 7 events but"),
        ("empty", {k: v[:0] for k, v in a.items()}, "contains no events"),
    ]


@pytest.mark.parametrize(("name", "arrays", "message"), _mutations(), ids=[m[0] for m in _mutations()])
def test_bad_files(tmp_path: Path, name: str, arrays: dict, message: str) -> None:
    path = _write_raw(tmp_path / f"{name}.h5", arrays)
    with pytest.raises(SchemaError) as err:
        validate(path)
    assert message in str(err.value)


def test_not_hdf5_and_missing(tmp_path: Path) -> None:
    txt = tmp_path / "x.h5"
    txt.write_text("hello")
    with pytest.raises(SchemaError, match="not an HDF5 file"):
        validate(txt)
    with pytest.raises(SchemaError, match="file not found"):
        validate(tmp_path / "nope.h5")
    with pytest.raises(SchemaError, match="no CaloGAN"):
        validate(_write_raw(tmp_path / "other.h5", {"foo": np.zeros(3)}))


def test_inspect_cli(calo_file: Path, tmp_path: Path) -> None:
    ok = run_cli("inspect", str(calo_file))
    assert ok.returncode == 0, ok.stderr
    assert "events     64" in ok.stdout and "valid" in ok.stdout
    bad = _write_raw(tmp_path / "bad.h5", _mutations()[0][1])
    res = run_cli("inspect", str(bad))
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1 and "missing dataset 'layer_2'" in res.stderr


def test_write_is_atomic_and_keeps_old_file(tmp_path: Path) -> None:
    a = make_calo_arrays(4)
    path = write_calo(tmp_path / "f.h5", a["energy"], a, a["overflow"])
    with pytest.raises(SchemaError):
        write_calo(path, a["energy"], dict(a, layer_0=np.zeros((4, 2, 2))), a["overflow"])
    assert validate(path).n_events == 4 and not list(tmp_path.glob(".*tmp"))


def test_split_is_seeded_disjoint_and_complete() -> None:
    tr, va = split_indices(1000, 0.1, seed=3)
    assert len(va) == 100 and len(tr) == 900 and not set(tr) & set(va)
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(1000))
    tr2, va2 = split_indices(1000, 0.1, seed=3)
    np.testing.assert_array_equal(va, va2)
    assert not np.array_equal(va, split_indices(1000, 0.1, seed=4)[1])


@pytest.mark.parametrize("in_memory", [True, False])
def test_dataset_items(calo_file: Path, in_memory: bool) -> None:
    tr, va = train_val_datasets(calo_file, 0.25, seed=1, in_memory=in_memory)
    assert len(tr) == 48 and len(va) == 16
    raw = read_calo(calo_file)
    j = int(va.indices[5])
    item = va[5]
    assert item["energy"].shape == (1,) and item["layer_2"].shape == (12, 6)
    np.testing.assert_allclose(item["layer_0"].numpy(), raw["layer_0"][j])
    np.testing.assert_allclose(item["energy"].numpy(), [raw["energy"][j]])


def test_dataset_in_dataloader_workers(calo_file: Path) -> None:
    import torch

    ds = H5EventDataset(calo_file, in_memory=False)
    loader = torch.utils.data.DataLoader(ds, batch_size=16, num_workers=2)
    total = sum(float(b["layer_1"].sum()) for b in loader)
    assert total == pytest.approx(float(read_calo(calo_file)["layer_1"].sum()), rel=1e-5)
