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
from gansim.tune.driver import METRIC, TRIAL_DIR
from gansim.tune.space import SearchSpace

EXPERIMENT = "study"
TIME_ATTR = "epoch"  # reported by the loop; unlike training_iteration it survives a resumed trial
JOURNAL = "optuna-journal.log"
STATE_FILE = "tune.json"
DRIVER_MEMORY = 64 * 1024**2  # bytes of Ray's logical "memory" resource per trial driver


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
        """OptunaSearch as optuna-dashboard users expect it: every epoch's score is an intermediate value (also the
        last one, which Tune withholds from on_trial_result when ASHA stops the trial), ASHA-stopped trials are
        PRUNED with their curve (not COMPLETE with an early score), and each Optuna trial names its Tune trial and
        directories in user attrs."""

        def __init__(self, *args: Any, max_t: int, experiment: str, **kwargs: Any) -> None:
            self._max_t, self._experiment = max_t, experiment
            self._reported: dict[str, int] = {}  # Tune trial id -> last epoch reported (pickled with the searcher)
            super().__init__(*args, **kwargs)

        def suggest(self, trial_id: str) -> dict | None:
            params = super().suggest(trial_id)
            ot_trial = optuna_trial(self, trial_id)
            if ot_trial is not None:
                ot_trial.set_user_attr("tune_trial_id", trial_id)
            return params

        def _record(self, trial_id: str, result: dict) -> None:
            """Report result's score at its epoch (once per epoch) and the trial's directories."""
            value, step = result.get(self.metric), result.get(TIME_ATTR)
            ot_trial = optuna_trial(self, trial_id)
            if value is None or step is None or ot_trial is None:
                return
            reported = self.__dict__.setdefault("_reported", {})  # absent in a searcher saved by an older gansim
            if trial_id not in reported and result.get(TRIAL_DIR):
                # the trial writes in a local staging directory that Tune syncs to <experiment>/<same name>
                trial_dir = Path(getattr(self, "_experiment", "")) / Path(result[TRIAL_DIR]).name
                ot_trial.set_user_attr("trial_dir", str(trial_dir))
                ot_trial.set_user_attr("tensorboard", str(trial_dir / "tb"))
            if int(step) > reported.get(trial_id, -1):
                ot_trial.report(float(value), int(step))
                reported[trial_id] = int(step)

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if trial_id not in completed_trials(self):
                self._record(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in completed_trials(self):
                return
            if result and not error:
                self._record(trial_id, result)
            stopped_early = (not error and result and result.get(self.metric) is not None
                             and int(result.get(TIME_ATTR, self._max_t)) < self._max_t)
            if stopped_early:
                optuna_study(self).tell(optuna_trial(self, trial_id), state=optuna.trial.TrialState.PRUNED)
                completed_trials(self).add(trial_id)
                return
            super().on_trial_complete(trial_id, result=result, error=error)

    return GansimOptunaSearch


@dataclass
class StudyPlace:
    """Where a study lives: its directory, the Tune experiment in it, the Optuna study name and storage."""

    out: Path
    experiment: Path
    study_name: str
    storage: Any
    storage_desc: str


def study_place(base: Config) -> StudyPlace:
    t = base.tune
    out = Path(t.out or f"runs/tune/{base.run.name}").expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    storage, desc = make_storage(t.storage or None, out)
    return StudyPlace(out, out / "ray" / EXPERIMENT, t.study_name or base.run.name, storage, desc)


# What a study was started with; a re-run that changes one of these is refused (Tuner.restore would keep the old
# searcher and scheduler and silently ignore it). Resources (gpus, max_concurrent) may change between runs.
STATE_KEYS = (("config_hash", "run config (--config/--set/--epochs)"), ("space", "search space"),
              ("trials", "tune.trials (--trials)"), ("seed", "tune.seed (--seed)"),
              ("workers_per_trial", "tune.workers_per_trial (--workers-per-trial)"),
              ("scheduler", "tune.scheduler"), ("grace_period", "tune.grace_period"),
              ("reduction_factor", "tune.reduction_factor"), ("n_startup_trials", "tune.n_startup_trials"),
              ("study_name", "study name (tune.study_name)"), ("storage", "tune.storage (--storage)"))


def _state(base: Config, space: SearchSpace, place: StudyPlace) -> dict[str, Any]:
    t = base.tune
    return {"trials": t.trials, "seed": t.seed, "workers_per_trial": t.workers_per_trial, "scheduler": t.scheduler,
            "grace_period": t.grace_period, "reduction_factor": t.reduction_factor,
            "n_startup_trials": t.n_startup_trials, "config_hash": base.hash(),
            "space": json.loads(space.fingerprint()), "study_name": place.study_name, "storage": place.storage_desc}


def _check_same_study(path: Path, want: dict[str, Any]) -> None:
    try:
        have = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    for key, label in STATE_KEYS:
        if key in have and have[key] != want[key]:
            shown = "" if key in ("space", "config_hash") else f" ({have[key]!r} then, {want[key]!r} now)"
            raise GansimError(f"{path.parent} holds a study started with a different {label}{shown}; re-run the "
                              "same command to resume it, or choose a new --out")


def _trainable(base: Config, space: SearchSpace) -> Any:
    from ray import tune

    from gansim.train.launch import resolve_paths
    from gansim.tune.driver import trial_driver

    t = base.tune
    # Trials run with the working directory set to their trial dir: hand them absolute paths.
    trainable = tune.with_parameters(trial_driver, space=space, base=resolve_paths(base).to_dict(),
                                     workers=t.workers_per_trial, gpus_per_trial=t.gpus_per_trial)
    # The driver only waits on its TorchTrainer, whose workers hold the trial's CPUs/GPUs. Tune refuses an
    # all-zero request and a CPU fraction would eat into the workers' CPUs, so it holds a token of memory.
    return tune.with_resources(trainable, {"cpu": 0, "memory": DRIVER_MEMORY})


def _searcher(base: Config, space: SearchSpace, place: StudyPlace, max_t: int) -> Any:
    import optuna

    t = base.tune
    sampler = optuna.samplers.TPESampler(seed=t.seed, n_startup_trials=t.n_startup_trials, multivariate=True,
                                         constant_liar=True)
    searcher = _searcher_class()(space.distributions(), metric=METRIC, mode="min", sampler=sampler,
                                 study_name=place.study_name, storage=place.storage,
                                 points_to_evaluate=space.points_to_evaluate or None, max_t=max_t,
                                 experiment=str(place.experiment))
    name_metric(place)
    return searcher


def name_metric(place: StudyPlace) -> None:
    """Label the objective in optuna-dashboard and Optuna's plots ("fidelity" instead of "Objective Value")."""
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.load_study(study_name=place.study_name, storage=place.storage).set_metric_names([METRIC])


def _new_tuner(base: Config, space: SearchSpace, place: StudyPlace, progress: bool) -> Any:
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    from gansim.tune.progress import StudyProgress
    from gansim.tune.reaper import PlacementGroupReaper

    t, max_t = base.tune, space.epochs(base)
    max_conc = t.max_concurrent or default_concurrency(ray.cluster_resources(), t.workers_per_trial,
                                                       base.train.cpus_per_worker, t.gpus_per_trial, t.trials)
    scheduler = (ASHAScheduler(time_attr=TIME_ATTR, metric=METRIC, mode="min", max_t=max_t,
                               grace_period=t.grace_period, reduction_factor=t.reduction_factor)
                 if t.scheduler == "asha" else FIFOScheduler())
    return tune.Tuner(
        _trainable(base, space),
        tune_config=tune.TuneConfig(search_alg=_searcher(base, space, place, max_t), scheduler=scheduler,
                                    num_samples=t.trials, max_concurrent_trials=max_conc),
        run_config=tune.RunConfig(
            name=EXPERIMENT, storage_path=str(place.experiment.parent), verbose=0,
            # Trial failures (divergence included) are recorded; the experiment goes on.
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
            callbacks=[StudyProgress(t.trials, METRIC, max_t, TIME_ATTR, enabled=progress), PlacementGroupReaper()],
        ),
    )


def run_study(base: Config, space: SearchSpace, progress: bool = True) -> StudyOutcome:
    """Run (or resume) the study described by base.tune and write the table, best config and plots in its out."""
    import optuna
    from ray import tune

    from gansim.train.launch import ensure_ray
    from gansim.tune.report import error_text, write_reports

    t0 = time.perf_counter()
    place = study_place(base)
    state = _state(base, space, place)
    _check_same_study(place.out / STATE_FILE, state)
    t = base.tune
    ensure_ray(t.workers_per_trial * base.train.cpus_per_worker, t.gpus_per_trial, verbose=False)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Tune's new console output ignores verbose=0 for its banner; the legacy path honours it, and the
    # StudyProgress reporter is the console view.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    resumed = tune.Tuner.can_restore(str(place.experiment))
    if resumed:
        tuner = tune.Tuner.restore(str(place.experiment), trainable=_trainable(base, space), resume_unfinished=True,
                                   resume_errored=False, restart_errored=False)
    else:
        (place.out / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")
        tuner = _new_tuner(base, space, place, progress)
    grid = tuner.fit()
    errors = {Path(r.path).name: error_text(str(r.error)) for r in grid if r.error is not None and r.path}
    files = write_reports(place.out, place.experiment, base, space, place.study_name, place.storage, errors)
    rows = files.pop("_rows")  # type: ignore[arg-type]
    best = next((r for r in rows if r["status"] == "complete"), None)
    return StudyOutcome(out=place.out, rows=rows, best=best, best_config=files.get("best"), resumed=resumed,
                        wall_s=time.perf_counter() - t0, study_name=place.study_name, storage=place.storage_desc,
                        files=files)
