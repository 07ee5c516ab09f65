"""The pretrained generators shipped in gansim/pretrained: load by name, carry their provenance, and make showers
whose response matches the built-in simulator they were trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gansim
from gansim.paths import list_shipped_generators

from .conftest import run_cli

SHIPPED = ("eplus", "gamma", "piplus")


def test_the_promised_generators_ship() -> None:
    assert set(SHIPPED) <= set(list_shipped_generators())


@pytest.mark.parametrize("name", SHIPPED)
def test_pretrained_metadata_and_size(name: str) -> None:
    art = gansim.load_generator(name)
    meta = art.extra
    assert art.kind.name == "calo" and art.path.stat().st_size < 8e6  # a few MB at most
    assert meta["pretrained"] == name and meta["training_data"]["particle"] == name
    assert meta["training_data"]["seed"] != meta["measured"]["reference_seed"]  # judged on independent showers
    m = meta["measured"]
    assert 0.4 < m["auc_high_level"] <= 1.0 and 0.4 < m["auc_low_level"] <= 1.0
    assert 0.0 < m["separation_power_mean"] < 0.5 and "bench_fidelity.py" in meta["made_by"]
    assert art.condition_range is not None and art.condition_range[0] < 2.0 < 99.0 < art.condition_range[1]


# piplus: the reference's 600 pion showers alone scatter by ~2.5 % (bimodal response, see README)
@pytest.mark.parametrize(("name", "tolerance"), [("eplus", 0.02), ("gamma", 0.02), ("piplus", 0.06)])
def test_pretrained_response_matches_the_simulator(name: str, tolerance: float) -> None:
    """Mean E_tot/E_inc at 10 and 60 GeV within a few per cent of the simulator (the response is what a physics
    analysis calibrates on first)."""
    art = gansim.load_generator(name)
    for energy in (10.0, 60.0):
        cond = np.full(2000, energy)
        gen = art.generate(cond, seed=1)
        ref = gansim.simulate_showers(name, 600, seed=9, energies=np.full(600, energy))

        def response(d: dict[str, np.ndarray]) -> float:
            deposited = sum(d[f"layer_{k}"].reshape(len(d["energy"]), -1).sum(1) for k in range(3))
            return float(np.mean(deposited / (1000.0 * np.asarray(d["energy"]).reshape(-1))))

        assert response(gen) == pytest.approx(response(ref), rel=tolerance), (name, energy)


def test_produce_and_evaluate_take_a_name(tmp_path: Path) -> None:
    res = run_cli("produce", "--generator", "eplus", "--events", "3000", "--chunk-size", "1000", "--out",
                  str(tmp_path / "prod"), "--seed", "3", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    with gansim.open_dataset(tmp_path / "prod") as ds:
        assert len(ds) == 3000 and ds["layer_1"][0:3000].shape == (3000, 12, 12)
        assert float(ds["energy"][0:3000].min()) >= 1.0
    ref = tmp_path / "ref.h5"
    assert run_cli("simulate", "calo", "--particle", "eplus", "--events", "500", "--seed", "4", "--out",
                   str(ref), "--no-progress").returncode == 0
    res = run_cli("evaluate", "--reference", str(ref), "--generator", "eplus", "--no-classifier", "--out",
                  str(tmp_path / "report"))
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "report" / "report.json").is_file()
