"""Typed run configuration: YAML files in configs/, dotted command-line overrides, strict validation."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gansim.atomic import atomic_path
from gansim.errors import GansimError


class ConfigError(GansimError, ValueError):
    """A configuration problem; the message names the offending key."""


def _f(default: Any, *, lo: float | None = None, hi: float | None = None,
       choices: tuple[Any, ...] | None = None, help: str = "", **kw: Any) -> Any:
    """Dataclass field carrying validation metadata (range, choices, help)."""
    meta = {"lo": lo, "hi": hi, "choices": choices, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


PARTICLES = ("eplus", "gamma", "piplus")
LOSSES = ("minimax", "non-saturating", "wgan-gp", "hinge", "least-squares")


@dataclass
class RunConfig:
    """Where a run writes and how it is seeded."""

    name: str = _f("run", help="run name; outputs go to out_dir")
    out_dir: str = _f("runs/run", help="directory for checkpoints, TensorBoard logs and the resolved config")
    seed: int = _f(1234, lo=0, help="global seed (data split, init, latent draws)")


@dataclass
class DataConfig:
    """Training data: a CaloGAN-format or LAGAN-format HDF5 file."""

    path: str = _f("", help="HDF5 training file (CaloGAN or LAGAN format)")
    kind: str = _f("calo", choices=("calo", "jets"), help="data format")
    particle: str = _f("eplus", choices=(*PARTICLES, "jets"), help="particle type (calo) or 'jets'")
    val_fraction: float = _f(0.1, lo=0.0, hi=0.9, help="fraction held out for validation (seeded split)")
    max_events: int = _f(0, lo=0, help="use at most this many events (0 = all)")
    in_memory: bool = _f(True, help="load the whole file into RAM instead of lazy per-worker reads")
    loader_workers: int = _f(0, lo=0, hi=64, help="DataLoader worker processes per training worker")


@dataclass
class ModelConfig:
    """Generator / discriminator architecture, chosen from the model registry by name."""

    name: str = _f("calogan", choices=("calogan", "lagan"), help="registered model name")
    latent_dim: int = _f(1024, lo=1, hi=65536, help="latent vector size")
    attention: bool = _f(True, help="CaloGAN layer-to-layer in-painting attention")
    gen_channels: int = _f(64, lo=1, hi=4096, help="base channel width of the generator streams")
    disc_channels: int = _f(64, lo=1, hi=4096, help="base channel width of the discriminator")
    minibatch_kernels: int = _f(10, lo=0, hi=1024, help="minibatch-discrimination kernels (0 = off)")
    minibatch_dim: int = _f(10, lo=1, hi=1024, help="minibatch-discrimination kernel dimension")
    batchnorm: bool = _f(True, help="BatchNorm in the discriminator (forced off for wgan-gp)")


@dataclass
class LossConfig:
    """Adversarial loss choice and auxiliary terms."""

    name: str = _f("non-saturating", choices=LOSSES, help="adversarial loss")
    gp_weight: float = _f(10.0, lo=0.0, help="gradient-penalty weight (wgan-gp)")
    lambda_e: float = _f(0.05, lo=0.0, help="weight of the auxiliary total-energy loss (CaloGAN: 0.05)")
    lambda_class: float = _f(1.0, lo=0.0, help="weight of the auxiliary class loss (LAGAN)")


@dataclass
class TrainConfig:
    """Optimisation, distribution and checkpointing."""

    epochs: int = _f(50, lo=1, help="training epochs")
    batch_size: int = _f(256, lo=1, help="per-worker batch size (global = batch_size x workers)")
    lr_g: float = _f(2e-4, lo=0.0, hi=1.0, help="generator learning rate")
    lr_d: float = _f(2e-5, lo=0.0, hi=1.0, help="discriminator learning rate")
    beta1: float = _f(0.5, lo=0.0, hi=0.9999, help="Adam beta1")
    beta2: float = _f(0.999, lo=0.0, hi=0.99999, help="Adam beta2")
    n_critic: int = _f(1, lo=1, hi=100, help="discriminator steps per generator step")
    ema_decay: float = _f(0.0, lo=0.0, hi=0.99999, help="EMA decay of G weights for eval/export (0 = off)")
    workers: int = _f(1, lo=1, help="Ray Train workers (DDP ranks)")
    gpus_per_worker: float = _f(0.0, lo=0.0, help="GPUs per worker (0 = CPU, gloo)")
    cpus_per_worker: float = _f(1.0, lo=0.0, help="logical CPUs reserved per worker")
    steps_per_epoch: int = _f(0, lo=0, help="cap on optimiser steps per epoch (0 = full pass)")
    checkpoint_every: int = _f(1, lo=1, help="checkpoint every N epochs")
    num_to_keep: int = _f(3, lo=1, help="checkpoints kept")
    max_failures: int = _f(2, lo=-1, help="automatic restarts after a worker dies (-1 = unlimited)")
    max_nonfinite: int = _f(20, lo=1, help="consecutive non-finite steps before the run is stopped")
    val_events: int = _f(2000, lo=0, help="validation events for per-epoch physics checks")
    log_every: int = _f(20, lo=1, help="TensorBoard scalar logging interval (steps)")


@dataclass
class EvalConfig:
    """Physics validation settings."""

    n_events: int = _f(20000, lo=10, help="events compared per sample")
    classifier_epochs: int = _f(30, lo=1, help="max epochs of the two-sample classifier")
    seed: int = _f(0, lo=0, help="seed of the evaluation (splits, classifier init)")


@dataclass
class Config:
    """The whole run description; saved next to every output and inside every checkpoint."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short stable hash of the resolved config (provenance attribute)."""
        blob = json.dumps(self.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write the resolved config as YAML (re-loadable by load_config)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_value(key: str, value: Any, tp: Any, meta: dict[str, Any]) -> Any:
    """Coerce and validate one leaf value; raise ConfigError naming key."""
    origin = typing.get_origin(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: must be finite, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    elif origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)[:1]
        value = [_check_value(f"{key}[{i}]", v, inner, {}) for i, v in enumerate(value)]
    elif origin in (typing.Union, types.UnionType):
        raise ConfigError(f"{key}: union types are not supported in the config tree")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: {value!r} is above the maximum {hi}")
    return value


def _build(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass cls from a mapping, rejecting unknown keys and bad values."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"unknown key {where}{unknown[0]} (known: {', '.join(fields)})")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name not in data:
            continue
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, data[name], key)
        else:
            kwargs[name] = _check_value(key, data[name], tp, dict(f.metadata))
    return cls(**kwargs)


def _validate_defaults(obj: Any, prefix: str = "") -> None:
    """Re-check every leaf (catches defaults combined with overrides)."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        key = f"{prefix}.{f.name}" if prefix else f.name
        val = getattr(obj, f.name)
        if dataclasses.is_dataclass(val):
            _validate_defaults(val, key)
        else:
            _check_value(key, val, hints[f.name], dict(f.metadata))


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse 'a.b=value' (value read as YAML, so 1e-4, true, [1,2] work)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.lr_g=1e-4")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads '1e-4' as a string; accept it as a float.
    if isinstance(value, str):
        try:
            value = float(value) if any(c in value for c in ".eE") else int(value)
        except ValueError:
            pass
    return key.split("."), value


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """data['a']['b'] = value for key 'a.b', creating sections; a leaf in the way is an error."""
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {key}: {part} is not a section")
        node = child
    node[parts[-1]] = value


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping with safe_load; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


def config_from_dict(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a nested dict plus dotted overrides."""
    data = json.loads(json.dumps(data))  # deep copy, plain types only
    for item in overrides:
        path, value = parse_override(item)
        set_dotted(data, ".".join(path), value)
    cfg = _build(Config, data, "")
    _validate_defaults(cfg)
    return cfg


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load configs/*.yaml (or defaults when path is None) and apply KEY=VALUE overrides."""
    data = read_yaml(path) if path else {}
    return config_from_dict(data, overrides)


def describe_fields() -> list[tuple[str, Any, str]]:
    """(dotted key, default, help) for every leaf; used by `gansim config --list`."""
    rows: list[tuple[str, Any, str]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            val = getattr(obj, f.name)
            key = f"{prefix}.{f.name}" if prefix else f.name
            if dataclasses.is_dataclass(val):
                walk(val, key)
            else:
                rows.append((key, val, f.metadata.get("help", "")))

    walk(Config(), "")
    return rows
