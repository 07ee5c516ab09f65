"""A study: Ray Tune experiment (OptunaSearch/TPE + ASHA) over trial drivers, resumable, mirrored in Optuna storage.

Output directory layout (``--out``)::

    tune.json            what the study was started with (a re-run with other inputs is refused)
    optuna-journal.log   Optuna JournalStorage of the study (unless --storage names an RDB URL or another file)
    ray/study/           the Tune experiment (Tuner.restore resumes it); ray/study/<trial>/train = Ray Train run
    results.csv/.md      the results table; best.yaml the winning config; plots/*.png

The searcher's Optuna study is created directly in that storage (OptunaSearch takes ``storage=``), so
optuna-dashboard and plain Optuna read the live study; nothing is mirrored after the fact.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gansim.config import Config
from gansim.errors import GansimError, brief
from gansim.tune.driver import METRIC
from gansim.tune.space import SearchSpace

EXPERIMENT = "study"
TIME_ATTR = "epoch"  # reported by the loop; unlike training_iteration it survives a resumed trial
JOURNAL = "optuna-journal.log"
STATE_FILE = "tune.json"
DRIVER_MEMORY = 64 * 1024**2  # bytes of Ray's logical "memory" resource per trial driver


@dataclass
class TuneOptions:
    trials: int
    out: Path
    workers_per_trial: int = 1
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    storage: str | None = None
    seed: int = 0
    progress: bool = True


@dataclass
class StudyOutcome:
    out: Path
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    best_config: Path | None
    resumed: bool
    wall_s: float
    study_name: str
    storage: str
    files: dict[str, Path] = field(default_factory=dict)


def make_storage(spec: str | None, out: Path) -> tuple[Any, str]:
    """Optuna storage: an RDB URL (contains '://'), else a JournalStorage file (default out/optuna-journal.log)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    if spec and "://" in spec:
        try:
            return optuna.storages.RDBStorage(spec), spec
        except Exception as exc:  # bad URL, missing DB driver, unreachable server
            raise GansimError(f"--storage {spec}: cannot open the Optuna RDB storage ({exc})") from None
    path = Path(spec).expanduser().resolve() if spec else (out / JOURNAL).resolve()
    if path.is_dir():
        raise GansimError(f"--storage {spec}: is a directory; give a journal file path or an RDB URL")
    _check_journal(path, spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return JournalStorage(JournalFileBackend(str(path))), str(path)
    except (UnicodeDecodeError, ValueError) as exc:  # a journal damaged after its first line
        raise GansimError(f"--storage {spec or path}: damaged Optuna journal ({brief(exc)})") from None


def _check_journal(path: Path, spec: str | None) -> None:
    """An existing journal file must be one (JSON lines with op codes): Optuna would append to anything else,
    e.g. a SQLite database given without sqlite:///, and corrupt it."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    if first.startswith(b"SQLite format 3\x00"):
        raise GansimError(f"--storage {spec}: is an SQLite database; use --storage sqlite:///{path}")
    try:
        record = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        record = None
    if not isinstance(record, dict) or "op_code" not in record:
        raise GansimError(f"--storage {spec}: exists and is not an Optuna journal file; give a new file name, "
                          "the journal of an earlier study, or an RDB URL")


def default_concurrency(resources: dict[str, float], workers: int, cpus_per_worker: float, gpus_per_trial: float,
                        trials: int) -> int:
    """How many trials fit side by side: cluster CPUs / (workers × cpus_per_worker), and GPUs / gpus_per_trial."""
    limits = []
    need_cpu = workers * cpus_per_worker
    if need_cpu > 0:
        limits.append(math.floor(resources.get("CPU", 0.0) / need_cpu + 1e-9))
    if gpus_per_trial > 0:
        limits.append(math.floor(resources.get("GPU", 0.0) / gpus_per_trial + 1e-9))
    n = min(limits) if limits else trials
    if n < 1:
        raise GansimError(f"the Ray cluster ({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs) "
                          f"cannot hold one trial ({workers} workers x {cpus_per_worker:g} CPUs, "
                          f"{gpus_per_trial:g} GPUs)")
    return max(1, min(n, trials))


def _searcher_class() -> type:
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from gansim.compat import completed_trials, optuna_study, optuna_trial

    class GansimOptunaSearch(OptunaSearch):
        """OptunaSearch that records ASHA-stopped trials as PRUNED (not COMPLETE with an early score), reports
        intermediate values per epoch, and tags each Optuna trial with its Tune trial id."""

        def __init__(self, *args: Any, max_t: int, **kwargs: Any) -> None:
            self._max_t = max_t
            super().__init__(*args, **kwargs)

        def suggest(self, trial_id: str) -> dict | None:
            params = super().suggest(trial_id)
            ot_trial = optuna_trial(self, trial_id)
            if ot_trial is not None:
                ot_trial.set_user_attr("tune_trial_id", trial_id)
            return params

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            value, step = result.get(self.metric), result.get(TIME_ATTR)
            if trial_id in completed_trials(self) or value is None or step is None:
                return
            optuna_trial(self, trial_id).report(float(value), int(step))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if (not error and result and trial_id not in completed_trials(self)
                    and result.get(self.metric) is not None and int(result.get(TIME_ATTR, self._max_t)) < self._max_t):
                optuna_study(self).tell(optuna_trial(self, trial_id), state=optuna.trial.TrialState.PRUNED)
                completed_trials(self).add(trial_id)
                return
            super().on_trial_complete(trial_id, result=result, error=error)

    return GansimOptunaSearch


def _ensure_ray() -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or None
    # A SLURM allocation exports RAY_ADDRESS (slurm/tune.sh); on a laptop this starts a local cluster.
    ray.init(address=address, include_dashboard=False, configure_logging=False,
             log_to_driver=os.environ.get("GANSIM_TUNE_WORKER_LOGS", "0") == "1")


def _state(base: Config, space: SearchSpace, opts: TuneOptions, study_name: str, storage: str) -> dict[str, Any]:
    return {"trials": opts.trials, "seed": opts.seed, "workers_per_trial": opts.workers_per_trial,
            "config_hash": base.hash(), "space": json.loads(space.fingerprint()), "study_name": study_name,
            "storage": storage}


def _check_same_study(path: Path, want: dict[str, Any]) -> None:
    try:
        have = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for key, label in (("config_hash", "run config (--config/--set/--epochs)"), ("space", "search space"),
                       ("trials", "--trials"), ("seed", "--seed"), ("workers_per_trial", "--workers-per-trial"),
                       ("study_name", "study name"), ("storage", "--storage")):
        if key in have and have[key] != want[key]:
            shown = "" if key in ("space", "config_hash") else f" ({have[key]!r} then, {want[key]!r} now)"
            raise GansimError(f"{path.parent} holds a study started with a different {label}{shown}; re-run the "
                              "same command to resume it, or choose a new --out")


def run_study(base: Config, space: SearchSpace, opts: TuneOptions) -> StudyOutcome:
    """Run (or resume) the study and write the table, best config and plots under opts.out."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from gansim.train.launch import resolve_paths
    from gansim.tune.driver import trial_driver
    from gansim.tune.progress import StudyProgress
    from gansim.tune.reaper import PlacementGroupReaper
    from gansim.tune.report import error_text, write_reports

    t0 = time.perf_counter()
    out = opts.out.expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    exp_path = out / "ray" / EXPERIMENT
    study_name = space.study_name or base.run.name
    storage, storage_desc = make_storage(opts.storage, out)
    state = _state(base, space, opts, study_name, storage_desc)
    state_path = out / STATE_FILE
    _check_same_study(state_path, state)

    _ensure_ray()
    workers = opts.workers_per_trial
    max_conc = opts.max_concurrent or default_concurrency(ray.cluster_resources(), workers,
                                                          base.train.cpus_per_worker, opts.gpus_per_trial, opts.trials)
    # Trials run with the working directory set to their trial dir: hand them absolute paths.
    trainable = tune.with_parameters(trial_driver, space=space, base=resolve_paths(base).to_dict(),
                                     workers=workers, gpus_per_trial=opts.gpus_per_trial)
    # The driver only waits on its TorchTrainer, whose workers hold the trial's CPUs/GPUs. Tune refuses an
    # all-zero request and a CPU fraction would eat into the workers' CPUs, so it holds a token of memory.
    trainable = tune.with_resources(trainable, {"cpu": 0, "memory": DRIVER_MEMORY})

    max_t = space.trial_config(base.to_dict(), {n: p.extremes()[0] for n, p in space.params.items()}).train.epochs
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Tune's new console output ignores verbose=0 for its banner; the legacy path honours it, and the
    # StudyProgress bar is the console view.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    resumed = tune.Tuner.can_restore(str(exp_path))
    if resumed:
        tuner = tune.Tuner.restore(str(exp_path), trainable=trainable, resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
    else:
        state_path.write_text(json.dumps(state, indent=2) + "\n")
        sampler = optuna.samplers.TPESampler(seed=opts.seed, n_startup_trials=space.n_startup_trials,
                                             multivariate=True, constant_liar=True)
        searcher = _searcher_class()(space.distributions(), metric=METRIC, mode="min", sampler=sampler,
                                     study_name=study_name, storage=storage,
                                     points_to_evaluate=space.points_to_evaluate or None, max_t=max_t)
        if space.scheduler.type == "asha":
            scheduler = ASHAScheduler(time_attr=TIME_ATTR, metric=METRIC, mode="min", max_t=max_t,
                                      grace_period=space.scheduler.grace_period,
                                      reduction_factor=space.scheduler.reduction_factor)
        else:
            scheduler = FIFOScheduler()
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler, num_samples=opts.trials,
                                        max_concurrent_trials=max_conc),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=str(out / "ray"), verbose=0,
                # Trial failures (divergence included) are recorded; the experiment goes on.
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                callbacks=[StudyProgress(opts.trials, METRIC, max_t, TIME_ATTR, enabled=opts.progress),
                           PlacementGroupReaper()],
            ),
        )
    grid = tuner.fit()
    errors = {Path(r.path).name: error_text(str(r.error)) for r in grid if r.error is not None and r.path}
    files = write_reports(out, exp_path, base, space, study_name, storage, errors)
    rows = files.pop("_rows")  # type: ignore[arg-type]
    best = next((r for r in rows if r["status"] == "complete"), None)
    return StudyOutcome(out=out, rows=rows, best=best, best_config=files.get("best"), resumed=resumed,
                        wall_s=time.perf_counter() - t0, study_name=study_name, storage=storage_desc, files=files)
