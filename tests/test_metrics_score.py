"""Distances and the fidelity score: known answers, edge cases, speed."""

from __future__ import annotations

import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.metrics.distances import (
    energy_bin_edges,
    response_resolution,
    separation_power,
    shared_edges,
    wasserstein,
)
from gansim.metrics.score import SCORE_CAP, fidelity_score, physics_summary


def toy_calo(n: int, seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Random sparse showers whose deposits scale with the incident energy (enough for distances)."""
    r = np.random.default_rng(seed)
    e = r.uniform(1, 100, n)
    d: dict[str, np.ndarray] = {"energy": e[:, None].astype(np.float32)}
    for k, s in (("layer_0", (3, 96)), ("layer_1", (12, 12)), ("layer_2", (12, 6))):
        x = r.exponential(1.0, (n, *s)) * (r.random((n, *s)) < 0.3)
        d[k] = (x * e[:, None, None] * scale * 10).astype(np.float32)
    d["overflow"] = np.zeros((n, 3), np.float32)
    return d


def toy_jets(n: int, seed: int, density: float = 0.05) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    img = r.exponential(1, (n, 25, 25)) * (r.random((n, 25, 25)) < density) * 10
    img[:, 12, 12] += 200
    return {"image": img.astype(np.float32), "signal": (r.random(n) < 0.5).astype(np.float32)}


def test_separation_power_known_answers() -> None:
    x = np.random.default_rng(0).normal(size=1000)
    assert separation_power(x, x) == 0.0
    assert separation_power(x, x + 100.0) == pytest.approx(1.0)  # disjoint, clipped into edge bins
    # h1 = [½, ½], h2 = [1, 0] → ½ (¼/1.5 + ¼/½) = 1/3
    assert separation_power(np.array([0.25, 0.75]), np.array([0.25, 0.25]), bins=np.array([0, 0.5, 1])) == \
        pytest.approx(1 / 3)


def test_discrete_features_get_one_bin_per_value() -> None:
    edges = shared_edges(np.array([0, 1, 2, 2]), np.array([1, 2]))
    assert len(edges) == 4 and edges[0] < 0 < edges[1] < 1 < edges[2] < 2 < edges[3]


def test_wasserstein_shift() -> None:
    x = np.random.default_rng(1).normal(0, 2, size=5000)
    w, wn = wasserstein(x, x + 1.0)
    assert w == pytest.approx(1.0) and wn == pytest.approx(1.0 / x.std())


def test_response_resolution_per_bin() -> None:
    e = np.array([10.0, 10.0, 50.0, 50.0])
    et = np.array([9.0, 11.0, 40.0, 40.0])
    rr = response_resolution(e, et, np.array([0.0, 20.0, 60.0]))
    assert rr["count"] == [2, 2] and rr["response"] == pytest.approx([1.0, 0.8])
    assert rr["resolution"] == pytest.approx([0.1, 0.0])
    edges = energy_bin_edges(np.linspace(1, 100, 1000), 4)
    assert len(edges) == 5 and edges[-1] > 100.0


def test_fidelity_identical_is_zero_and_orders_samples() -> None:
    ref, same, worse = toy_calo(2000, 1), toy_calo(2000, 2), toy_calo(2000, 3, scale=1.3)
    assert fidelity_score(ref, ref) == 0.0
    s_same, s_worse = fidelity_score(ref, same), fidelity_score(ref, worse)
    assert s_same < 0.03 and s_worse > 0.3 > s_same
    summ = physics_summary(ref, worse)
    assert summ["response_ratio"] == pytest.approx(1.3, rel=0.05)
    assert {"E_0_ratio", "E_1_ratio", "E_2_ratio", "separation_power_mean", "fidelity"} <= set(summ)


def test_jet_fidelity() -> None:
    ref = toy_jets(1000, 1)
    assert fidelity_score(ref, ref, kind="jets") == 0.0
    assert fidelity_score(ref, toy_jets(1000, 2), kind="jets") < 0.05
    assert fidelity_score(ref, toy_jets(1000, 3, density=0.1), kind="jets") > 0.5
    summ = physics_summary(ref, toy_jets(1000, 3, density=0.1), kind="jets")
    assert summ["pt_ratio"] > 1.2 and "sep_pt_signal" not in summ


def test_nonfinite_and_bad_input() -> None:
    ref = toy_calo(200, 1)
    bad = toy_calo(200, 2)
    bad["layer_1"][0, 0, 0] = np.nan
    assert fidelity_score(ref, bad) == SCORE_CAP
    assert physics_summary(ref, bad)["fidelity"] == SCORE_CAP
    with pytest.raises(GansimError, match="kind"):
        fidelity_score(ref, ref, kind="images")
    empty = {k: v[:0] for k, v in ref.items()}
    with pytest.raises(GansimError, match="empty"):
        fidelity_score(ref, empty)
