"""Search space files (configs/tune/*.yaml): parsing, validation against the config tree, Optuna distributions.

A space file::

    study_name: calogan-eplus          # optional; Optuna study name (default: run.name of the config)
    scheduler: {type: asha, grace_period: 2, reduction_factor: 3}   # or {type: none}
    sampler: {n_startup_trials: 10}    # TPE random warm-up trials
    fixed: {train.epochs: 20}          # dotted overrides applied to every trial
    params:                            # name -> distribution over one dotted config key
      loss:     {key: loss.name, type: choice, values: [minimax, hinge]}
      lr_g:     {key: train.lr_g, type: loguniform, low: 1.0e-5, high: 1.0e-3}
      lr_ratio: {key: train.lr_d, type: loguniform, low: 0.01, high: 10, scale_by: lr_g}   # lr_d = ratio × lr_g
      n_critic: {key: train.n_critic, type: int, low: 1, high: 5}                        # bounds inclusive
    points_to_evaluate:                # optional: full parameter sets tried first (e.g. the paper's)
      - {loss: minimax, lr_g: 2.0e-4, lr_ratio: 0.1, n_critic: 1}

Types: uniform, loguniform, int (optional ``log: true``, ``step``), choice. Every bound and choice is checked
with gansim.config.config_from_dict before a trial starts, so a space that the config tree would reject fails
up front with a GansimError naming the parameter.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gansim.config import Config, ConfigError, config_from_dict, read_yaml, resolve_config_path, set_dotted
from gansim.errors import GansimError

TYPES = ("uniform", "loguniform", "int", "choice")
TOP_KEYS = ("study_name", "scheduler", "sampler", "fixed", "params", "points_to_evaluate")
PARAM_FIELDS = ("key", "type", "low", "high", "values", "log", "step", "scale_by")
SCHEDULERS = ("asha", "none")
# Set per trial from the command-line flags / output layout, so a space may not move them.
RESERVED_KEYS = ("run.out_dir", "run.name", "train.workers", "train.gpus_per_worker")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class SpaceError(GansimError):
    """A search-space file problem; the message names the file and the parameter."""


@dataclass
class Param:
    """One searched parameter: a distribution over the value written to config key ``key``."""

    name: str
    key: str
    type: str
    low: float | int | None = None
    high: float | int | None = None
    values: list[Any] = field(default_factory=list)
    log: bool = False
    step: float | int | None = None
    scale_by: str | None = None  # config value = sampled value × value of this other parameter

    def distribution(self) -> Any:
        """The Optuna distribution of the sampled value (before scale_by)."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.type == "choice":
            return CategoricalDistribution(list(self.values))
        if self.type == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(float(self.low), float(self.high), log=self.type == "loguniform",
                                 step=self.step)

    def extremes(self) -> list[Any]:
        """The values that bound this parameter (validated against the config tree)."""
        return list(self.values) if self.type == "choice" else [self.low, self.high]


@dataclass
class SchedulerSpec:
    type: str = "asha"
    grace_period: int = 1
    reduction_factor: float = 3.0


@dataclass
class SearchSpace:
    """A validated search space; ``apply`` turns one trial's parameter values into config overrides."""

    params: dict[str, Param]
    fixed: dict[str, Any] = field(default_factory=dict)
    scheduler: SchedulerSpec = field(default_factory=SchedulerSpec)
    n_startup_trials: int = 10
    points_to_evaluate: list[dict[str, Any]] = field(default_factory=list)
    study_name: str | None = None
    source: str = "<space>"

    def distributions(self) -> dict[str, Any]:
        return {name: p.distribution() for name, p in self.params.items()}

    def config_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """Dotted config key → value for one trial (fixed overrides first, then the searched parameters)."""
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "study_name": self.study_name,
            "scheduler": dataclasses.asdict(self.scheduler),
            "sampler": {"n_startup_trials": self.n_startup_trials},
            "fixed": dict(self.fixed),
            "params": {n: {k: v for k, v in dataclasses.asdict(p).items() if k != "name" and v not in (None, [])}
                       for n, p in self.params.items()},
            "points_to_evaluate": [dict(p) for p in self.points_to_evaluate],
        }

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)


def _number(where: str, value: Any, *, integer: bool = False) -> float | int:
    # YAML 1.1 reads 1e-5 (no dot) as a string; accept it like the --set parser does.
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SpaceError(f"{where}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise SpaceError(f"{where}: expected a number, got {value!r}")
    if value in (float("inf"), float("-inf")):
        raise SpaceError(f"{where}: must be finite, got {value!r}")
    if integer:
        if float(value) != int(value):
            raise SpaceError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    return float(value)


def _parse_param(name: str, spec: Any, where: str) -> Param:
    at = f"{where}: params.{name}"
    if not _NAME.match(name):
        raise SpaceError(f"{at}: parameter names are letters, digits and '_' (not starting with a digit)")
    if not isinstance(spec, dict):
        raise SpaceError(f"{at}: expected a mapping with key, type, ... got {spec!r}")
    unknown = sorted(set(spec) - set(PARAM_FIELDS))
    if unknown:
        raise SpaceError(f"{at}: unknown field {unknown[0]!r} (known: {', '.join(PARAM_FIELDS)})")
    key, kind = spec.get("key"), spec.get("type")
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise SpaceError(f"{at}: 'key' must be a dotted config key such as train.lr_g, got {key!r}")
    if key in RESERVED_KEYS:
        raise SpaceError(f"{at}: {key} is set by `gansim tune` itself (per-trial resources come from "
                         "--workers-per-trial / --gpus-per-trial) and cannot be searched")
    if kind not in TYPES:
        raise SpaceError(f"{at}: unknown distribution type {kind!r} (known: {', '.join(TYPES)})")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise SpaceError(f"{at}: 'log' must be true or false, got {log!r}")
    scale_by = spec.get("scale_by")
    if scale_by is not None and not isinstance(scale_by, str):
        raise SpaceError(f"{at}: 'scale_by' must name another parameter, got {scale_by!r}")
    if kind == "choice":
        for f in ("low", "high", "step"):
            if f in spec:
                raise SpaceError(f"{at}: a choice takes 'values', not {f!r}")
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SpaceError(f"{at}: a choice needs a non-empty list 'values', got {values!r}")
        for v in values:
            if v is not None and not isinstance(v, (bool, int, float, str)):
                raise SpaceError(f"{at}: choice values must be plain numbers, strings or booleans, got {v!r}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise SpaceError(f"{at}: duplicate values in {values!r}")
        if log or scale_by:
            raise SpaceError(f"{at}: 'log' and 'scale_by' apply to numeric ranges, not to a choice")
        return Param(name, key, kind, values=list(values))
    if "values" in spec:
        raise SpaceError(f"{at}: type {kind} takes 'low' and 'high', not 'values' (use type: choice)")
    for f in ("low", "high"):
        if f not in spec:
            raise SpaceError(f"{at}: type {kind} needs '{f}'")
    integer = kind == "int"
    low = _number(f"{at}.low", spec["low"], integer=integer)
    high = _number(f"{at}.high", spec["high"], integer=integer)
    if low >= high:
        raise SpaceError(f"{at}: low ({low}) must be below high ({high})")
    is_log = kind == "loguniform" or log
    if kind == "uniform" and log:
        raise SpaceError(f"{at}: use type: loguniform instead of uniform with log: true")
    if is_log and low <= 0:
        raise SpaceError(f"{at}: a log distribution needs low > 0, got {low}")
    step = spec.get("step")
    if step is not None:
        step = _number(f"{at}.step", step, integer=integer)
        if step <= 0:
            raise SpaceError(f"{at}: step must be positive, got {step}")
        if is_log:
            raise SpaceError(f"{at}: step cannot be combined with a log scale")
    return Param(name, key, kind, low=low, high=high, log=log if integer else False, step=step, scale_by=scale_by)


def _check_against_config(space: SearchSpace, base: dict[str, Any]) -> None:
    """Every fixed override, bound and choice must be accepted by the config tree (typed, ranged)."""
    where = space.source
    fixed_base = copy.deepcopy(base)
    for key, value in space.fixed.items():
        if key in RESERVED_KEYS:
            raise SpaceError(f"{where}: fixed.{key} is set by `gansim tune` itself")
        try:
            set_dotted(fixed_base, key, value)
            config_from_dict(fixed_base)
        except ConfigError as exc:
            raise SpaceError(f"{where}: fixed.{key}: {exc}") from None
    for p in space.params.values():
        if p.scale_by:
            continue
        for v in p.extremes():
            data = copy.deepcopy(fixed_base)
            try:
                set_dotted(data, p.key, v)
                config_from_dict(data)
            except ConfigError as exc:
                raise SpaceError(f"{where}: params.{p.name} = {v!r} is rejected by the config: {exc}") from None
    for p in space.params.values():
        if not p.scale_by:
            continue
        other = space.params[p.scale_by]
        for a, b in itertools.product(p.extremes(), other.extremes()):
            data = copy.deepcopy(fixed_base)
            try:
                set_dotted(data, p.key, a * b)
                config_from_dict(data)
            except ConfigError as exc:
                raise SpaceError(f"{where}: params.{p.name} = {a!r} × {p.scale_by} = {b!r} is rejected by the "
                                 f"config: {exc}") from None


def _check_points(space: SearchSpace) -> None:
    dists = space.distributions()
    for i, point in enumerate(space.points_to_evaluate):
        at = f"{space.source}: points_to_evaluate[{i}]"
        if not isinstance(point, dict):
            raise SpaceError(f"{at}: expected a mapping of parameter values, got {point!r}")
        extra = sorted(set(point) - set(dists))
        missing = sorted(set(dists) - set(point))
        if extra:
            raise SpaceError(f"{at}: unknown parameter {extra[0]!r}")
        if missing:
            raise SpaceError(f"{at}: gives no value for parameter {missing[0]!r} (a point sets every parameter)")
        for name, value in point.items():
            p = space.params[name]
            if p.type != "choice":
                value = _number(f"{at}.{name}", value, integer=p.type == "int")
                point[name] = value
            try:
                ok = dists[name]._contains(dists[name].to_internal_repr(value))
            except (ValueError, TypeError):
                ok = False
            if not ok:
                raise SpaceError(f"{at}.{name}: {value!r} lies outside the parameter's distribution")


def parse_space(data: Any, base: Config, source: str = "<space>") -> SearchSpace:
    """Validate a space mapping against the base config; SpaceError names the first problem found."""
    if not isinstance(data, dict):
        raise SpaceError(f"{source}: top level must be a mapping (params, fixed, scheduler, ...)")
    unknown = sorted(set(data) - set(TOP_KEYS))
    if unknown:
        raise SpaceError(f"{source}: unknown key {unknown[0]!r} (known: {', '.join(TOP_KEYS)})")
    raw_params = data.get("params")
    if not isinstance(raw_params, dict) or not raw_params:
        raise SpaceError(f"{source}: 'params' must be a non-empty mapping of parameter name -> distribution")
    params = {str(name): _parse_param(str(name), spec, source) for name, spec in raw_params.items()}
    keys: dict[str, str] = {}
    for p in params.values():
        if p.key in keys:
            raise SpaceError(f"{source}: params.{p.name} and params.{keys[p.key]} both set {p.key}")
        keys[p.key] = p.name
        if p.scale_by is not None:
            other = params.get(p.scale_by)
            if other is None or other is p:
                raise SpaceError(f"{source}: params.{p.name}.scale_by: {p.scale_by!r} is not another parameter")
            if other.type == "choice" and not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  for v in other.values):
                raise SpaceError(f"{source}: params.{p.name}.scale_by: {p.scale_by} is not numeric")
            if other.scale_by:
                raise SpaceError(f"{source}: params.{p.name}.scale_by: {p.scale_by} is itself scaled (no chains)")

    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict) or not all(isinstance(k, str) and k for k in fixed):
        raise SpaceError(f"{source}: 'fixed' must map dotted config keys to values, e.g. train.epochs: 20")
    clash = sorted(set(fixed) & set(keys))
    if clash:
        raise SpaceError(f"{source}: {clash[0]} is both fixed and searched")

    sched = data.get("scheduler") or {}
    if not isinstance(sched, dict):
        raise SpaceError(f"{source}: 'scheduler' must be a mapping, e.g. {{type: asha, grace_period: 2}}")
    bad = sorted(set(sched) - {"type", "grace_period", "reduction_factor"})
    if bad:
        raise SpaceError(f"{source}: scheduler: unknown key {bad[0]!r} (known: type, grace_period, "
                         "reduction_factor)")
    stype = sched.get("type", "asha")
    if stype not in SCHEDULERS:
        raise SpaceError(f"{source}: scheduler.type {stype!r} is not one of {', '.join(SCHEDULERS)}")
    grace = _number(f"{source}: scheduler.grace_period", sched.get("grace_period", 1), integer=True)
    rf = _number(f"{source}: scheduler.reduction_factor", sched.get("reduction_factor", 3))
    if grace < 1:
        raise SpaceError(f"{source}: scheduler.grace_period must be at least 1 epoch, got {grace}")
    if rf <= 1:
        raise SpaceError(f"{source}: scheduler.reduction_factor must be above 1, got {rf}")

    sampler = data.get("sampler") or {}
    if not isinstance(sampler, dict) or sorted(set(sampler) - {"n_startup_trials"}):
        raise SpaceError(f"{source}: 'sampler' accepts only n_startup_trials")
    n_startup = _number(f"{source}: sampler.n_startup_trials", sampler.get("n_startup_trials", 10), integer=True)
    if n_startup < 0:
        raise SpaceError(f"{source}: sampler.n_startup_trials must be >= 0")

    points = data.get("points_to_evaluate") or []
    if not isinstance(points, list):
        raise SpaceError(f"{source}: 'points_to_evaluate' must be a list of parameter mappings")
    study_name = data.get("study_name")
    if study_name is not None and (not isinstance(study_name, str) or not study_name.strip()):
        raise SpaceError(f"{source}: 'study_name' must be a non-empty string")

    space = SearchSpace(params=params, fixed=dict(fixed), scheduler=SchedulerSpec(stype, int(grace), float(rf)),
                        n_startup_trials=int(n_startup), points_to_evaluate=[copy.deepcopy(p) for p in points],
                        study_name=study_name, source=source)
    _check_against_config(space, base.to_dict())
    _check_points(space)
    epochs = space.trial_config(base.to_dict(), _any_values(space)).train.epochs
    if space.scheduler.type == "asha" and space.scheduler.grace_period > epochs:
        raise SpaceError(f"{source}: scheduler.grace_period ({space.scheduler.grace_period}) exceeds "
                         f"train.epochs ({epochs}); no trial could be stopped early")
    return space


def _any_values(space: SearchSpace) -> dict[str, Any]:
    return {n: p.extremes()[0] for n, p in space.params.items()}


def load_space(path: str | Path, base: Config) -> SearchSpace:
    """Read and validate a search-space YAML file for the given base config."""
    try:
        data = read_yaml(resolve_config_path(path))
    except ConfigError as exc:
        raise SpaceError(str(exc).replace("config file", "search-space file")) from None
    return parse_space(data, base, source=str(path))
