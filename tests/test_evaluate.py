"""`gansim evaluate` end to end: report files, bad inputs, generator mode, and simulator known answers."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.cli import main
from gansim.data.schema import CALO_LAYERS, write_calo
from gansim.metrics.classifier import two_sample_test
from gansim.metrics.inputs import calo_high_level, calo_low_level
from gansim.metrics.score import fidelity_score
from tests.test_metrics_score import toy_calo, toy_jets

# Two independent samples of the same particle: |AUC − 0.5| must stay inside this band at 2k vs 2k events
# (400 test events per class: null σ = 0.020, so the band is 4σ; observed spread over seeds ≈ ±0.035).
SAME_PARTICLE_AUC_BAND = 0.08


def _write_calo(path: Path, d: dict[str, np.ndarray], particle: str | None = "eplus") -> Path:
    attrs = {"particle": particle} if particle else {}
    return write_calo(path, d["energy"], {k: d[k] for k in CALO_LAYERS}, d["overflow"], attrs=attrs)


def _write_jets(path: Path, d: dict[str, np.ndarray]) -> Path:
    with h5py.File(path, "w") as f:
        f["image"], f["signal"] = d["image"], d["signal"]
    return path


def _err(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


def test_cli_writes_report_plots_and_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = _write_calo(tmp_path / "ref.h5", toy_calo(400, 1))
    gen = _write_calo(tmp_path / "gen.h5", toy_calo(400, 2, scale=1.5))
    out = tmp_path / "report"
    rc = main(["evaluate", "-r", str(ref), "-g", str(gen), "-o", str(out), "--seed", "3", "--classifier-epochs", "3",
               "-q"])
    assert rc == 0
    assert "fidelity score" in capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert rep["kind"] == "calo" and rep["reference"]["n_events"] == 400 and rep["settings"]["seed"] == 3
    assert rep["physics_summary"]["response_ratio"] == pytest.approx(1.5, rel=0.05)
    assert rep["fidelity_score"] == pytest.approx(fidelity_score(toy_calo(400, 1), toy_calo(400, 2, 1.5)), rel=1e-6)
    assert set(rep["classifier"]) == {"high_level", "low_level", "high_level_trees"}
    assert rep["classifier"]["high_level"]["auc"] > 0.9  # 50 % more energy everywhere is easy to spot
    assert rep["features"]["E_tot"]["separation_power"] > 0.1 and "wasserstein_norm" in rep["features"]["E_1"]
    assert len(rep["response_resolution"]["reference"]["response"]) == 8
    assert rep["versions"]["torch"] and rep["reference"]["particle"] == "eplus"
    for name in rep["plots"].values():
        assert (out / name).stat().st_size > 5000 and name.endswith(".png")
    assert {"average_showers", "single_showers", "response_resolution", "features_energies"} <= set(rep["plots"])
    md = (out / "index.md").read_text()
    assert "classifier AUC, high-level" in md and "average_showers.png" in md
    assert md.index("classifier AUC") < md.index("## Plots")
    assert "<img src='average_showers.png'" in (out / "index.html").read_text()


def test_cli_with_generator_artifact(tmp_path: Path) -> None:
    from gansim.config import load_config
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    cfg = load_config(Path(__file__).parents[1] / "configs" / "debug.yaml")
    art = save_generator(tmp_path / "g.pt", build_generator(cfg), cfg)
    ref = _write_calo(tmp_path / "ref.h5", toy_calo(300, 1))
    out = tmp_path / "rep"
    assert main(["evaluate", "-r", str(ref), "--generator", str(art), "--events", "200", "-o", str(out),
                 "--no-classifier", "-q"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["generated"]["n_events"] == 200 and len(rep["generated"]["generator_sha256"]) == 64
    assert rep["classifier"] == {} and "not run" in (out / "index.md").read_text()
    assert (out / "conditioning.png").stat().st_size > 5000


def test_cli_jets(tmp_path: Path) -> None:
    ref = _write_jets(tmp_path / "r.h5", toy_jets(300, 1))
    gen = _write_jets(tmp_path / "g.h5", toy_jets(300, 2, density=0.1))
    out = tmp_path / "rep"
    assert main(["evaluate", "-r", str(ref), "-g", str(gen), "-o", str(out), "--no-classifier", "-q"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["kind"] == "jets" and rep["classes"] == ["signal", "background"]
    assert rep["features"]["n_pixels_signal"]["separation_power"] > 0.5
    assert rep["mean_image_difference"]["signal"]["relative_l1"] > 0
    assert (out / "jet_features.png").exists() and (out / "jet_images.png").exists()


def test_bad_inputs_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    calo = _write_calo(tmp_path / "c.h5", toy_calo(200, 1))
    pion = _write_calo(tmp_path / "pi.h5", toy_calo(200, 2), particle="piplus")
    small = _write_calo(tmp_path / "s.h5", toy_calo(20, 3))
    jets = _write_jets(tmp_path / "j.h5", toy_jets(200, 1))
    empty = _write_calo(tmp_path / "e.h5", {k: v[:0] for k, v in toy_calo(5, 1).items()})
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a model")
    out = str(tmp_path / "o")
    cases = [
        (["-r", str(calo), "-g", str(jets)], "format mismatch"),
        (["-r", str(calo), "-g", str(pion)], "particle mismatch"),
        (["-r", str(calo), "-g", str(small)], "too few events"),
        (["-r", str(calo), "-g", str(empty)], "no events"),
        (["-r", str(tmp_path / "missing.h5"), "-g", str(calo)], "not found"),
        (["-r", str(calo), "-g", str(calo), "--events", "10"], "--events only applies"),
        (["-r", str(calo), "--generator", str(junk)], "not a gansim generator"),
    ]
    for extra, msg in cases:
        assert main(["evaluate", *extra, "-o", out, "-q"]) == 2, extra
        line = _err(capsys)
        assert msg in line and line.startswith("gansim evaluate: error:"), (extra, line)


@pytest.fixture(scope="module")
def simulated() -> dict[str, dict[str, np.ndarray]]:
    sim = pytest.importorskip("gansim.sim.calo", reason="calorimeter simulator not available")
    out = {"e1": sim.simulate_showers("eplus", 2000, 11), "e2": sim.simulate_showers("eplus", 2000, 12),
           "pi": sim.simulate_showers("piplus", 2000, 13)}
    for d in out.values():
        d["energy"] = d["energy"].reshape(-1)
    return out


def test_same_particle_simulations_are_indistinguishable(simulated: dict[str, dict[str, np.ndarray]]) -> None:
    a, b = simulated["e1"], simulated["e2"]
    hi = two_sample_test(calo_high_level(a), calo_high_level(b), seed=0, max_epochs=10)
    lo = two_sample_test(calo_low_level(a), calo_low_level(b), seed=0, max_epochs=10)
    assert abs(hi.auc - 0.5) < SAME_PARTICLE_AUC_BAND and abs(lo.auc - 0.5) < SAME_PARTICLE_AUC_BAND
    assert fidelity_score(a, b) < 0.03


def test_positrons_and_pions_are_separated(simulated: dict[str, dict[str, np.ndarray]]) -> None:
    e, p = simulated["e1"], simulated["pi"]
    hi = two_sample_test(calo_high_level(e), calo_high_level(p), seed=0, max_epochs=5)
    lo = two_sample_test(calo_low_level(e), calo_low_level(p), seed=0, max_epochs=5)
    assert hi.auc > 0.99 and lo.auc > 0.98
    assert fidelity_score(e, p) > 0.5
