"""Known-answer tests of the calorimeter and jet features on hand-built events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.metrics.calo_features import calo_features, cell_centres, feature_names
from gansim.metrics.jet_features import PIXEL_CENTRES, jet_features, mass_peak, mean_image_difference, pixel_intensities


def _empty(n: int = 1, e_inc: float = 10.0) -> dict[str, np.ndarray]:
    return {"energy": np.full((n, 1), e_inc, np.float32), "layer_0": np.zeros((n, 3, 96), np.float32),
            "layer_1": np.zeros((n, 12, 12), np.float32), "layer_2": np.zeros((n, 12, 6), np.float32)}


def test_cell_centres_are_centred_grid() -> None:
    y0, x0 = cell_centres("layer_0")
    assert y0.tolist() == [-160.0, 0.0, 160.0]
    assert x0[0] == -237.5 and x0[-1] == 237.5
    y2, x2 = cell_centres("layer_2")
    assert y2[0] == -220.0 and x2.tolist() == [-200.0, -120.0, -40.0, 40.0, 120.0, 200.0]


def test_single_hot_cell() -> None:
    d = _empty(e_inc=10.0)
    d["layer_1"][0, 0, 0] = 1000.0  # 1 GeV in the corner cell of the middle layer
    f = calo_features(d)
    assert list(f) == feature_names()
    expect = {"E_0": 0.0, "E_1": 1.0, "E_2": 0.0, "E_tot": 1.0, "E_tot_over_E_inc": 0.1, "frac_0": 0.0,
              "frac_1": 1.0, "frac_2": 0.0, "shower_depth": 1.0, "depth_width": 0.0, "max_depth": 1.0,
              "centre_x_1": -220.0, "centre_y_1": -220.0, "width_x_1": 0.0, "width_y_1": 0.0,
              "sparsity_1": 143 / 144, "sparsity_0": 1.0, "sparsity_2": 1.0, "eratio_1": 1.0, "eratio_0": 0.0,
              "centre_x_0": 0.0, "width_y_2": 0.0}
    for k, v in expect.items():
        assert f[k][0] == pytest.approx(v, abs=1e-9), k


def test_two_cells_and_a_strip() -> None:
    d = _empty(e_inc=2.0)
    d["layer_2"][0, 5, 0] = 300.0  # y = -20 mm, x = -200 mm
    d["layer_2"][0, 6, 5] = 100.0  # y = +20 mm, x = +200 mm
    d["layer_0"][0, 1, 48] = 600.0  # y = 0, x = +2.5 mm
    f = {k: v[0] for k, v in calo_features(d).items()}
    assert f["E_0"] == pytest.approx(0.6) and f["E_2"] == pytest.approx(0.4) and f["E_tot"] == pytest.approx(1.0)
    assert f["E_tot_over_E_inc"] == pytest.approx(0.5)
    assert f["frac_0"] == pytest.approx(0.6) and f["frac_2"] == pytest.approx(0.4)
    assert f["shower_depth"] == pytest.approx(0.8)  # 0.6·0 + 0.4·2
    assert f["depth_width"] == pytest.approx(math.sqrt(1.6 - 0.64))
    assert f["max_depth"] == 2.0
    assert f["centre_y_2"] == pytest.approx((0.3 * -20 + 0.1 * 20) / 0.4)
    assert f["centre_x_2"] == pytest.approx(-100.0)
    assert f["width_x_2"] == pytest.approx(math.sqrt(40000 - 100.0**2))
    assert f["width_y_2"] == pytest.approx(math.sqrt(400 - 10.0**2))
    assert f["eratio_2"] == pytest.approx(0.5)
    assert f["sparsity_2"] == pytest.approx(70 / 72)
    assert f["centre_x_0"] == pytest.approx(2.5) and f["centre_y_0"] == pytest.approx(0.0)
    assert f["eratio_0"] == pytest.approx(1.0) and f["width_x_0"] == pytest.approx(0.0)


def test_empty_shower_is_defined_and_vectorised() -> None:
    d = _empty(n=3)
    d["layer_0"][2, 0, 0] = 5.0
    f = calo_features(d)
    assert all(v.shape == (3,) and np.isfinite(v).all() for v in f.values())
    assert f["max_depth"].tolist() == [-1.0, -1.0, 0.0]
    assert f["E_tot"][0] == 0.0 and f["shower_depth"][0] == 0.0 and f["eratio_0"][0] == 0.0
    assert f["sparsity_0"][0] == 1.0 and f["sparsity_0"][2] == pytest.approx(287 / 288)


def test_missing_layer_is_a_clear_error() -> None:
    d = _empty()
    del d["layer_2"]
    with pytest.raises(GansimError, match="layer_2"):
        calo_features(d)


def _pixel(eta: float, phi: float) -> tuple[int, int]:
    return int(np.argmin(abs(PIXEL_CENTRES - eta))), int(np.argmin(abs(PIXEL_CENTRES - phi)))


def test_two_pixel_jet_mass_and_pt() -> None:
    img = np.zeros((2, 25, 25))
    img[0][_pixel(0.0, 0.0)] = 100.0
    img[0][_pixel(0.3, 0.0)] = 50.0
    img[1][_pixel(0.0, 0.0)] = 120.0
    img[1][_pixel(-0.2, 0.4)] = 80.0
    f = jet_features(img)
    # m² = 2 pT1 pT2 (cosh Δη − cos Δφ) for two massless constituents
    assert f["mass"][0] == pytest.approx(math.sqrt(2 * 100 * 50 * (math.cosh(0.3) - 1.0)), rel=1e-9)
    assert f["mass"][1] == pytest.approx(math.sqrt(2 * 120 * 80 * (math.cosh(0.2) - math.cos(0.4))), rel=1e-9)
    assert f["pt"][0] == pytest.approx(150.0)
    assert f["pt"][1] == pytest.approx(abs(120 + 80 * np.exp(0.4j)))
    # two pixels 0.3 apart: τ2 = 0 (an axis on each); τ1 axis moves to the pT centroid (η = 0.1)
    assert f["tau_2"][0] == pytest.approx(0.0, abs=1e-12)
    assert f["tau_1"][0] == pytest.approx((100 * 0.1 + 50 * 0.2) / 150)
    assert f["tau_21"][0] == pytest.approx(0.0, abs=1e-12)
    assert f["n_pixels"].tolist() == [2.0, 2.0]


def test_three_prong_tau21_and_single_pixel() -> None:
    img = np.zeros((2, 25, 25))
    img[0][_pixel(0.0, 0.0)] = 100.0
    img[0][_pixel(0.0, 0.5)] = 60.0
    img[0][_pixel(0.0, 0.6)] = 40.0  # close to the second prong
    img[1][_pixel(0.0, 0.0)] = 10.0
    f = jet_features(img)
    # τ2 axes: (0, 0) and the (60, 40) centroid at φ = 0.54; τ2 = (60·0.04 + 40·0.06) / 200
    assert f["tau_2"][0] == pytest.approx((60 * 0.04 + 40 * 0.06) / 200)
    assert 0.0 < f["tau_21"][0] < 1.0
    assert f["tau_1"][1] == 0.0 and f["tau_21"][1] == 0.0 and f["mass"][1] == 0.0


def test_pixel_spectrum_and_mean_image_difference() -> None:
    a = np.zeros((2, 25, 25))
    a[:, 12, 12] = [10.0, 30.0]
    b = a.copy()
    b[:, 12, 13] = 5.0
    assert sorted(pixel_intensities(a).tolist()) == [10.0, 30.0]
    diff, rel = mean_image_difference(a, b)
    assert diff[12, 13] == 5.0 and diff[12, 12] == 0.0
    assert rel == pytest.approx(5.0 / 20.0)
    with pytest.raises(GansimError, match="shape"):
        jet_features(np.zeros((2, 24, 25)))


def test_mass_peak_finds_the_mode_not_the_mean() -> None:
    rng = np.random.default_rng(3)
    # A W-like peak at 80.4 GeV (width 8) over a falling QCD-like tail that drags the mean down to ~65 GeV.
    m = np.concatenate([rng.normal(80.4, 8.0, 20_000), rng.exponential(30.0, 20_000)])
    assert m.mean() < 70.0
    assert mass_peak(m) == pytest.approx(80.4, abs=1.0)
    assert mass_peak(m + 3.0) - mass_peak(m) == pytest.approx(3.0, abs=0.1)  # a shift is resolved, not binned
    assert math.isnan(mass_peak(np.array([5.0, 200.0])))  # nothing inside the window
