"""Config tree: YAML loading, dotted overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gansim.config import Config, ConfigError, describe_fields, load_config, parse_override
from tests.conftest import run_cli


def test_defaults_are_paper_values() -> None:
    cfg = Config()
    assert (cfg.train.lr_g, cfg.train.lr_d, cfg.train.beta1, cfg.train.batch_size) == (2e-4, 2e-5, 0.5, 256)
    assert cfg.model.latent_dim == 1024 and cfg.loss.lambda_e == 0.05


def test_yaml_and_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  lr_g: 0.001\n  epochs: 3\nmodel:\n  attention: false\n")
    cfg = load_config(p, ["train.lr_g=1e-4", "loss.name=hinge", "train.epochs=7", "model.latent_dim=64"])
    assert cfg.train.lr_g == pytest.approx(1e-4)
    assert cfg.train.epochs == 7 and cfg.loss.name == "hinge" and cfg.model.attention is False
    assert cfg.model.latent_dim == 64


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.lr_gg=1", "unknown key train.lr_gg"),
        ("trian.lr_g=1", "unknown key trian"),
        ("train.epochs=abc", "train.epochs: expected an integer"),
        ("train.epochs=2.5", "train.epochs: expected an integer"),
        ("train.lr_g=-1", "train.lr_g: -1.0 is below the minimum"),
        ("data.val_fraction=0.95", "data.val_fraction: 0.95 is above the maximum"),
        ("loss.name=wgan", "loss.name: 'wgan' is not one of"),
        ("model.attention=3", "model.attention: expected true/false"),
        ("train.lr_g=.nan", "train.lr_g: must be finite"),
        ("train.lr_g", "expected KEY=VALUE"),
        ("train=3", "train is a section"),
        ("model.batchnorm=maybe", "model.batchnorm: 'maybe' is not one of auto, on, off"),
        ("run.seed=18446744073709551616", "run.seed: 18446744073709551616 is above the maximum"),
        ("run.name=..", "run.name: '..' is not a valid run name"),
        ("run.name=a/b", "run.name: 'a/b' is not a valid run name"),
        ("model.name=gpt", "model.name: 'gpt' is not one of"),
    ],
)
def test_bad_values_name_the_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(None, [override])


def test_unknown_key_in_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown key train.learning_rate"):
        load_config(p)


def test_save_roundtrip_and_hash(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.lr_g=3e-4", "run.seed=7"])
    out = cfg.save(tmp_path / "run" / "config.yaml")
    again = load_config(out)
    assert again == cfg and again.hash() == cfg.hash()
    assert load_config(None).hash() != cfg.hash()
    assert yaml.safe_load(out.read_text())["train"]["lr_g"] == pytest.approx(3e-4)


def test_parse_override_types() -> None:
    assert parse_override("train.lr_g=1e-4") == (["train", "lr_g"], 1e-4)
    assert parse_override("model.attention=true") == (["model", "attention"], True)
    assert parse_override("train.epochs=12") == (["train", "epochs"], 12)


def test_string_keys_take_the_text_verbatim() -> None:
    """Paths and names are strings: '#' is not a comment, digits stay text (YAML would read 007 as 7)."""
    cfg = load_config(None, ["data.path=in/jets.h5 #v2", "run.out_dir=2024", "run.name=007"])
    assert cfg.data.path == "in/jets.h5 #v2" and cfg.run.out_dir == "2024" and cfg.run.name == "007"


def test_switch_accepts_yaml_booleans(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  batchnorm: true\n")  # YAML 1.1 also reads on/off/yes/no as booleans
    assert load_config(p).model.batchnorm == "on"
    assert load_config(None, ["model.batchnorm=false"]).model.batchnorm == "off"
    cfg = load_config(None, ["loss.name=wgan-gp"])
    assert cfg.model.batchnorm == "auto" and not cfg.model.critic_batchnorm("wgan-gp")
    assert load_config(None).model.critic_batchnorm("non-saturating")


def test_cross_field_rules_name_the_keys() -> None:
    with pytest.raises(ConfigError, match="model.batchnorm: 'on' cannot be combined with loss.name=wgan-gp"):
        load_config(None, ["loss.name=wgan-gp", "model.batchnorm=on"])
    with pytest.raises(ConfigError, match="data.particle: 'jets' is not a calorimeter showers particle"):
        load_config(None, ["data.particle=jets"])
    assert load_config(None, ["model.name=lagan", "data.particle=jets"]).model.critic_dropout("wgan-gp") == 0.0
    assert load_config(None, ["model.name=lagan", "data.particle=jets"]).model.critic_dropout("hinge") == 0.2


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1},"
              f" *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    p = tmp_path / "bomb.yaml"
    p.write_text("\n".join(lines) + "\n")  # 10^9 leaves once expanded
    with pytest.raises(ConfigError, match="alias"):
        load_config(p)


def test_every_verb_has_a_section() -> None:
    keys = {k for k, _, _ in describe_fields()}
    assert {"eval.seed", "eval.classifier_epochs", "produce.chunk_size", "produce.layout", "tune.trials",
            "tune.grace_period", "train.lr_g", "model.batchnorm"} <= keys
    helps = dict((k, h) for k, _, h in describe_fields())
    assert "[shards | single]" in helps["produce.layout"] and "[0.0 .. 0.9]" in helps["data.val_fraction"]


def test_cli_config_errors_are_one_line(tmp_path: Path) -> None:
    res = run_cli("config", "--set", "train.lr_gg=1")
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert "unknown key train.lr_gg" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("config", "--config", str(tmp_path / "missing.yaml"))
    assert res.returncode == 2 and "config file not found" in res.stderr
    res = run_cli("config", "--list")
    assert res.returncode == 0 and "train.lr_g" in res.stdout
