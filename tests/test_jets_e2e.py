"""Jet images end to end: LAGAN-format data -> LAGAN training -> export -> evaluate -> produce -> inspect.

The fast tests use a synthetic LAGAN-format file with known physics (W-like two-prong signal jets at m = 80 GeV,
one-prong QCD-like background) so that they run in seconds; the slow ones use real Pythia8 + FastJet jets.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.cli import main
from gansim.config import Config, load_config
from gansim.sim.jets import write_jets

pytestmark = pytest.mark.jets

ROOT = Path(__file__).resolve().parents[1]
W_MASS = 80.0


def synthetic_jets(n: int, seed: int, pt_scale: float = 1.0) -> dict[str, np.ndarray]:
    """Preprocessed LAGAN images (leading prong at (12, 12), second prong straight down, soft pT on the right).

    Signal (odd events): two prongs with pT fractions z, 1 - z at ΔR = m / (pT sqrt(z (1 - z))), m ~ N(80, 3) GeV.
    Background: one core with 85 % of the pT plus 3-7 soft pixels. pT ~ U(250, 300) GeV, times pt_scale.
    """
    r = np.random.default_rng(seed)
    img = np.zeros((n, 25, 25), np.float32)
    signal = (np.arange(n) % 2).astype(np.float32)
    pt = r.uniform(250.0, 300.0, n)
    for i in range(n):
        if signal[i]:
            z = r.uniform(0.55, 0.75)
            dr = r.normal(W_MASS, 3.0) / (pt[i] * np.sqrt(z * (1 - z)))
            img[i, 12, 12] += 0.97 * z * pt[i]
            img[i, min(12 + int(round(dr / 0.1)), 24), 12] += 0.97 * (1 - z) * pt[i]
            k, share = 3, 0.03
        else:
            img[i, 12, 12] += 0.85 * pt[i]
            k, share = int(r.integers(3, 8)), 0.15
        rows, cols = r.integers(9, 18, k), r.integers(12, 17, k)  # right half >= left half (the flip)
        np.add.at(img[i], (rows, cols), share * pt[i] * r.dirichlet(np.ones(k)))
    return {"image": (img * pt_scale).astype(np.float32), "signal": signal}


def tiny_lagan(data: Path, out: Path, *overrides: str) -> Config:
    return load_config(ROOT / "configs/lagan-debug.yaml", [
        f"data.path={data}", f"run.out_dir={out}", "train.batch_size=16", "train.steps_per_epoch=3",
        "train.val_events=60", *overrides])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("jets")
    return {"train": write_jets(d / "train.h5", synthetic_jets(320, 1)),
            "ref": write_jets(d / "ref.h5", synthetic_jets(300, 2)),
            "hot": write_jets(d / "hot.h5", synthetic_jets(300, 3, pt_scale=1.5)),
            "dir": d}


@pytest.fixture(scope="module")
def generator(files: dict[str, Path]) -> dict:
    """lagan-debug trained for 2 x 3 steps without Ray, then exported (EMA weights)."""
    from gansim.train.export import export_checkpoint
    from gansim.train.loop import train_local

    out = files["dir"] / "run"
    cfg = tiny_lagan(files["train"], out)
    res = train_local(cfg, out)
    path, extra = export_checkpoint(out, files["dir"] / "lagan.pt")
    return {"path": path, "extra": extra, "result": res, "cfg": cfg}


def report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def test_synthetic_physics_known_answers(files: dict[str, Path]) -> None:
    from gansim.metrics.jet_features import jet_features

    d = synthetic_jets(300, 2)
    f, sig = jet_features(d["image"]), d["signal"] == 1
    assert np.median(f["mass"][sig]) == pytest.approx(W_MASS, rel=0.1)  # W peak (pixel rounding ~ 5 %)
    assert np.median(f["mass"][~sig]) < 0.6 * W_MASS
    assert f["tau_21"][sig].mean() < f["tau_21"][~sig].mean() - 0.1
    assert np.median(f["pt"] / d["image"].sum(axis=(1, 2))) == pytest.approx(1.0, abs=0.01)


def test_lagan_trains_with_class_conditioning(generator: dict) -> None:
    import torch

    from gansim.models.artifact import load_generator

    res = generator["result"]
    assert res["epoch"] == 2 and res["step"] == 6 and not res["diverged"] and res["nonfinite_steps"] == 0
    last = res["reports"][-1]
    assert last["d_aux"] > 0 and last["g_aux"] > 0  # the ACGAN class loss is in both updates (lambda_class 1)
    assert np.isfinite(last["fidelity"]) and last["fidelity"] > 0
    art = load_generator(generator["path"])
    assert art.kind.name == "jets" and art.config.model.name == "lagan" and generator["extra"]["ema"]
    z = torch.randn(1, art.latent_dim).repeat(2, 1).numpy()
    out = art.generate(np.array([0.0, 1.0], np.float32), z=z)
    assert out["image"].shape == (2, 25, 25) and (out["image"] >= 0).all()
    assert out["signal"].tolist() == [0.0, 1.0]
    assert not np.allclose(out["image"][0], out["image"][1])  # the label changes the image for the same z


def test_lagan_yaml_trains_on_a_jets_file(files: dict[str, Path], tmp_path: Path) -> None:
    from gansim.train.loop import train_local

    cfg = load_config(ROOT / "configs/lagan.yaml", [
        f"data.path={files['train']}", f"run.out_dir={tmp_path}", "model.gen_channels=8", "model.latent_dim=16",
        "train.batch_size=16", "train.steps_per_epoch=2", "train.epochs=1", "train.val_events=40"])
    assert cfg.model.name == "lagan" and cfg.loss.lambda_class == 1.0 and cfg.data.particle == "jets"
    res = train_local(cfg, tmp_path)
    assert res["step"] == 2 and np.isfinite(res["fidelity"])


def test_train_refuses_wrong_or_missing_data(files: dict[str, Path], tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from gansim.data.schema import write_calo
    from tests.conftest import make_calo_arrays

    a = make_calo_arrays(64)
    calo = write_calo(tmp_path / "calo.h5", a["energy"], a, a["overflow"])
    cfg = str(ROOT / "configs/lagan.yaml")
    assert main(["train", "--config", cfg, "--data", str(calo), "--out", str(tmp_path)]) == 2
    assert "holds calo data but model.name=lagan" in capsys.readouterr().err
    assert main(["train", "--config", cfg, "--data", str(tmp_path / "none.h5"), "--out", str(tmp_path)]) == 2
    assert "training data not found" in capsys.readouterr().err


def test_evaluate_generator_on_reference_labels(files: dict[str, Path], generator: dict, tmp_path: Path) -> None:
    out = tmp_path / "report"
    rc = main(["evaluate", "-r", str(files["ref"]), "--generator", str(generator["path"]), "-o", str(out),
               "--seed", "1", "--classifier-epochs", "2", "-q"])
    assert rc == 0
    rep = report(out)
    assert rep["kind"] == "jets" and rep["classes"] == ["signal", "background"]
    assert rep["generated"]["n_events"] == rep["reference"]["n_events"] == 300
    assert rep["generated"]["model"] == "lagan" and rep["generated"]["generator_sha256"]
    for cls in ("signal", "background"):
        for feat in ("mass", "pt", "tau_21", "n_pixels", "pixel_intensity"):
            assert 0.0 <= rep["features"][f"{feat}_{cls}"]["separation_power"] <= 1.0
        assert "wasserstein_norm" in rep["features"][f"mass_{cls}"]
        assert rep["mean_image_difference"][cls]["relative_l1"] > 0
    # The reference side of the report is the known synthetic physics (W peak, two-prong tau21).
    assert rep["features"]["mass_signal"]["mean_ref"] == pytest.approx(W_MASS, rel=0.1)
    peak = rep["mass_peak"]["signal"]
    assert peak["ref"] == pytest.approx(W_MASS, rel=0.1)
    # An untrained generator may put no jet in the peak window: then gen and shift are null in the JSON, not NaN.
    assert peak["shift"] == (None if peak["gen"] is None else pytest.approx(peak["gen"] - peak["ref"]))
    assert rep["features"]["tau_21_signal"]["mean_ref"] < rep["features"]["tau_21_background"]["mean_ref"]
    # A 6-step LAGAN is far from the data: both classifiers see it, well outside the null band of 0.5.
    for level in ("high_level", "low_level"):
        res = rep["classifier"][level]
        assert res["auc"] > 0.5 + 3 * res["auc_null_sigma"] and res["n_test"] > 0
    assert rep["classifier"]["high_level"]["auc"] > 0.8
    for name in ("jet_features", "jet_images"):
        assert (out / rep["plots"][name]).stat().st_size > 5000
    assert "jet_images.png" in (out / "index.md").read_text()


def test_evaluate_known_answers_from_files(files: dict[str, Path], tmp_path: Path) -> None:
    # Same physics, independent sample: small distances. Every pixel x 1.5: pT and mass scale by 1.5 and
    # tau21 (a ratio of pT-weighted sums) is unchanged.
    same, hot = tmp_path / "same", tmp_path / "hot"
    assert main(["evaluate", "-r", str(files["ref"]), "-g", str(files["train"]), "-o", str(same), "-q",
                 "--no-classifier"]) == 0
    assert main(["evaluate", "-r", str(files["ref"]), "-g", str(files["hot"]), "-o", str(hot), "-q",
                 "--no-classifier"]) == 0
    s, h = report(same), report(hot)
    # 150 events per class on 50 bins: separation power has a ~0.15 noise floor; W1 / sigma_ref does not.
    for feat in ("pt", "mass", "tau_21"):
        for cls in ("signal", "background"):
            assert s["features"][f"{feat}_{cls}"]["wasserstein_norm"] < 0.35
            assert s["features"][f"{feat}_{cls}"]["separation_power"] < 0.3
    assert h["features"]["pt_signal"]["wasserstein_norm"] > 5.0  # 0.5 x 275 GeV shift over a 14 GeV spread
    assert h["physics_summary"]["pt_ratio"] == pytest.approx(1.5, rel=0.02)
    assert h["physics_summary"]["mass_ratio"] == pytest.approx(1.5, rel=0.05)
    assert h["physics_summary"]["tau_21_ratio"] == pytest.approx(1.0, abs=0.05)
    assert h["features"]["pt_signal"]["separation_power"] > 0.9
    assert h["fidelity_score"] > 0.5 + s["fidelity_score"]


def test_produce_jets_and_inspect(files: dict[str, Path], generator: dict, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "produced"
    rc = main(["produce", "--generator", str(generator["path"]), "--events", "400", "--chunk-size", "150",
               "--signal-fraction", "0.25", "--seed", "3", "--out", str(out), "--no-progress"])
    assert rc == 0
    dataset = out / "dataset.h5"
    with h5py.File(dataset, "r") as f:
        img, sig = f["image"][:], f["signal"][:]
    assert img.shape == (400, 25, 25) and (img >= 0).all() and np.isfinite(img).all()
    assert set(np.unique(sig).tolist()) == {0.0, 1.0} and 0.15 < sig.mean() < 0.35
    # The produced events are the generator's for the labels drawn: the same labels give the same physics.
    assert main(["inspect", str(dataset), "--deep"]) == 0
    assert "LAGAN jet image" in capsys.readouterr().out
    rep_dir = tmp_path / "report"
    assert main(["evaluate", "-r", str(files["ref"]), "-g", str(dataset), "-o", str(rep_dir), "-q",
                 "--no-classifier"]) == 0
    assert report(rep_dir)["generated"]["n_events"] == 400


# ---------------------------------------------------------------- real Pythia8 + FastJet jets (slow)


@pytest.fixture(scope="module")
def pythia_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from gansim.sim.jets import simulate_jets

    path = tmp_path_factory.mktemp("pythia") / "jets.h5"
    return simulate_jets(path, "both", 240, seed=3, workers=2, chunk_size=60, progress=False).path


@pytest.mark.slow  # ~40 s of Pythia on 2 cores, then a few seconds of training and evaluation
def test_pythia_jets_train_evaluate(pythia_file: Path, tmp_path: Path) -> None:
    from gansim.train.export import export_checkpoint
    from gansim.train.loop import train_local

    res = train_local(tiny_lagan(pythia_file, tmp_path / "run"), tmp_path / "run")
    assert res["step"] == 6 and not res["diverged"]
    gen, _ = export_checkpoint(tmp_path / "run", tmp_path / "lagan.pt")
    out = tmp_path / "report"
    assert main(["evaluate", "-r", str(pythia_file), "--generator", str(gen), "-o", str(out), "-q",
                 "--classifier-epochs", "2"]) == 0
    rep = report(out)
    f = rep["features"]
    # Image-level observables of the real reference jets: W peak for the signal, QCD lower, signal tau21 lower.
    assert 65.0 < f["mass_signal"]["mean_ref"] < 95.0
    assert f["mass_background"]["mean_ref"] < f["mass_signal"]["mean_ref"] - 10.0
    assert f["tau_21_signal"]["mean_ref"] < f["tau_21_background"]["mean_ref"] - 0.1
    assert 250.0 < f["pt_signal"]["mean_ref"] < 310.0
    assert set(rep["classifier"]) == {"high_level", "low_level", "high_level_trees"}


@pytest.mark.slow  # starts Ray: the real `gansim train` path on configs/lagan-debug.yaml
def test_cli_train_lagan_debug_with_ray(files: dict[str, Path], tmp_path: Path) -> None:
    from tests.conftest import run_cli

    out = tmp_path / "run"
    res = run_cli("train", "--config", str(ROOT / "configs/lagan-debug.yaml"), "--data", str(files["train"]),
                  "--out", str(out), "--workers", "1", "--set", "train.steps_per_epoch=3")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "lagan (jets)" in res.stdout and "done: epoch 2, step 6" in res.stdout
    res = run_cli("export", str(out), "--out", str(tmp_path / "g.pt"))
    assert res.returncode == 0 and (tmp_path / "g.pt").is_file()
