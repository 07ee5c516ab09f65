"""The one config tree of every verb: typed sections, YAML files, dotted command-line overrides, strict validation.

Each section is a dataclass owning its fields (default, range or choices, help) and its cross-field rules
(`__post_init__`). `gansim config --list` prints all of it. Unknown keys, wrong types and out-of-range values
are ConfigErrors that name the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from gansim.atomic import atomic_path
from gansim.errors import GansimError


class ConfigError(GansimError, ValueError):
    """A configuration problem; the message names the offending key."""


def _f(default: Any, *, lo: float | None = None, hi: float | None = None, help: str = "") -> Any:
    """Dataclass field carrying validation metadata (range, help); choices come from Literal types."""
    meta = {"lo": lo, "hi": hi, "help": help}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


Loss = Literal["minimax", "non-saturating", "wgan-gp", "hinge", "least-squares"]
Switch = Literal["auto", "on", "off"]  # "auto": the documented default rule; YAML true/false read as on/off
SEED_HELP = "(0 <= seed < 2^63)"
MAX_EVENTS = 10**15  # above any plan a file system can hold; the plan and memory checks bound it further


@dataclass(kw_only=True, slots=True)
class RunConfig:
    """Where a run writes and how it is seeded."""

    name: str = _f("run", help="run name: checkpoints go to <out_dir>/<name>/ (letters, digits, . _ -)")
    out_dir: str = _f("runs/run", help="directory for checkpoints, TensorBoard logs and the resolved config")
    seed: int = _f(1234, lo=0, hi=2**63 - 1, help=f"global seed (data split, init, latents) {SEED_HELP}")

    def __post_init__(self) -> None:
        from gansim.paths import check_run_name

        check_run_name(self.name, "run.name")


@dataclass(kw_only=True, slots=True)
class DataConfig:
    """Training data: an HDF5 file of the model's kind (CaloGAN showers or LAGAN jet images)."""

    path: str = _f("", help="HDF5 training file (CaloGAN or LAGAN format)")
    particle: str = _f("eplus", help="particle of a shower file (eplus, gamma, piplus) or 'jets'")
    val_fraction: float = _f(0.1, lo=0.0, hi=0.9, help="fraction held out for validation (seeded split)")
    max_events: int = _f(0, lo=0, help="use at most this many events (0 = all)")
    in_memory: bool = _f(True, help="load the whole file into RAM instead of lazy per-worker reads")
    loader_workers: int = _f(0, lo=0, hi=64, help="DataLoader worker processes per training worker")


@dataclass(kw_only=True, slots=True)
class ModelConfig:
    """Generator / critic architecture, chosen from the model registry by name (`gansim config --list`)."""

    name: str = _f("calogan", help="registered model (calogan, lagan, calo-mlp; gansim.models.registry)")
    latent_dim: int = _f(1024, lo=1, hi=65536, help="latent vector size")
    attention: bool = _f(True, help="calogan: layer-to-layer in-painting attention")
    gen_channels: int = _f(64, lo=1, hi=4096, help="generator width (calogan/lagan base channels; calo-mlp units)")
    disc_channels: int = _f(64, lo=1, hi=4096, help="critic width (calogan/lagan base channels; calo-mlp units)")
    gen_layers: int = _f(3, lo=1, hi=16, help="calo-mlp: hidden layers of the generator")
    disc_layers: int = _f(3, lo=1, hi=16, help="calo-mlp: hidden layers of the critic")
    shift: bool = _f(False, help="calo-mlp: one transverse shower offset per event shared by all layers")
    quantiles: bool = _f(False, help="calo-mlp: event variables from the data's quantile functions, not Gaussians")
    hits: bool = _f(False, help="calo-mlp: draw which cells are lit (P(lit | E) per cell) before sharing energy")
    minibatch_kernels: int = _f(10, lo=0, hi=1024, help="minibatch-discrimination kernels (0 = off)")
    minibatch_dim: int = _f(10, lo=1, hi=1024, help="minibatch-discrimination kernel dimension")
    batchnorm: Switch = _f("auto", help="BatchNorm in the critic: auto = on, except off for wgan-gp (BatchNorm "
                                        "couples the samples of a batch, which breaks the per-sample penalty)")
    disc_dropout: float = _f(-1.0, lo=-1.0, hi=0.9, help="lagan critic dropout; -1 = auto: 0.2, or 0 for wgan-gp")

    def __post_init__(self) -> None:
        from gansim.models.names import MODEL_NAMES

        if self.name not in MODEL_NAMES:
            raise ConfigError(f"model.name: {self.name!r} is not one of {', '.join(MODEL_NAMES)}")
        if -1.0 < self.disc_dropout < 0.0:
            raise ConfigError(f"model.disc_dropout: {self.disc_dropout} is neither -1 (auto) nor in [0, 0.9]")

    def critic_batchnorm(self, loss: str) -> bool:
        """Whether the critic uses BatchNorm (resolves batchnorm=auto)."""
        return self.batchnorm == "on" or (self.batchnorm == "auto" and loss != "wgan-gp")

    def critic_dropout(self, loss: str) -> float:
        """The critic's dropout rate (resolves disc_dropout=-1)."""
        return self.disc_dropout if self.disc_dropout >= 0 else (0.0 if loss == "wgan-gp" else 0.2)


@dataclass(kw_only=True, slots=True)
class LossConfig:
    """Adversarial loss choice and auxiliary terms."""

    name: Loss = _f("non-saturating", help="adversarial loss")
    gp_weight: float = _f(10.0, lo=0.0, help="gradient-penalty weight (wgan-gp)")
    lambda_e: float = _f(0.05, lo=0.0, help="weight of the auxiliary total-energy loss (CaloGAN: 0.05)")
    lambda_class: float = _f(1.0, lo=0.0, help="weight of the auxiliary class loss (LAGAN)")


@dataclass(kw_only=True, slots=True)
class TrainConfig:
    """Optimisation, distribution and checkpointing."""

    epochs: int = _f(50, lo=1, hi=10**7, help="training epochs")
    batch_size: int = _f(256, lo=1, hi=2**20, help="per-worker batch size (global = batch_size x workers)")
    lr_g: float = _f(2e-4, lo=0.0, hi=1.0, help="generator learning rate")
    lr_d: float = _f(2e-5, lo=0.0, hi=1.0, help="discriminator learning rate")
    beta1: float = _f(0.5, lo=0.0, hi=0.9999, help="Adam beta1")
    beta2: float = _f(0.999, lo=0.0, hi=0.99999, help="Adam beta2")
    n_critic: int = _f(1, lo=1, hi=100, help="discriminator steps per generator step")
    critic_warmup: int = _f(0, lo=0, hi=10**7, help="the first N steps train the critic only (a generator that "
                            "starts good, e.g. calo-mlp, is not pushed around by an untrained critic)")
    lr_schedule: Literal["constant", "linear", "cosine"] = _f(
        "constant", help="learning-rate schedule over all planned steps (epochs x steps per epoch), to lr x lr_final")
    lr_final: float = _f(0.0, lo=0.0, hi=1.0, help="final learning rate as a fraction of lr_g / lr_d (schedules)")
    ema_decay: float = _f(0.0, lo=0.0, hi=0.99999, help="EMA decay of G weights for eval/export (0 = off)")
    workers: int = _f(1, lo=1, hi=100_000, help="Ray Train workers (DDP ranks)")
    gpus_per_worker: float = _f(0.0, lo=0.0, hi=64.0, help="GPUs per worker (0 = CPU, gloo)")
    cpus_per_worker: float = _f(1.0, lo=0.0, hi=4096.0, help="logical CPUs reserved per worker")
    steps_per_epoch: int = _f(0, lo=0, help="cap on optimiser steps per epoch (0 = full pass)")
    checkpoint_every: int = _f(1, lo=1, help="checkpoint every N epochs")
    num_to_keep: int = _f(3, lo=1, help="checkpoints kept")
    max_failures: int = _f(2, lo=-1, help="automatic restarts after a worker dies (-1 = unlimited)")
    max_nonfinite: int = _f(20, lo=1, help="consecutive non-finite steps before the run is stopped")
    val_events: int = _f(2000, lo=0, hi=10**7, help="validation events for per-epoch physics checks")
    log_every: int = _f(20, lo=1, help="TensorBoard scalar logging interval (steps); also the host-sync interval")


@dataclass(kw_only=True, slots=True)
class EvalConfig:
    """`gansim evaluate` (and the report written by benchmarks): sample sizes, classifier, seeds."""

    events: int = _f(0, lo=0, hi=10**8, help="with a generator: events to generate (0 = as many as the reference)")
    max_events: int = _f(0, lo=0, help="use at most the first N events of each file (0 = all)")
    seed: int = _f(0, lo=0, hi=2**63 - 1, help=f"seed of generation, splits and the classifiers {SEED_HELP}")
    classifier: bool = _f(True, help="run the two-sample classifier tests")
    classifier_epochs: int = _f(30, lo=1, hi=10_000, help="most epochs per DNN classifier (early stopping)")
    classifier_patience: int = _f(5, lo=1, hi=1000, help="epochs without validation improvement before stopping")
    boosted_trees: bool = _f(True, help="also run a gradient-boosted-trees classifier on the high-level features")
    energy_bins: int = _f(8, lo=1, hi=100, help="log-spaced incident-energy bins of response/resolution")
    device: str = _f("cpu", help="device for generation (cpu, cuda, cuda:N)")


@dataclass(kw_only=True, slots=True)
class ProduceConfig:
    """`gansim produce`: what to make and how it is stored (the bytes are a function of these)."""

    generator: str = _f("", help="generator artefact (gansim export) or a shipped name (eplus, gamma, ...)")
    out: str = _f("", help="output directory")
    events: int = _f(0, lo=0, hi=MAX_EVENTS, help="number of events (0 = must be given)")
    seed: int = _f(0, lo=0, hi=2**63 - 1, help=f"production seed; chunk k uses (seed, k) {SEED_HELP}")
    energy: str = _f("", help="calo: incident energies uniform:A,B | log-uniform:A,B | fixed:E (GeV; default: "
                              "the generator's training range)")
    energy_file: str = _f("", help="calo: resample incident energies from an HDF5/.npy/text file (GeV)")
    signal_fraction: float = _f(-1.0, lo=-1.0, hi=1.0, help="jets: probability of label 1 (-1 = default 0.5)")
    chunk_size: int = _f(0, lo=0, hi=10**9, help="events per chunk = per commit and per chunk file (0 = auto: "
                                                 "~2 GB files from the measured bytes/event)")
    batch_size: int = _f(1024, lo=1, hi=2**20, help="events per generator forward pass (part of the plan: "
                                                    "changing it changes the bytes)")
    threads: int = _f(0, lo=0, hi=1024, help="generation + compression threads per rank (0 = OMP_NUM_THREADS or "
                                             "this rank's share of the cores); never changes the bytes")
    precision: str = _f("lossless", help="lossless | bits:M (M mantissa bits, relative error <= 2^-(M+1)) | "
                                         "quantum:Q (cells rounded to a power-of-two quantum <= Q, file units)")
    layout: Literal["shards", "single"] = _f("shards", help="shards: chunk files in fan-out directories + "
                                                            "dataset.h5 index; single: one file with parallel HDF5")
    dtype: Literal["float32", "float16"] = _f("float32", help="on-disk type of cells / pixels")
    compression: Literal["gzip", "lzf", "zstd", "blosc-lz4", "none"] = _f("gzip", help="HDF5 filter (with byte "
                                                                                      "shuffle); zstd is smallest")
    device: str = _f("cpu", help="cpu, cuda, or auto (cuda when the rank sees a GPU)")
    amp: bool = _f(False, help="autocast inference (float16 on GPU, bfloat16 on CPU)")
    compile: bool = _f(False, help="torch.compile the generator (GPU, long runs)")
    overlap: bool = _f(True, help="write chunks in a background thread while the next is generated")
    target_file_gb: float = _f(2.0, lo=1e-6, hi=1000.0, help="chunk-file size that chunk_size=0 aims at (GB)")
    files_per_dir: int = _f(1000, lo=1, hi=100_000, help="chunk files per subdirectory of chunks/ (and per VDS "
                                                         "index)")


@dataclass(kw_only=True, slots=True)
class TuneConfig:
    """`gansim tune`: trials, their resources, the scheduler, the Optuna sampler and where the study lives.

    A search-space file's `tune:` section overrides these keys for its study; command-line flags override both.
    """

    trials: int = _f(200, lo=1, hi=10**6, help="number of trials")
    workers_per_trial: int = _f(1, lo=1, hi=10_000, help="Ray Train workers (DDP ranks) per trial")
    gpus_per_trial: float = _f(0.0, lo=0.0, hi=1024.0, help="GPUs per trial, shared by its workers")
    max_concurrent: int = _f(0, lo=0, hi=100_000, help="trials run at once (0 = as many as the cluster holds)")
    seed: int = _f(0, lo=0, hi=2**32 - 1, help="TPE sampler seed (0 <= seed < 2^32: Optuna seeds a numpy "
                                                "RandomState)")
    scheduler: Literal["asha", "none"] = _f("asha", help="asha: stop weak trials early on the per-epoch score")
    grace_period: int = _f(1, lo=1, hi=10**6, help="epochs every trial gets before ASHA may stop it")
    reduction_factor: float = _f(3.0, lo=1.0, hi=1000.0, help="ASHA keeps the best 1/reduction_factor (> 1)")
    n_startup_trials: int = _f(10, lo=0, hi=10**6, help="random trials before TPE models the results")
    study_name: str = _f("", help="Optuna study name ('' = run.name)")
    out: str = _f("", help="study directory ('' = runs/tune/<run.name>); the same out resumes the study")
    storage: str = _f("", help="Optuna storage: an RDB URL (sqlite:///study.db, postgresql://...) or a journal "
                               "file ('' = <out>/optuna-journal.log)")

    def __post_init__(self) -> None:
        if self.reduction_factor <= 1.0:
            raise ConfigError(f"tune.reduction_factor must be above 1, got {self.reduction_factor:g}")


@dataclass(kw_only=True, slots=True)
class Config:
    """The whole description of a run; saved next to every output and inside every checkpoint and artefact."""

    run: RunConfig = field(default_factory=RunConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    produce: ProduceConfig = field(default_factory=ProduceConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)

    def __post_init__(self) -> None:
        from gansim.kinds import get_kind
        from gansim.models.names import MODEL_KINDS

        kind = get_kind(MODEL_KINDS[self.model.name])
        if self.data.particle not in kind.particles:
            raise ConfigError(f"data.particle: {self.data.particle!r} is not a {kind.title} particle for "
                              f"model.name={self.model.name} (choose {', '.join(kind.particles)})")
        if self.loss.name == "wgan-gp" and self.model.batchnorm == "on":
            raise ConfigError("model.batchnorm: 'on' cannot be combined with loss.name=wgan-gp (BatchNorm couples "
                              "samples and breaks the per-sample gradient penalty); use auto or off")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """Short stable hash of the model-defining sections (provenance attribute)."""
        d = self.to_dict()
        blob = json.dumps({k: d[k] for k in ("run", "data", "model", "loss", "train")}, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def save(self, path: str | Path) -> Path:
        """Write the resolved config as YAML (re-loadable by load_config)."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False))
        return path


def check_replaceable(path: Path) -> None:
    """ConfigError unless `path` is absent or a resolved config (a run's earlier config.yaml): a run never
    overwrites a config file of the user's that happens to sit where it writes its own."""
    if path.exists() and not is_resolved_config(path):
        raise ConfigError(f"{path} exists and is not a config gansim wrote (it has comments or lacks sections); "
                          "the run would overwrite it: move it, or choose another --out")


def is_resolved_config(path: Path) -> bool:
    """True for a file Config.save wrote: every section present, no comments (a hand-written config has either)."""
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    sections = [f.name for f in dataclasses.fields(Config)]
    return (isinstance(data, dict) and all(isinstance(data.get(s), dict) for s in sections)
            and not any(line.lstrip().startswith("#") for line in text.splitlines()))

_FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_value(key: str, value: Any, tp: Any, meta: dict[str, Any]) -> Any:
    """Coerce and validate one leaf value; raise ConfigError naming key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(tp)) != 2:
            raise ConfigError(f"{key}: only 'X | None' unions are supported in the config tree")
        return None if value is None else _check_value(key, value, args[0], meta)
    if origin in (list, dict):
        if not isinstance(value, origin):
            raise ConfigError(f"{key}: expected a {'list' if origin is list else 'mapping'}, got {value!r}")
        return value
    if origin is Literal:
        choices = typing.get_args(tp)
        if isinstance(value, bool) and "on" in choices:
            value = "on" if value else "off"  # YAML 1.1 reads on/off/true/false as booleans
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}")
    elif tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
                value = int(value)
            else:
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
    elif tp is float:
        if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{key}: must be finite, got {value!r}")
    elif tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and value < lo:
        raise ConfigError(f"{key}: {value!r} is below the minimum {lo}")
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: {value!r} is above the maximum {hi}")
    return value


def build_section(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass cls from a mapping, rejecting unknown keys and bad values; fields without a default are
    required. Also builds the tune search space's parameters (gansim.tune.space.Param)."""
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
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                where = f"{prefix}: " if prefix else ""
                raise ConfigError(f"{where}missing required key '{name}' ({f.metadata.get('help', '')})")
            continue
        key = f"{prefix}.{name}" if prefix else name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build_section(tp, data[name], key)
        else:
            kwargs[name] = _check_value(key, data[name], tp, dict(f.metadata))
    try:
        return cls(**kwargs)
    except GansimError as exc:  # a section's own cross-field rule; name the section unless the message does
        text = str(exc)
        if prefix and not text.startswith(prefix):
            text = f"{prefix}: {text}"
        if isinstance(exc, ConfigError) and text == str(exc):
            raise
        raise ConfigError(text) from None


def validate_section(obj: Any, prefix: str = "") -> Any:
    """Check every leaf of a section built in code (ConfigError naming the key); returns obj."""
    _validate_defaults(obj, prefix)
    return obj


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


def leaf_type(key: str) -> Any:
    """The declared type of a dotted config key (ConfigError for an unknown key)."""
    cls: Any = Config
    parts = key.split(".")
    for i, part in enumerate(parts):
        hints = _hints(cls) if dataclasses.is_dataclass(cls) else {}
        if part not in hints:
            where = ".".join(parts[:i]) or "config"
            known = ", ".join(hints) if hints else "none: it is not a section"
            raise ConfigError(f"unknown key {key} ({where} has keys: {known})")
        cls = hints[part]
    if dataclasses.is_dataclass(cls):
        raise ConfigError(f"{key} is a section; set one of its keys, e.g. {key}.{dataclasses.fields(cls)[0].name}")
    return cls


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse 'a.b=value'. String keys take the text verbatim (paths keep '#', '007' stays '007'); other types
    read the text as YAML (1e-4, true, [1, 2]) and the config validates it."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. train.lr_g=1e-4")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"override {item!r}: empty key")
    tp = leaf_type(key)
    if tp is str or (typing.get_origin(tp) is Literal and all(isinstance(c, str) for c in typing.get_args(tp))
                     and raw.strip().lower() not in ("true", "false", "yes", "no")):
        return key.split("."), raw
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads '1e-4' as a string; accept it as a number.
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


MAX_NODES = 100_000  # no real config comes near this; a YAML alias bomb expands far beyond it


def check_size(data: Any, where: str) -> None:
    """Refuse structures that expand to more than MAX_NODES values (YAML alias bombs) before anything copies them."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(f"{where}: more than {MAX_NODES:,} values once YAML aliases are expanded "
                              "(an alias bomb?); write the config out without nested aliases")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Load a YAML mapping with safe_load; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    except RecursionError:  # the YAML parser recurses per nesting level: [[[[...]]]] exhausts the stack
        raise ConfigError(f"{path}: nested too deeply to be a config") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    check_size(data, str(path))
    return data


def config_from_dict(data: dict[str, Any], overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Build a validated Config from a nested dict plus dotted overrides."""
    check_size(data, "config")
    data = json.loads(json.dumps(data))  # deep copy, plain types only
    for item in overrides:
        path, value = parse_override(item)
        set_dotted(data, ".".join(path), value)
    cfg = build_section(Config, data, "")
    _validate_defaults(cfg)
    return cfg


def resolve_config_path(name: str | Path) -> Path:
    """A config file path, or the name of a config shipped with gansim ('calogan-eplus', 'tune/calogan')."""
    path = Path(name)
    if path.is_file():
        return path
    from gansim.paths import shipped_config

    found = shipped_config(str(name))
    if found is None:
        raise ConfigError(f"config file not found: {name} (neither a file nor a shipped config; "
                          "`gansim config --shipped` lists those)")
    return found


def load_config(path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Load a YAML config (path or shipped name; defaults when None) and apply KEY=VALUE overrides."""
    data = read_yaml(resolve_config_path(path)) if path else {}
    return config_from_dict(data, overrides)


def describe_fields() -> list[tuple[str, Any, str]]:
    """(dotted key, default, help incl. choices and range) for every leaf; used by `gansim config --list`."""
    rows: list[tuple[str, Any, str]] = []

    def walk(obj: Any, prefix: str) -> None:
        hints = _hints(type(obj))
        for f in dataclasses.fields(obj):
            val = getattr(obj, f.name)
            key = f"{prefix}.{f.name}" if prefix else f.name
            if dataclasses.is_dataclass(val):
                walk(val, key)
                continue
            text = f.metadata.get("help", "")
            if typing.get_origin(hints[f.name]) is Literal:
                text += f" [{' | '.join(map(str, typing.get_args(hints[f.name])))}]"
            lo, hi = f.metadata.get("lo"), f.metadata.get("hi")
            if lo is not None or hi is not None:
                text += f" [{'' if lo is None else lo} .. {'' if hi is None else hi}]"
            rows.append((key, val, text))

    walk(Config(), "")
    return rows
