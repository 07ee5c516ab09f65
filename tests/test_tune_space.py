"""Search-space parsing and validation for `gansim tune` (no Ray needed)."""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import yaml

from gansim.config import config_from_dict, load_config
from gansim.tune.space import SpaceError, load_study, parse_space, with_space_tune
from gansim.tune.study import default_concurrency

BASE = load_config("configs/debug.yaml")
GOOD = {
    "fixed": {"train.epochs": 4},
    "tune": {"scheduler": "asha", "grace_period": 1, "reduction_factor": 2},
    "params": {
        "loss": {"key": "loss.name", "type": "choice", "values": ["hinge", "wgan-gp"]},
        "lr_g": {"key": "train.lr_g", "type": "loguniform", "low": "1e-5", "high": 1.0e-3},
        "lr_ratio": {"key": "train.lr_d", "type": "loguniform", "low": 0.01, "high": 10, "scale_by": "lr_g"},
        "n_critic": {"key": "train.n_critic", "type": "int", "low": 1, "high": 5},
        "beta1": {"key": "train.beta1", "type": "uniform", "low": 0.0, "high": 0.9},
    },
    "points_to_evaluate": [{"loss": "hinge", "lr_g": 2e-4, "lr_ratio": 0.1, "n_critic": 1, "beta1": 0.5}],
}


def parse(data: dict, base=BASE):
    """parse_space as `gansim tune` calls it: the space's tune section laid over the base config's."""
    return parse_space(data, config_from_dict(with_space_tune(base.to_dict(), data, "<space>")), "<space>")


def with_change(path: str, value: object) -> dict:
    data = copy.deepcopy(GOOD)
    node = data
    parts = path.split("/")
    for p in parts[:-1]:
        node = node[p]
    if value is KeyError:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return data


def test_good_space_maps_parameters_to_config_keys() -> None:
    space = parse(GOOD)
    d = space.distributions()
    assert d["lr_g"].log and d["lr_g"].low == pytest.approx(1e-5)  # '1e-5' string read as a number
    assert (d["n_critic"].low, d["n_critic"].high) == (1, 5)
    assert d["loss"].choices == ("hinge", "wgan-gp")
    cfg = space.trial_config(BASE.to_dict(), {"loss": "wgan-gp", "lr_g": 2e-4, "lr_ratio": 0.1, "n_critic": 3,
                                              "beta1": 0.25})
    # lr ratio → lr_d = ratio × lr_g: the paper's 2e-5 / 2e-4
    assert cfg.train.lr_d == pytest.approx(2e-5)
    assert (cfg.loss.name, cfg.train.n_critic, cfg.train.beta1, cfg.train.epochs) == ("wgan-gp", 3, 0.25, 4)
    assert cfg.model.latent_dim == BASE.model.latent_dim  # untouched keys come from the base config


def test_shipped_space_files_are_valid() -> None:
    base, space = load_study(None, "configs/tune/calogan.yaml")
    assert (base.tune.study_name, base.tune.grace_period, base.tune.n_startup_trials) == ("calogan-eplus", 3, 20)
    assert set(space.distributions()["loss"].choices) == {"minimax", "non-saturating", "wgan-gp", "hinge",
                                                           "least-squares"}
    ratio = space.params["lr_ratio"]
    assert (ratio.low, ratio.high, ratio.scale_by) == (0.01, 10.0, "lr_g")
    paper = space.trial_config(load_config(None).to_dict(), space.points_to_evaluate[0])
    assert paper.train.lr_d == pytest.approx(2e-5) and paper.train.lr_g == pytest.approx(2e-4)
    base, debug = load_study("debug", "tune/debug")  # shipped names, as outside the repository
    assert debug.fixed["train.epochs"] == 2 and base.tune.reduction_factor == 2.0
    # The default recipe's space: its first point is the shipped calo-mlp-eplus recipe, unchanged.
    base, mlp = load_study("calo-mlp-eplus", "tune/calo-mlp")
    assert base.tune.study_name == "calo-mlp-eplus" and mlp.fixed["train.steps_per_epoch"] == 50
    default = load_config("calo-mlp-eplus")
    first = mlp.trial_config(default.to_dict(), mlp.points_to_evaluate[0])
    fixed = {k.split(".")[1]: v for k, v in mlp.fixed.items()}
    assert first.train == dataclasses.replace(default.train, **fixed)
    assert (first.model, first.loss) == (default.model, default.loss)


@pytest.mark.parametrize("path,value,message", [
    ("params/lr_g/key", "train.lr_gen", "unknown key train.lr_gen"),
    ("params/lr_g/key", "run.out_dir", "set by `gansim tune` itself"),
    ("params/lr_g/type", "gaussian", "params.lr_g.type: 'gaussian' is not one of uniform, loguniform, int, choice"),
    ("params/lr_g/low", 1e-2, "low (0.01) must be below high (0.001)"),
    ("params/beta1/low", 0.9, "low (0.9) must be below high (0.9)"),
    ("params/lr_g/low", 0.0, "log distribution needs low > 0"),
    ("params/n_critic/log", True, None),  # int with log and low 1 is fine
    ("params/n_critic/low", 0, "is below the minimum 1"),  # the config tree rejects n_critic = 0
    ("params/n_critic/high", 2.5, "params.n_critic: high: expected an integer"),
    ("params/beta1/high", 1.5, "train.beta1: 1.5 is above the maximum"),
    ("params/loss/values", [], "non-empty list 'values'"),
    ("params/loss/values", ["hinge", "hinge"], "duplicate values"),
    ("params/loss/values", ["hinge", "wasserstein"], "'wasserstein' is not one of"),
    ("params/lr_g/values", [1], "not 'values'"),
    ("params/lr_g/high", KeyError, "needs 'high'"),
    ("params/lr_g/colour", "red", "unknown key params.lr_g.colour"),
    ("params/lr_ratio/scale_by", "lr_x", "'lr_x' is not another parameter"),
    ("params/lr_ratio/high", 5000.0, "is above the maximum 1.0"),  # 5000 × 1e-3 = 5 > lr_d's limit
    ("params/bad name", {"key": "train.lr_g", "type": "uniform", "low": 0, "high": 1}, "parameter names"),
    ("params", {}, "'params' must be a non-empty mapping"),
    ("fixed", {"train.epochs": 0}, "fixed.train.epochs"),
    ("fixed", {"train.lr_g": 0.1}, "both fixed and searched"),
    ("tune/scheduler", "hyperband", "tune.scheduler: 'hyperband' is not one of asha, none"),
    ("tune/reduction_factor", 1, "tune.reduction_factor must be above 1"),
    ("tune/grace_period", 9, "tune.grace_period (9) exceeds train.epochs (4)"),
    ("tune/trials", 0, "tune.trials: 0 is below the minimum 1"),
    ("tune/colour", 1, "unknown key tune.colour"),
    ("params/lr_g/type", KeyError, "params.lr_g: missing required key 'type'"),
    ("colour", "red", "unknown key colour"),
    ("scheduler", {"type": "asha"}, "'scheduler' moved into the tune section"),
    ("params/lr_g/key", "train.lr_g.x", "unknown key train.lr_g.x"),
    ("points_to_evaluate", [{**GOOD["points_to_evaluate"][0], "n_critic": "two"}], "expected an integer"),
    ("points_to_evaluate", [{"loss": "hinge"}], "gives no value for parameter"),
    ("points_to_evaluate", [{**GOOD["points_to_evaluate"][0], "lr_g": 0.5}], "outside the parameter's"),
    ("points_to_evaluate", [{**GOOD["points_to_evaluate"][0], "loss": "minimax"}], "outside the parameter's"),
])
def test_invalid_spaces_fail_with_a_named_problem(path: str, value: object, message: str | None) -> None:
    data = with_change(path, value)
    if message is None:
        parse(data)
        return
    with pytest.raises(SpaceError) as err:
        parse(data)
    assert message in str(err.value)


def test_two_params_on_one_key_and_missing_file(tmp_path) -> None:
    data = with_change("params/beta2", {"key": "train.lr_g", "type": "uniform", "low": 0.1, "high": 0.2})
    with pytest.raises(SpaceError, match="both set train.lr_g"):
        parse(data)
    with pytest.raises(SpaceError, match="search-space file not found"):
        load_study("configs/debug.yaml", tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("params: [1, 2\n")
    with pytest.raises(SpaceError, match="not valid YAML"):
        load_study("configs/debug.yaml", bad)
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump(GOOD, sort_keys=False))
    assert list(load_study("configs/debug.yaml", ok)[1].params) == list(GOOD["params"])


def test_tune_settings_config_then_space_then_command_line(tmp_path) -> None:
    """One config tree: the config file's tune section, the space's over it, flags and --set over both; a
    command-line value of a key the space fixes replaces the fixed value."""
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**load_config("configs/debug.yaml").to_dict(),
                                   "tune": {"trials": 7, "seed": 3, "grace_period": 2}}))
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(GOOD))
    base, sp = load_study(cfg, space)
    assert (base.tune.trials, base.tune.seed, base.tune.grace_period, base.tune.reduction_factor) == (7, 3, 1, 2.0)
    base, sp = load_study(cfg, space, ["tune.trials=9", "tune.grace_period=3", "train.epochs=6"])
    assert (base.tune.trials, base.tune.seed, base.tune.grace_period) == (9, 3, 3)
    assert sp.fixed["train.epochs"] == 6 and sp.epochs(base) == 6
    with pytest.raises(SpaceError, match=r"tune.grace_period \(5\) exceeds train.epochs \(4\)"):
        load_study(cfg, space, ["tune.grace_period=5"])
    from gansim.config import ConfigError

    with pytest.raises(ConfigError, match="tune.scheduler: 'median' is not one of"):
        load_study(cfg, space, ["tune.scheduler=median"])


def test_default_concurrency_from_cluster_resources() -> None:
    assert default_concurrency({"CPU": 16.0}, 2, 1.0, 0.0, 200) == 8
    assert default_concurrency({"CPU": 64.0, "GPU": 4.0}, 1, 4.0, 1.0, 200) == 4  # GPUs bind first
    assert default_concurrency({"CPU": 4.0}, 1, 1.0, 0.0, 3) == 3  # never more than the trials
    with pytest.raises(Exception, match="cannot hold one trial"):
        default_concurrency({"CPU": 2.0}, 4, 1.0, 0.0, 10)
    assert math.isclose(default_concurrency({"CPU": 3.0}, 1, 1.5, 0.0, 10), 2)


def test_cli_rejects_a_bad_space_before_starting_ray(tmp_path, calo_file) -> None:
    from gansim.cli import main

    bad = tmp_path / "space.yaml"
    bad.write_text(yaml.safe_dump(with_change("params/lr_g/low", 0.0)))
    rc = main(["tune", "--config", "configs/debug.yaml", "--space", str(bad), "--data", str(calo_file),
               "--trials", "2", "--out", str(tmp_path / "out")])
    assert rc == 2
    assert not (tmp_path / "out").exists()
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(GOOD))
    rc = main(["tune", "--config", "configs/debug.yaml", "--space", str(good), "--data", str(calo_file),
               "--max-concurrent", "-1", "--out", str(tmp_path / "out")])
    assert rc == 2 and not (tmp_path / "out").exists()
