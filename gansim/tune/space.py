"""Search space files (configs/tune/*.yaml), validated by the config tree's own code, and Optuna distributions.

A space file::

    tune:                              # overrides of the config's tune section for this study (`gansim config
      study_name: calogan-eplus        #   --list` shows every tune.* key); command-line flags override these
      scheduler: asha                  # asha (early stopping on the per-epoch fidelity) or none
      grace_period: 2
      reduction_factor: 3
      n_startup_trials: 10             # TPE random warm-up trials
    fixed: {train.epochs: 20}          # dotted overrides applied to every trial
    params:                            # name -> distribution over one dotted config key
      loss:     {key: loss.name, type: choice, values: [minimax, hinge]}
      lr_g:     {key: train.lr_g, type: loguniform, low: 1.0e-5, high: 1.0e-3}
      lr_ratio: {key: train.lr_d, type: loguniform, low: 0.01, high: 10, scale_by: lr_g}   # lr_d = ratio × lr_g
      n_critic: {key: train.n_critic, type: int, low: 1, high: 5}                        # bounds inclusive
    points_to_evaluate:                # optional: full parameter sets tried first (e.g. the paper's)
      - {loss: minimax, lr_g: 2.0e-4, lr_ratio: 0.1, n_critic: 1}

Each parameter is a `Param` built by gansim.config.build_section (unknown keys, wrong types and cross-field
problems are ConfigErrors naming the key), the file itself a `SpaceFile`, the tune section a `TuneConfig`. Every
fixed value, bound and choice is then checked with config_from_dict, so a space that the config tree would
reject fails before Ray starts, with a SpaceError naming the file and the parameter.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gansim.config import (
    Config,
    ConfigError,
    TuneConfig,
    _check_value,
    _f,
    build_section,
    config_from_dict,
    leaf_type,
    parse_override,
    read_yaml,
    resolve_config_path,
    set_dotted,
)
from gansim.errors import GansimError

# Set per trial from the tune section / output layout, so a space may not move them.
RESERVED_KEYS = ("run.out_dir", "run.name", "train.workers", "train.gpus_per_worker")
# The format before the tune section existed; refused with the new spelling rather than "unknown key".
LEGACY_KEYS = {"scheduler": "tune: {scheduler: asha, grace_period: 2, reduction_factor: 3}",
               "sampler": "tune: {n_startup_trials: 10}", "study_name": "tune: {study_name: NAME}"}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpaceError(GansimError):
    """A search-space file problem; the message names the file and the parameter."""


def _plain_choice(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


@dataclass(kw_only=True, slots=True)
class Param:
    """One searched parameter: a distribution over the value written to config key `key`."""

    key: str = field(metadata={"help": "dotted config key the value is written to, e.g. train.lr_g"})
    type: Literal["uniform", "loguniform", "int", "choice"] = field(
        metadata={"help": "distribution: uniform / loguniform (low, high), int (low, high inclusive), choice"})
    low: float | None = _f(None, help="lower bound of uniform, loguniform and int")
    high: float | None = _f(None, help="upper bound of uniform, loguniform and int")
    values: list[Any] = _f([], help="the choices of type choice (numbers, strings or booleans)")
    log: bool = _f(False, help="int: sample on a log scale")
    step: float | None = _f(None, help="uniform / int: grid step")
    scale_by: str = _f("", help="config value = sampled value x this other parameter's value (lr_d = ratio x lr_g)")

    def __post_init__(self) -> None:
        if not self.key or any(not part for part in self.key.split(".")):
            raise ConfigError(f"'key' must be a dotted config key such as train.lr_g, got {self.key!r}")
        if self.key in RESERVED_KEYS:
            raise ConfigError(f"{self.key} is set by `gansim tune` itself (per-trial resources come from the tune "
                              "section: tune.workers_per_trial, tune.gpus_per_trial) and cannot be searched")
        leaf_type(self.key)  # ConfigError "unknown key ..." for a key the config tree does not have
        if self.type == "choice":
            self._check_choice()
        else:
            self._check_range()

    def _check_choice(self) -> None:
        for name in ("low", "high", "step"):
            if getattr(self, name) is not None:
                raise ConfigError(f"a choice takes 'values', not {name!r}")
        if not self.values:
            raise ConfigError(f"a choice needs a non-empty list 'values', got {self.values!r}")
        bad = next((v for v in self.values if not _plain_choice(v)), None)
        if bad is not None:
            raise ConfigError(f"choice values must be plain numbers, strings or booleans, got {bad!r}")
        if len({json.dumps(v) for v in self.values}) != len(self.values):
            raise ConfigError(f"duplicate values in {self.values!r}")
        if self.log or self.scale_by:
            raise ConfigError("'log' and 'scale_by' apply to numeric ranges, not to a choice")

    def _check_range(self) -> None:
        if self.values:
            raise ConfigError(f"type {self.type} takes 'low' and 'high', not 'values' (use type: choice)")
        for name in ("low", "high"):
            if getattr(self, name) is None:
                raise ConfigError(f"type {self.type} needs '{name}'")
        if self.type == "int":
            for name in ("low", "high", "step"):
                v = getattr(self, name)
                if v is not None and float(v) != int(v):
                    raise ConfigError(f"{name}: expected an integer, got {v!r}")
        if self.low >= self.high:  # type: ignore[operator]
            raise ConfigError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.type == "uniform" and self.log:
            raise ConfigError("use type: loguniform instead of uniform with log: true")
        is_log = self.type == "loguniform" or self.log
        if is_log and self.low <= 0:  # type: ignore[operator]
            raise ConfigError(f"a log distribution needs low > 0, got {self.low:g}")
        if self.step is not None and (self.step <= 0 or is_log):
            raise ConfigError(f"step must be positive and cannot be combined with a log scale, got {self.step:g}")

    def bound(self, value: float) -> float | int:
        return int(value) if self.type == "int" else float(value)

    def distribution(self) -> Any:
        """The Optuna distribution of the sampled value (before scale_by)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "choice":
            return CategoricalDistribution(list(self.values))
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log,  # type: ignore[arg-type]
                                   step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high),  # type: ignore[arg-type]
                                 log=self.type == "loguniform", step=self.step)

    def extremes(self) -> list[Any]:
        """The values that bound this parameter (validated against the config tree)."""
        return list(self.values) if self.type == "choice" else [self.bound(self.low), self.bound(self.high)]  # type: ignore[arg-type]


@dataclass(kw_only=True, slots=True)
class SpaceFile:
    """The top level of a search-space file."""

    tune: dict[str, Any] = _f({}, help="overrides of the config's tune section (a TuneConfig mapping)")
    fixed: dict[str, Any] = _f({}, help="dotted config key -> value, applied to every trial")
    params: dict[str, Any] = _f({}, help="parameter name -> Param mapping")
    points_to_evaluate: list[Any] = _f([], help="full parameter sets tried first")


@dataclass
class SearchSpace:
    """A validated search space; `trial_config` turns one trial's parameter values into its full Config."""

    params: dict[str, Param]
    fixed: dict[str, Any] = field(default_factory=dict)
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    source: str = "<space>"

    def distributions(self) -> dict[str, Any]:
        return {name: p.distribution() for name, p in self.params.items()}

    def config_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Dotted config key -> value for one trial (fixed overrides first, then the searched parameters)."""
        missing = sorted(set(self.params) - set(values))
        if missing:
            raise SpaceError(f"{self.source}: trial values lack parameter {missing[0]!r}")
        out = dict(self.fixed)
        for name, p in self.params.items():
            v = values[name]
            out[p.key] = v * values[p.scale_by] if p.scale_by else v
        return out

    def trial_dict(self, base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        data = copy.deepcopy(base)
        for key, value in self.config_values(values).items():
            set_dotted(data, key, value)
        return data

    def trial_config(self, base: dict[str, Any], values: dict[str, Any]) -> Config:
        """The full resolved Config of one trial (what best.yaml holds for the winner)."""
        return config_from_dict(self.trial_dict(base, values))

    def any_values(self) -> dict[str, Any]:
        return {n: p.extremes()[0] for n, p in self.params.items()}

    def epochs(self, base: Config) -> int:
        """train.epochs of every trial (ASHA's max_t): the base's, or the space's fixed value."""
        return self.trial_config(base.to_dict(), self.any_values()).train.epochs

    def to_dict(self) -> dict[str, Any]:
        return {"fixed": dict(self.fixed),
                "params": {n: {k: v for k, v in dataclasses.asdict(p).items() if v not in (None, [], "", False)}
                           for n, p in self.params.items()},
                "points_to_evaluate": [dict(p) for p in self.points_to_evaluate]}

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


def _built(cls: type, data: Any, prefix: str, source: str) -> Any:
    try:
        return build_section(cls, data, prefix)
    except ConfigError as exc:
        raise SpaceError(f"{source}: {exc}") from None


def read_space(path: str | Path) -> dict[str, Any]:
    """The raw mapping of a search-space file (path or shipped name such as tune/calogan)."""
    try:
        return read_yaml(resolve_config_path(path))
    except ConfigError as exc:
        raise SpaceError(str(exc).replace("config file", "search-space file")) from None


def space_file(data: Any, source: str) -> SpaceFile:
    """The top level of a space, its tune section validated as TuneConfig keys."""
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: top level must be a mapping (tune, fixed, params, points_to_evaluate)")
    legacy = next((k for k in LEGACY_KEYS if k in data), None)
    if legacy:
        raise SpaceError(f"{source}: '{legacy}' moved into the tune section; write {LEGACY_KEYS[legacy]} "
                         "(`gansim config --list` shows every tune.* key)")
    top = _built(SpaceFile, data, "", source)
    _built(TuneConfig, top.tune, "tune", source)
    return top


def with_space_tune(config_data: dict[str, Any], space: dict[str, Any], source: str) -> dict[str, Any]:
    """A copy of a config mapping with the space's tune section laid over its own."""
    top = space_file(space, source)
    data = copy.deepcopy(config_data)
    tune = data.setdefault("tune", {})
    if not isinstance(tune, dict):
        raise SpaceError("config: tune: expected a mapping")
    tune.update(top.tune)
    return data


def _parse_params(raw: dict[str, Any], source: str) -> dict[str, Param]:
    if not raw:
        raise SpaceError(f"{source}: 'params' must be a non-empty mapping of parameter name -> distribution")
    params: dict[str, Param] = {}
    for name, spec in raw.items():
        if not _NAME.match(str(name)):
            raise SpaceError(f"{source}: params.{name}: parameter names are letters, digits and '_' (not "
                             "starting with a digit)")
        params[str(name)] = _built(Param, spec, f"params.{name}", source)
    keys: dict[str, str] = {}
    for name, p in params.items():
        if p.key in keys:
            raise SpaceError(f"{source}: params.{name} and params.{keys[p.key]} both set {p.key}")
        keys[p.key] = name
        if p.scale_by:
            _check_scale_by(name, p, params, source)
    return params


def _check_scale_by(name: str, p: Param, params: dict[str, Param], source: str) -> None:
    other = params.get(p.scale_by)
    at = f"{source}: params.{name}.scale_by"
    if other is None or other is p:
        raise SpaceError(f"{at}: {p.scale_by!r} is not another parameter")
    if other.type == "choice" and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                          for v in other.values):
        raise SpaceError(f"{at}: {p.scale_by} is not numeric")
    if other.scale_by:
        raise SpaceError(f"{at}: {p.scale_by} is itself scaled (no chains)")


def _rejected(data: dict[str, Any], key: str, value: Any) -> str | None:
    """The config tree's objection to setting key = value on data, or None."""
    data = copy.deepcopy(data)
    try:
        set_dotted(data, key, value)
        config_from_dict(data)
    except ConfigError as exc:
        return str(exc)
    return None


def _check_against_config(space: SearchSpace, base: dict[str, Any]) -> None:
    """Every fixed override, bound and choice (products for scale_by) must be accepted by the config tree."""
    where = space.source
    fixed_base = copy.deepcopy(base)
    for key, value in space.fixed.items():
        if key in RESERVED_KEYS:
            raise SpaceError(f"{where}: fixed.{key} is set by `gansim tune` itself")
        problem = _rejected(fixed_base, key, value)
        if problem:
            raise SpaceError(f"{where}: fixed.{key}: {problem}")
        set_dotted(fixed_base, key, value)
    for name, p in space.params.items():
        other = space.params[p.scale_by] if p.scale_by else None
        pairs = itertools.product(p.extremes(), other.extremes() if other else [None])
        for a, b in pairs:
            problem = _rejected(fixed_base, p.key, a if b is None else a * b)
            if problem:
                shown = f"{a!r}" if b is None else f"{a!r} × {p.scale_by} = {b!r}"
                raise SpaceError(f"{where}: params.{name} = {shown} is rejected by the config: {problem}")


def _check_points(space: SearchSpace) -> None:
    dists = space.distributions()
    for i, point in enumerate(space.points_to_evaluate):
        at = f"{space.source}: points_to_evaluate[{i}]"
        if not isinstance(point, dict):
            raise SpaceError(f"{at}: expected a mapping of parameter values, got {point!r}")
        extra, missing = sorted(set(point) - set(dists)), sorted(set(dists) - set(point))
        if extra:
            raise SpaceError(f"{at}: unknown parameter {extra[0]!r}")
        if missing:
            raise SpaceError(f"{at}: gives no value for parameter {missing[0]!r} (a point sets every parameter)")
        for name, value in point.items():
            p = space.params[name]
            if p.type != "choice":
                try:
                    point[name] = value = _check_value(f"{at}.{name}", value, int if p.type == "int" else float, {})
                except ConfigError as exc:
                    raise SpaceError(str(exc)) from None
            try:
                ok = dists[name]._contains(dists[name].to_internal_repr(value))
            except (ValueError, TypeError):
                ok = False
            if not ok:
                raise SpaceError(f"{at}.{name}: {value!r} lies outside the parameter's distribution")


def parse_space(data: Any, base: Config, source: str = "<space>") -> SearchSpace:
    """Validate a space mapping against `base`, the run config with the space's tune section already laid over
    its own (load_study does that; with_space_tune for other callers). SpaceError names the first problem."""
    top = space_file(data, source)
    params = _parse_params(top.params, source)
    bad_key = next((k for k in top.fixed if not isinstance(k, str) or not k), None)
    if bad_key is not None:
        raise SpaceError(f"{source}: 'fixed' must map dotted config keys to values, e.g. train.epochs: 20")
    clash = sorted(set(top.fixed) & {p.key for p in params.values()})
    if clash:
        raise SpaceError(f"{source}: {clash[0]} is both fixed and searched")
    space = SearchSpace(params=params, fixed=dict(top.fixed), source=source,
                        points_to_evaluate=[copy.deepcopy(p) for p in top.points_to_evaluate])
    _check_against_config(space, base.to_dict())
    _check_points(space)
    epochs, t = space.epochs(base), base.tune
    if t.scheduler == "asha" and t.grace_period > epochs:
        raise SpaceError(f"{source}: tune.grace_period ({t.grace_period}) exceeds train.epochs ({epochs}); no "
                         "trial could be stopped early")
    return space


def load_study(config: str | Path | None, space: str | Path,
               overrides: list[str] | tuple[str, ...] = ()) -> tuple[Config, SearchSpace]:
    """(run config, search space) of a study. The tune settings come from the config file's tune section, then
    the space's, then `overrides` (--set and the command's flags); an override of a key the space fixes replaces
    the fixed value, so the command line always wins."""
    source = str(space)
    raw = read_space(space)
    config_data = read_yaml(resolve_config_path(config)) if config else {}
    base = config_from_dict(with_space_tune(config_data, raw, source), overrides)
    fixed = raw.get("fixed")
    if isinstance(fixed, dict):
        raw = {**raw, "fixed": {**fixed, **_fixed_overrides(fixed, overrides)}}
    return base, parse_space(raw, base, source)


def _fixed_overrides(fixed: dict[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for item in overrides:
        path, value = parse_override(item)
        key = ".".join(path)
        if key in fixed:
            out[key] = value
    return out
