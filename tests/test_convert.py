"""`gansim convert`: CaloChallenge-format files into the CaloGAN contract (where the geometry allows) and back."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.cli import main
from gansim.data.schema import read_calo, validate, write_calo
from tests.conftest import make_calo_arrays


def challenge_file(path: Path, voxels: int, n: int = 50) -> Path:
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f["incident_energies"] = rng.uniform(1e3, 1e5, (n, 1)).astype(np.float32)  # MeV
        f["showers"] = rng.exponential(10.0, (n, voxels)).astype(np.float32)
    return path


def test_calogan_geometry_round_trips(tmp_path: Path, capsys) -> None:
    arrays = make_calo_arrays(70, seed=2)
    original = write_calo(tmp_path / "calo.h5", arrays["energy"], arrays, arrays["overflow"])
    assert main(["convert", str(original), str(tmp_path / "challenge.h5")]) == 0
    with h5py.File(tmp_path / "challenge.h5") as f:
        assert f["showers"].shape == (70, 504) and f["showers"].attrs["units"] == "MeV"
        np.testing.assert_allclose(f["incident_energies"][:, 0], arrays["energy"][:, 0] * 1000, rtol=1e-6)
        np.testing.assert_array_equal(f["showers"][:, :288], arrays["layer_0"].reshape(70, -1))
    assert main(["convert", str(tmp_path / "challenge.h5"), str(tmp_path / "back.h5"), "--particle", "gamma"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("gansim convert: done: 70 showers from CaloChallenge format")
    assert out[-1].startswith("gansim convert: next: gansim inspect")
    back, orig = read_calo(tmp_path / "back.h5"), read_calo(original)
    for k in ("energy", "layer_0", "layer_1", "layer_2"):
        np.testing.assert_allclose(back[k], orig[k], rtol=1e-6)
    assert not back["overflow"].any()  # the format has no overflow: zeros, and the file says so
    s = validate(tmp_path / "back.h5")
    assert (s.attrs["not_modelled"], s.attrs["particle"], s.attrs["format"]) == ("overflow", "gamma", "gansim-calo")
    with h5py.File(tmp_path / "back.h5") as f:
        assert f["overflow"].attrs["not_modelled"] and f["energy"].attrs["units"] == "GeV"
        assert "not_modelled" not in f["layer_1"].attrs


@pytest.mark.parametrize("voxels,named", [(368, "dataset 1, photons"), (533, "dataset 1, pions"),
                                          (6480, "dataset 2"), (40500, "dataset 3"), (1000, "1000 voxels")])
def test_other_geometries_are_refused_in_one_line(tmp_path: Path, capsys, voxels: int, named: str) -> None:
    src = challenge_file(tmp_path / "ds.h5", voxels, n=4)
    assert main(["convert", str(src), str(tmp_path / "out.h5")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err and "not the CaloGAN geometry" in err
    assert not (tmp_path / "out.h5").exists() and not list(tmp_path.glob(".*.tmp"))


def test_unknown_file_and_overwrite_are_refused(tmp_path: Path, capsys) -> None:
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["something"] = np.zeros(3)
    assert main(["convert", str(tmp_path / "x.h5"), str(tmp_path / "y.h5")]) == 2
    assert "neither CaloChallenge" in capsys.readouterr().err
    src = challenge_file(tmp_path / "c.h5", 504)
    assert main(["convert", str(src), str(src)]) == 2
    assert "is also an input" in capsys.readouterr().err
