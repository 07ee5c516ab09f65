"""Jet images: LAGAN preprocessing on hand-built constituents (numpy), FastJet clustering, Pythia physics."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.sim import jet_images as ji
from tests.conftest import run_cli

# ---------------------------------------------------------------- pure numpy: no Pythia, no FastJet


def test_pixel_grid_and_centre() -> None:
    x, y = ji.pixel_centres()
    assert x[0] == pytest.approx(-1.2) and x[12] == pytest.approx(0.0) and x[24] == pytest.approx(1.2)
    assert y[0] == pytest.approx(1.2) and y[24] == pytest.approx(-1.2)  # row 0 is the top (largest y)
    img = ji.pixelise(np.array([5.0, 7.0, 11.0, 3.0]), np.array([0.0, 0.31, -1.2, 1.3]),
                      np.array([0.0, 0.0, -0.5, 0.0]))
    assert img[12, 12] == 5.0
    assert img[12, 15] == 7.0  # x = 0.31 -> column 15
    assert img[17, 0] == 11.0  # y = -0.5 -> row 17
    assert img.sum() == 23.0  # the x = 1.3 point lies outside the window


def test_wrap_phi() -> None:
    np.testing.assert_allclose(ji.wrap_phi(np.array([0.1, np.pi + 0.1, -np.pi - 0.1, 6.0])),
                               [0.1, -np.pi + 0.1, np.pi - 0.1, 6.0 - 2 * np.pi])


@pytest.mark.parametrize("angle", [0.0, 0.7, 2.0, -2.9, np.pi / 2])
def test_translate_rotate_flip(angle: float) -> None:
    # Leading subjet (100 GeV) at (eta, phi) = (0.8, 3.0) near the phi wrap; second (60 GeV) 0.5 away at `angle`;
    # a third 20 GeV particle 0.3 off the axis on one side decides the flip.
    eta0, phi0 = 0.8, 3.0
    d2 = 0.5 * np.array([np.cos(angle), np.sin(angle)])
    perp = 0.3 * np.array([-np.sin(angle), np.cos(angle)])  # 90 degrees anticlockwise from the second subjet
    eta = np.array([eta0, eta0 + d2[0], eta0 + perp[0]])
    phi = ji.wrap_phi(np.array([phi0, phi0 + d2[1], phi0 + perp[1]]))
    pt = np.array([100.0, 60.0, 20.0])
    img = ji.jet_image(pt, eta, phi, eta[:2], phi[:2])
    assert img.dtype == np.float32 and img.shape == (25, 25)
    assert img[12, 12] == 100.0  # leading subjet centred
    assert img[17, 12] == 60.0  # second subjet straight down, 0.5 = 5 pixels
    # Anticlockwise 90 degrees from "down" is "right": the third particle sits at x = +0.3 after the rotation.
    assert img[12, 15] == 20.0
    assert img[:, 13:].sum() >= img[:, :12].sum()
    assert img.sum() == pytest.approx(180.0)


def test_flip_moves_pt_to_the_right() -> None:
    eta = np.array([0.0, 0.0, -0.4])  # third particle ends on the left before the flip
    phi = np.array([0.0, -0.5, 0.0])
    img = ji.jet_image(np.array([100.0, 60.0, 20.0]), eta, phi, eta[:2], phi[:2])
    assert img[12, 16] == 20.0 and img[:, :12].sum() == 0.0
    assert img[17, 12] == 60.0


def test_single_subjet_uses_principal_axis() -> None:
    # Constituents along the 45-degree line, most pT on the upper-right side: that side must end up pointing down.
    t = np.array([0.0, 0.2, 0.4, -0.2])
    pt = np.array([50.0, 30.0, 20.0, 5.0])
    eta, phi = t / np.sqrt(2), t / np.sqrt(2)
    img = ji.jet_image(pt, eta, phi, eta[:1], phi[:1])
    assert img[12, 12] == 50.0
    assert img[14, 12] == 30.0 and img[16, 12] == 20.0 and img[10, 12] == 5.0


def test_principal_axis_degenerate() -> None:
    assert ji.principal_axis(np.array([1.0, 2.0]), np.zeros(2), np.zeros(2)) is None
    img = ji.jet_image(np.array([3.0]), np.array([0.2]), np.array([-1.0]), np.array([0.2]), np.array([-1.0]))
    assert img[12, 12] == 3.0 and img.sum() == 3.0


def test_nsubjettiness_known_values() -> None:
    pt, rap, phi = np.array([1.0, 3.0]), np.array([0.0, 0.4]), np.array([0.0, 0.0])
    assert ji.nsubjettiness(pt, rap, phi, np.array([0.3]), np.array([0.0])) == pytest.approx(0.15)
    assert ji.nsubjettiness(pt, rap, phi, np.array([0.0, 0.4]), np.array([0.0, 0.0])) == pytest.approx(0.0)
    # beta = 2 squares the distances; R0 = 0.5 rescales by 1 / R0^beta; phi distances wrap
    assert ji.nsubjettiness(pt, rap, phi, np.array([0.3]), np.array([0.0]), r0=0.5, beta=2.0) == \
        pytest.approx((1 * 0.09 + 3 * 0.01) / 4 / 0.25)
    assert ji.nsubjettiness(np.array([2.0]), np.array([0.0]), np.array([3.1]), np.array([0.0]),
                            np.array([-3.1])) == pytest.approx(2 * np.pi - 6.2)
    assert ji.tau21(0.0, 0.0) == 0.0 and ji.tau21(0.4, 0.1) == pytest.approx(0.25)


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gansim.sim import jets

    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import now raises ImportError
    with pytest.raises(GansimError, match=r"pythia8mc.*pip install 'gansim\[jets\]'"):
        jets.require_jets_extra()


def test_seeds_and_chunks() -> None:
    from gansim.sim import jets

    seeds = {jets.pythia_seed(s, p, k) for s in (0, 1, 2**40) for p in jets.PROCESSES for k in range(50)}
    assert len(seeds) == 300 and min(seeds) >= 1 and max(seeds) <= 900_000_000
    assert jets.pythia_seed(7, "qcd", 3) == jets.pythia_seed(7, "qcd", 3)
    plan = jets.plan_chunks("wprime", 450, 1, jets.Selection(), chunk_size=200)
    assert [c.n_jets for c in plan] == [200, 200, 50] and [c.index for c in plan] == [0, 1, 2]
    assert jets.split_counts("both", 7) == {"wprime": 4, "qcd": 3}
    qcd = jets.pythia_settings("qcd", (250.0, 300.0))
    assert "PhaseSpace:pTHatMin = 200" in qcd and "PhaseSpace:pTHatMax = 450" in qcd
    assert "Beams:eCM = 13000" in qcd
    assert "23:onIfAny = 12 14 16" in jets.pythia_settings("wprime")


@pytest.mark.parametrize("flag,value,match", [
    ("--pt-window", "300,250", "--pt-window"),
    ("--mass-window", "95,65", "--mass-window"),
    ("--workers", "0", "--workers"),
])
def test_cli_rejects_bad_input(tmp_path: Path, flag: str, value: str, match: str) -> None:
    res = run_cli("simulate", "jets", "--events", "10", "--out", str(tmp_path / "j.h5"), flag, value)
    assert res.returncode == 2 and match in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "j.h5").exists()


# ---------------------------------------------------------------- FastJet on hand-built events


def _massless(pt: float, eta: float, phi: float) -> list[float]:
    return [pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)]


@pytest.mark.jets
def test_clusterer_two_prong_known_answer() -> None:
    fj = pytest.importorskip("fastjet")
    from gansim.sim.jets import JetClusterer, Selection

    # Two hard prongs 0.5 apart in phi, a 5 GeV particle 0.7 away (own kt subjet below 5% of pT: trimmed away),
    # a neutrino-like forward particle outside |eta| < 2.5 (ignored).
    p4 = np.array([_massless(150.0, 0.3, 1.0), _massless(120.0, 0.3, 1.5), _massless(5.0, 0.3, 0.3),
                   _massless(500.0, 3.5, -2.0)])
    rec = JetClusterer(fj, Selection((250.0, 300.0))).process(p4)
    assert rec is not None
    assert rec["pt"] == pytest.approx(np.hypot(150 + 120 * np.cos(0.5), 120 * np.sin(0.5)), rel=1e-9)
    assert rec["mass"] == pytest.approx(np.sqrt(2 * 150 * 120 * (1 - np.cos(0.5))), rel=1e-9)
    img = rec["image"]
    assert img[12, 12] == 150.0 and img[17, 12] == 120.0 and img.sum() == pytest.approx(270.0)
    assert rec["tau_21"] == pytest.approx(0.0, abs=1e-12)  # two constituents = two exact axes
    # Outside the pT window -> rejected; a mass window keeps this 66.4 GeV jet only when it covers it.
    assert JetClusterer(fj, Selection((280.0, 300.0))).process(p4) is None
    assert JetClusterer(fj, Selection((250.0, 300.0), (65.0, 95.0))).process(p4) is not None
    assert JetClusterer(fj, Selection((250.0, 300.0), (70.0, 95.0))).process(p4) is None


@pytest.mark.jets
def test_clusterer_tau21_two_vs_one_prong() -> None:
    fj = pytest.importorskip("fastjet")
    from gansim.sim.jets import JetClusterer, Selection

    rng = np.random.default_rng(4)
    prongs = [(160.0, 0.0, 0.0), (110.0, 0.25, 0.45)]
    rows = []
    for pt, eta, phi in prongs:
        w = rng.dirichlet(np.ones(8)) * pt
        rows += [_massless(p, eta + rng.normal(0, 0.04), phi + rng.normal(0, 0.04)) for p in w]
    rec = JetClusterer(fj, Selection((200.0, 300.0))).process(np.array(rows))
    assert rec is not None
    assert 0.0 < rec["tau_21"] < 0.3  # a clean two-prong jet
    one = JetClusterer(fj, Selection((100.0, 200.0))).process(np.array(rows[:8]))  # one prong only
    assert one is not None and one["tau_21"] > rec["tau_21"]


# ---------------------------------------------------------------- Pythia8: real events


@pytest.fixture(scope="module")
def jet_sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    pytest.importorskip("pythia8mc")
    pytest.importorskip("fastjet")
    from gansim.sim.jets import simulate_jets

    path = tmp_path_factory.mktemp("jets") / "jets.h5"
    simulate_jets(path, "both", 300, seed=11, workers=2, chunk_size=75, progress=False)
    with h5py.File(path, "r") as f:
        return {k: f[k][:] for k in f} | {"attrs": dict(f.attrs), "path": np.array(str(path))}


@pytest.mark.jets
@pytest.mark.slow  # shares a ~40 s (2 cores) module fixture of 300 Pythia jets
def test_file_layout_and_provenance(jet_sample: dict) -> None:
    from gansim.data.schema import validate

    s = validate(str(jet_sample["path"]))
    assert s.format == "jets" and s.n_events == 300
    assert jet_sample["image"].shape == (300, 25, 25) and jet_sample["image"].dtype == np.float32
    for k in ("signal", "pt", "eta", "phi", "mass", "tau_21"):
        assert jet_sample[k].shape == (300,) and jet_sample[k].dtype == np.float32
    assert jet_sample["signal"].sum() == 150 and jet_sample["signal"][:40].std() > 0  # classes mixed
    a = jet_sample["attrs"]
    assert a["sqrt_s"] == 13000.0 and a["seed"] == 11 and a["process"] == "both"
    assert "NewGaugeBoson:ffbar2Wprime = on" in a["pythia_settings_wprime"]
    assert "HardQCD:all = on" in a["pythia_settings_qcd"]
    assert ((jet_sample["pt"] > 250) & (jet_sample["pt"] < 300)).all()
    assert (np.abs(jet_sample["eta"]) < 2.5).all()


@pytest.mark.jets
@pytest.mark.slow  # shares a ~40 s (2 cores) module fixture of 300 Pythia jets
def test_physics_mass_and_tau21(jet_sample: dict) -> None:
    sig = jet_sample["signal"] == 1
    m_s, m_b = jet_sample["mass"][sig], jet_sample["mass"][~sig]
    in_w = (m_s > 65) & (m_s < 95)
    assert 65 < np.median(m_s) < 95
    hist, edges = np.histogram(m_s, bins=np.arange(0, 200, 10))
    assert 65 <= edges[hist.argmax()] < 95  # the mode is the W peak
    frac_b = ((m_b > 65) & (m_b < 95)).mean()
    assert in_w.mean() > 0.5 and frac_b < 0.5 * in_w.mean()
    # QCD: no peak above 50 GeV, the spectrum falls (coarse bins, one-sigma Poisson slack).
    counts = np.histogram(m_b, bins=[50, 80, 110, 140, 200])[0].astype(float)
    assert all(counts[i + 1] <= counts[i] + np.sqrt(counts[i] + 1) for i in range(len(counts) - 1)), counts
    assert np.median(m_b) < 60
    assert jet_sample["tau_21"][sig].mean() < jet_sample["tau_21"][~sig].mean() - 0.1


@pytest.mark.jets
@pytest.mark.slow  # shares a ~40 s (2 cores) module fixture of 300 Pythia jets
def test_images_centred_rotated_flipped(jet_sample: dict) -> None:
    img = jet_sample["image"].astype(np.float64)
    flat = img.reshape(len(img), -1)
    sig = jet_sample["signal"] == 1
    # Leading subjet in the centre pixel: it is almost never empty and usually the hottest pixel (sometimes the
    # second subjet's pixel is hotter: a subjet's pT can spread over several pixels).
    assert (img[:, 12, 12] > 0).mean() > 0.97
    hottest = flat.argmax(axis=1)
    assert (hottest == 12 * 25 + 12).mean() > 0.75
    # Rotation: the hottest pixel lies on the downward axis (column 12, rows >= 12), and for W jets the pT
    # below the centre in column 12 beats the pT above it.
    assert ((hottest % 25 == 12) & (hottest // 25 >= 12)).mean() > 0.9
    below, above = img[:, 13:, 12].sum(axis=1), img[:, :12, 12].sum(axis=1)
    assert (below[sig] > above[sig]).mean() > 0.85
    mean_sig = img[sig].mean(axis=0)
    assert mean_sig.argmax() == 12 * 25 + 12
    assert mean_sig[13:, 11:14].sum() > 3 * mean_sig[:12, 11:14].sum()
    # The W's second prong sits about 2 m_W / pT ~ 0.6 below the centre: the mean image peaks there again.
    assert 15 <= 13 + mean_sig[13:, 12].argmax() <= 20
    # Flip: right half >= left half in every image.
    assert (img[:, :, 13:].sum(axis=(1, 2)) >= img[:, :, :12].sum(axis=(1, 2))).all()
    # Pixel sum = scalar constituent pT sum: at least the trimmed jet pT, at most a few % above it.
    ratio = flat.sum(axis=1) / jet_sample["pt"]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.03) and (ratio > 0.9).all() and (ratio < 1.25).all()


@pytest.mark.jets
def test_deterministic_for_any_worker_count(tmp_path: Path) -> None:
    pytest.importorskip("pythia8mc")
    from gansim.sim.jets import simulate_jets

    a = simulate_jets(tmp_path / "a.h5", "wprime", 8, seed=5, workers=1, chunk_size=4, progress=False).path
    res = run_cli("simulate", "jets", "--process", "wprime", "--events", "8", "--seed", "5", "--workers", "2",
                  "--chunk-size", "4", "--out", str(tmp_path / "b.h5"), "--quiet")
    assert res.returncode == 0, res.stderr
    with h5py.File(a, "r") as fa, h5py.File(tmp_path / "b.h5", "r") as fb:
        assert sorted(fa) == sorted(fb)
        for k in fa:
            np.testing.assert_array_equal(fa[k][:], fb[k][:])
        assert sorted(fa.attrs) == sorted(fb.attrs)
        for k in fa.attrs:
            assert np.array_equal(fa.attrs[k], fb.attrs[k]), k
    assert run_cli("inspect", str(a)).returncode == 0
