"""The private Ray / Optuna APIs gansim relies on (gansim.compat) exist in the installed, tested versions."""

from __future__ import annotations

import pytest

from gansim import compat


def test_installed_versions_are_tested() -> None:
    assert compat.untested_versions() == []


def test_version_parsing_and_ranges(monkeypatch: pytest.MonkeyPatch) -> None:
    assert compat._version_tuple("2.60.0") == (2, 60, 0) and compat._version_tuple("4.5.0rc1") == (4, 5, 0)
    monkeypatch.setitem(compat.TESTED, "ray", ("0.1", "0.2"))
    assert [v for v in compat.untested_versions() if v.startswith("ray ")]


def test_private_ray_names_exist() -> None:
    pytest.importorskip("ray")
    from ray._private.state import state
    from ray.core.generated import gcs_pb2

    assert callable(state._connect_and_get_accessor)
    assert hasattr(gcs_pb2.PlacementGroupTableData, "FromString")
    from ray.train.v2._internal.execution import context

    assert context.__file__


def test_optuna_search_internals() -> None:
    pytest.importorskip("ray")
    optuna = pytest.importorskip("optuna")
    from ray.tune.search.optuna import OptunaSearch

    search = OptunaSearch({"x": optuna.distributions.FloatDistribution(0.0, 1.0)}, metric="m", mode="min",
                          sampler=optuna.samplers.RandomSampler(seed=0))
    assert search.suggest("t1") is not None
    trial = compat.optuna_trial(search, "t1")
    assert isinstance(trial, optuna.trial.Trial)
    assert isinstance(compat.optuna_study(search), optuna.Study)
    assert isinstance(compat.completed_trials(search), set)


def test_ddp_buffer_keyword_matches_installed_torch() -> None:
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    kw = compat.ddp_without_forward_buffer_sync()
    assert list(kw.values()) == [False]
    assert next(iter(kw)) in inspect.signature(DistributedDataParallel.__init__).parameters
