"""Driver side of training: start or join Ray, build the TorchTrainer, resume or start fresh, explain failures."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from gansim.config import Config, check_replaceable, config_from_dict
from gansim.errors import GansimError
from gansim.train.checkpoint import CKPT_PREFIX, STATE_FILE, check_resumable, latest_checkpoint, load_state

LOCAL_OBJECT_STORE_BYTES = 128 * 1024**2  # training moves no data through the object store


def resolve_paths(cfg: Config) -> Config:
    """Absolute data.path and run.out_dir: Ray workers do not share the driver's working directory."""
    data = cfg.to_dict()
    if data["data"]["path"]:
        data["data"]["path"] = str(Path(data["data"]["path"]).expanduser().resolve())
    data["run"]["out_dir"] = str(Path(data["run"]["out_dir"]).expanduser().resolve())
    return config_from_dict(data)


def check_inputs(cfg: Config) -> int:
    """Fail before starting Ray when the data file is missing or does not match the model; returns n_events."""
    from gansim.data.schema import SchemaError, validate
    from gansim.models.registry import model_kind

    if not cfg.data.path:
        raise GansimError("data.path is empty: pass --data FILE or set data.path in the config")
    if not Path(cfg.data.path).is_file():
        raise GansimError(f"training data not found: {cfg.data.path} (make it with `gansim simulate`, "
                          "or pass --data FILE)")
    try:
        # scan=True: NaN/inf or negative values are refused here, before a run that would skip every step
        summary = validate(cfg.data.path, scan=True)
    except SchemaError as exc:
        raise GansimError(f"training data rejected: {exc}") from None
    kind = model_kind(cfg)
    if summary.format != kind.name:
        raise GansimError(f"{cfg.data.path} holds {summary.format} data but model.name={cfg.model.name} "
                          f"trains on {kind.name} data")
    n = summary.n_events if cfg.data.max_events <= 0 else min(summary.n_events, cfg.data.max_events)
    n_train = n - int(round(n * cfg.data.val_fraction))
    need = cfg.train.batch_size * cfg.train.workers * cfg.train.n_critic
    if n_train < need:
        raise GansimError(f"{cfg.data.path}: {n_train} training events, fewer than one iteration needs "
                          f"(train.batch_size {cfg.train.batch_size} x workers {cfg.train.workers} x "
                          f"n_critic {cfg.train.n_critic} = {need})")
    return n


def ensure_ray(num_cpus_needed: float, num_gpus_needed: float, verbose: bool = True) -> None:
    """Join RAY_ADDRESS when set (a cluster started by slurm/train.sh), else start a small local Ray. Either way
    workers' output stays in Ray's log files and Ray's driver-side logging is gansim's (gansim.compat)."""
    import ray

    from gansim.compat import ray_init, worker_logs_to_driver

    if ray.is_initialized():
        return
    quiet = {"log_to_driver": worker_logs_to_driver()}
    address = os.environ.get("RAY_ADDRESS")
    if address:
        if verbose:
            print(f"gansim train: joining Ray cluster at {address}", flush=True)
        ray_init(address=address, **quiet)
        return
    cpus = max(float(os.cpu_count() or 1), num_cpus_needed)
    kwargs: dict[str, Any] = {}
    if num_gpus_needed == 0:
        kwargs["num_gpus"] = 0
    # address="local": always a new instance of our own, even when another user's `ray start` on this node left
    # its address in <ray temp dir>/ray_current_cluster (ray.init() would join that one).
    ray_init(address="local", num_cpus=int(-(-cpus // 1)), object_store_memory=LOCAL_OBJECT_STORE_BYTES,
             include_dashboard=False, _node_ip_address="127.0.0.1", **quiet, **kwargs)


def _check_resources(cfg: Config) -> None:
    import ray

    total = ray.cluster_resources()
    need_cpu = cfg.train.workers * cfg.train.cpus_per_worker
    need_gpu = cfg.train.workers * cfg.train.gpus_per_worker
    if need_gpu > total.get("GPU", 0):
        raise GansimError(f"{cfg.train.workers} workers x {cfg.train.gpus_per_worker} GPUs need {need_gpu:g} GPUs; "
                          f"the Ray cluster has {total.get('GPU', 0):g}")
    if need_cpu > total.get("CPU", 0):
        raise GansimError(f"{cfg.train.workers} workers x {cfg.train.cpus_per_worker} CPUs need {need_cpu:g} CPUs; "
                          f"the Ray cluster has {total.get('CPU', 0):g} (lower train.cpus_per_worker)")


# What a training run writes into <out>/<run.name>/: gansim's checkpoint directories (checkpoint_name: epoch with
# at least 6 digits) and Ray Train's run-state files. --fresh removes these and nothing else, so a run directory
# that holds user files (even one named checkpoint_epoch_notes.txt) keeps them.
CHECKPOINT_DIR = re.compile(rf"{CKPT_PREFIX}[0-9]{{6,}}")
RAY_RUN_FILES = ("checkpoint_manager_snapshot.json", ".validate_storage_marker")


def remove_training_outputs(exp: Path) -> int:
    """Delete what training wrote in exp (checkpoint directories, Ray's run files); returns the entries removed."""
    n = 0
    for p in sorted(exp.iterdir()) if exp.is_dir() else ():
        if p.is_dir() and not p.is_symlink() and CHECKPOINT_DIR.fullmatch(p.name):
            shutil.rmtree(p)
        elif p.name in RAY_RUN_FILES and p.is_file():
            p.unlink()
        else:
            continue
        n += 1
    with contextlib.suppress(OSError):
        exp.rmdir()  # only when nothing else is left
    return n


def experiment_dir(cfg: Config, storage_path: str | None) -> Path:
    return Path(storage_path or cfg.run.out_dir).expanduser().resolve() / cfg.run.name


def _previous(cfg: Config, exp: Path) -> dict[str, Any] | None:
    ckpt = latest_checkpoint(exp)
    if ckpt is None:
        return None
    state = load_state(ckpt / STATE_FILE)
    check_resumable(cfg, state)
    return state


def fit(cfg: Config, *, resume: bool = True, storage_path: str | None = None, callbacks: list[Any] | None = None,
        verbose: bool = True) -> Any:
    """Train cfg with ray.train.torch.TorchTrainer; returns the ray.train.Result.

    Checkpoints go to <storage_path or run.out_dir>/<run.name>/checkpoint_epoch_NNNNNN/state.pt. With resume=True
    the same call continues from the latest checkpoint there (Ray Train restores it); resume=False deletes that
    run's checkpoints first. Raises GansimError when the run diverges or fails beyond train.max_failures.
    """
    cfg = resolve_paths(cfg)
    check_inputs(cfg)
    out = Path(cfg.run.out_dir)
    if out.exists() and not out.is_dir():
        raise GansimError(f"run.out_dir (--out) {out} is a file, not a directory")
    check_replaceable(out / "config.yaml")  # before --fresh removes anything
    exp = experiment_dir(cfg, storage_path)
    if not resume and exp.exists():
        removed = remove_training_outputs(exp)
        if verbose and removed:
            print(f"gansim train: --fresh: removed {removed} previous checkpoint entries in {exp}", flush=True)
    previous = _previous(cfg, exp) if resume else None
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out / "config.yaml")
    if verbose:
        _announce(cfg, out, exp, previous)
    t = cfg.train
    ensure_ray(t.workers * t.cpus_per_worker, t.workers * t.gpus_per_worker, verbose)
    _check_resources(cfg)
    try:
        with _console(verbose) as relay:
            result = _torch_trainer(cfg, out, exp, callbacks, relay).fit()
    except Exception as exc:  # TrainingFailedError after max_failures restarts, or a controller error
        raise GansimError(f"training failed: {_first_line(exc)} (checkpoints in {exp}{_logs_hint()})") from None
    metrics = _outcome(cfg, result, exp)
    if verbose:
        from gansim.progress import finish

        fid = metrics.get("fidelity")
        finish("train", f"epoch {metrics.get('epoch')}, step {metrics.get('step')}, fidelity "
                        f"{fid if fid is None else f'{fid:.4g}'}; latest checkpoint {latest_checkpoint(exp)}",
               f"gansim export {exp} --out {out / 'generator.pt'}")
    return result


def _console(verbose: bool) -> Any:
    """Where rank 0's progress bar and epoch lines are drawn: here (a ConsoleRelay), or nowhere (tune trials)."""
    from gansim.progress import ConsoleRelay

    return ConsoleRelay() if verbose else contextlib.nullcontext()


def _logs_hint() -> str:
    from gansim.compat import ray_log_dir

    where = ray_log_dir()
    return f"; Ray's worker logs in {where}" if where else ""


def _announce(cfg: Config, out: Path, exp: Path, previous: dict[str, Any] | None) -> None:
    from gansim.models.registry import describe

    t = cfg.train
    print(f"gansim train: {describe(cfg)}", flush=True)
    print(f"gansim train: {t.workers} worker(s) x batch {t.batch_size} = global batch "
          f"{t.workers * t.batch_size}; {'NCCL on GPU' if t.gpus_per_worker > 0 else 'gloo on CPU'}; "
          f"lr_g {t.lr_g:g}, lr_d {t.lr_d:g}, n_critic {t.n_critic}, epochs {t.epochs}", flush=True)
    print(f"gansim train: outputs in {out} (TensorBoard: tensorboard --logdir {out / 'tb'}); "
          f"checkpoints in {exp}", flush=True)
    if previous is not None:
        print(f"gansim train: found checkpoint at epoch {previous['epoch']} (step {previous['step']}); "
              "continuing (use --fresh to start over)", flush=True)


def _torch_trainer(cfg: Config, out: Path, exp: Path, callbacks: list[Any] | None, relay: Any) -> Any:
    """The Ray Train TorchTrainer: t.workers DDP workers (gloo on CPU, NCCL on GPU) running the loop."""
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    from gansim.train.loop import train_loop_per_worker

    t = cfg.train
    use_gpu = t.gpus_per_worker > 0
    resources = {"CPU": t.cpus_per_worker, **({"GPU": t.gpus_per_worker} if use_gpu else {})}
    return TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"cfg": cfg.to_dict(), "out_dir": str(out),
                           "progress_relay": relay.queue if relay is not None else None},
        scaling_config=ray.train.ScalingConfig(num_workers=t.workers, use_gpu=use_gpu,
                                               resources_per_worker=resources),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=ray.train.RunConfig(
            name=cfg.run.name, storage_path=str(exp.parent),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=t.num_to_keep),
            failure_config=ray.train.FailureConfig(max_failures=t.max_failures),
            callbacks=list(callbacks or []),
            logging_config=ray.train.LoggingConfig(log_level="WARNING"),
        ),
    )


def _outcome(cfg: Config, result: Any, exp: Path) -> dict[str, Any]:
    """The run's final metrics; GansimError when it failed or diverged."""
    if result.error is not None:
        raise GansimError(f"training failed: {_first_line(result.error)}{_logs_hint()}")
    metrics = result.metrics or {}
    # Ray Train V2's Result.metrics belong to the latest *checkpoint*; the loop's diverged report carries none,
    # so rank 0's return value (the loop summary) is the reliable divergence signal.
    summary = getattr(result, "return_value", None)
    if isinstance(summary, dict) and summary.get("diverged"):
        metrics = {**metrics, **summary}
    if metrics.get("diverged"):
        last = latest_checkpoint(exp)
        raise GansimError(
            f"training diverged: {cfg.train.max_nonfinite} consecutive non-finite steps at step "
            f"{int(metrics.get('step', 0))} (epoch {int(metrics.get('epoch', 0)) + 1}); no checkpoint was written "
            f"for it. Last good checkpoint: {last or 'none'}. Lower train.lr_g / train.lr_d or check the data.")
    return metrics


def _first_line(exc: BaseException) -> str:
    # Ray wraps worker exceptions; the user-facing cause is the innermost message.
    inner: BaseException = exc
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(inner).strip() or inner.__class__.__name__
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else text
