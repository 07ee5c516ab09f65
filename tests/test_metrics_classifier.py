"""Classifier two-sample test: AUC helpers and the known answers (same → 0.5, different → ≈1)."""

from __future__ import annotations

import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.metrics.classifier import auc_null_sigma, platt_fit, roc_auc, two_sample_test
from gansim.metrics.inputs import calo_high_level, calo_low_level
from tests.test_metrics_score import toy_calo


def test_roc_auc_known_answers() -> None:
    y = np.array([1, 1, 0, 0])
    assert roc_auc(y, np.array([0.9, 0.8, 0.1, 0.2])) == 1.0
    assert roc_auc(y, np.array([0.1, 0.2, 0.9, 0.8])) == 0.0
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert roc_auc(y, np.array([0.9, 0.1, 0.5, 0.0])) == 0.75  # pairs won: (0.9>0.5, 0.9>0, 0.1>0) = 3/4
    assert auc_null_sigma(800) == pytest.approx(np.sqrt(1601 / (12 * 800**2)))


def test_platt_recovers_a_known_logistic() -> None:
    r = np.random.default_rng(0)
    z = r.normal(0, 2, 20000)
    y = (r.random(20000) < 1 / (1 + np.exp(-(0.5 * z - 0.3)))).astype(float)
    a, b = platt_fit(z, y)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-0.3, abs=0.05)


def test_identical_samples_give_auc_one_half() -> None:
    d = toy_calo(2000, 1)
    x = calo_high_level(d)
    res = two_sample_test(x, x, seed=0, max_epochs=10)
    # each test event's twin sits in the same split with the other label: every pair ties
    assert res.auc == pytest.approx(0.5, abs=1e-6)
    assert abs(res.jsd) < 0.01
    assert res.n_per_class == 2000 and res.n_test == 800


def test_independent_samples_are_indistinguishable() -> None:
    a, b = toy_calo(2000, 1), toy_calo(2000, 2)
    res = two_sample_test(calo_high_level(a), calo_high_level(b), seed=1, max_epochs=10)
    assert abs(res.auc - 0.5) < 5 * res.auc_null_sigma  # ±0.07 at 2k events


def test_clearly_different_samples_give_auc_near_one() -> None:
    a, c = toy_calo(2000, 1), toy_calo(2000, 3, scale=2.0)
    hi = two_sample_test(calo_high_level(a), calo_high_level(c), seed=0, max_epochs=15)
    lo = two_sample_test(calo_low_level(a), calo_low_level(c), seed=0, max_epochs=15)
    assert hi.auc > 0.97 and lo.auc > 0.95
    assert hi.jsd > 0.5
    assert hi.best_epoch <= hi.epochs_run <= 15


def test_bad_classifier_inputs() -> None:
    with pytest.raises(GansimError, match="at least"):
        two_sample_test(np.zeros((10, 3)), np.zeros((10, 3)))
    with pytest.raises(GansimError, match="same d"):
        two_sample_test(np.zeros((100, 3)), np.zeros((100, 4)))
