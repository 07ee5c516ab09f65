"""Every use of Ray's and Optuna's private APIs, in one place, with the version range it was tested on.

tests/test_compat.py checks that the installed versions lie in TESTED and that each private name still exists;
when a new release moves one, this file is the only one to change.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from typing import Any

# (package, lowest tested, first untested) versions: a release at or above the upper bound may have moved a name.
TESTED: dict[str, tuple[str, str]] = {"ray": ("2.50", "2.70"), "optuna": ("4.0", "6.0")}


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:3]:
        m = re.match(r"\d+", part)  # leading digits: "0rc1" -> 0
        out.append(int(m.group()) if m else 0)
    return tuple(out)


def untested_versions() -> list[str]:
    """'package X.Y (tested A..B)' for every installed package outside its tested range."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for pkg, (lo, hi) in TESTED.items():
        try:
            v = version(pkg)
        except PackageNotFoundError:
            continue
        if not _version_tuple(lo) <= _version_tuple(v) < _version_tuple(hi):
            out.append(f"{pkg} {v} (gansim is tested with {lo} <= {pkg} < {hi})")
    return out


# Messages Ray prints on the driver that say nothing actionable to a gansim user (they are still in Ray's own log
# files under <temp dir>/session_latest/logs). Everything else Ray logs at WARNING or above - real errors - is kept.
RAY_NOISE: tuple[str, ...] = (
    r"Token authentication is enabled for this Ray cluster",  # ray.init: the default since Ray 2.5x
    r"State API may be temporarily unavailable",  # Train V2 PlacementGroupCleaner without the dashboard
    r"PlacementGroupCleaner",
    r"PreemptionWatcher",  # core_worker.cc: actor constructor arguments in the object store
    r"Trials did not complete",  # Tune, when a trial failed: gansim's table and summary say which and why
    r"Trial task failed for trial",  # Tune's per-trial traceback (the table's error column has its last line)
    r"worker_pool\.cc.*(workers|started)",  # raylet's worker-count warnings on small machines
    r"A worker died or was killed while executing a task by an unexpected system error",
    r"The `.*` argument is deprecated",
)
_NOISE = re.compile("|".join(RAY_NOISE))


class RayNoiseFilter(logging.Filter):
    """Drop the known noise (RAY_NOISE) from Ray's driver-side log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _NOISE.search(record.getMessage())


def _ray_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("ray %(levelname)s: %(message)s"))
    handler.addFilter(RayNoiseFilter())
    handler.setLevel(logging.WARNING)
    return handler


def configure_ray_logging() -> None:
    """Ray's driver-side Python logging, owned by gansim: WARNING and above, one plain line each
    ("ray WARNING: ..."), known noise filtered, no colour codes. Idempotent; ray.init clears it (ray_init)."""
    log = logging.getLogger("ray")
    if any(isinstance(f, RayNoiseFilter) for h in log.handlers for f in h.filters):
        return
    log.addHandler(_ray_handler())
    log.setLevel(logging.WARNING)
    log.propagate = False


def ray_init(**kwargs: Any) -> None:
    """ray.init with gansim's logging: configure_logging=False makes ray.init drop every handler of the "ray"
    logger, so what it logs while starting (the token-auth warning) reaches logging.lastResort; that is
    gansim's filtered handler for the call, and the "ray" logger gets it for good afterwards."""
    import ray

    saved = logging.lastResort
    logging.lastResort = _ray_handler()
    try:
        ray.init(configure_logging=False, **kwargs)
    finally:
        logging.lastResort = saved
        configure_ray_logging()


def worker_logs_to_driver() -> bool:
    """Whether Ray forwards its workers' stdout/stderr to the driver (GANSIM_RAY_WORKER_LOGS=1, for debugging).
    Off by default: forwarded lines come prefixed and coloured, with the controller's and raylet's noise; gansim
    relays the training progress itself (gansim.progress.ConsoleRelay) and raises worker errors as one line."""
    return os.environ.get("GANSIM_RAY_WORKER_LOGS", "0") == "1"


def ray_log_dir() -> str:
    """Where this Ray session's own logs are (for error messages); '' when unknown."""
    try:
        import ray

        return str(ray._private.worker._global_node.get_session_dir_path()) + "/logs"  # private
    except Exception:  # noqa: BLE001 - no Ray session, or the private path moved
        return ""


def quiet_ray_train_logs() -> None:
    """Ray Train V2 logs every report with its metrics dict at INFO on a logger named after its source file."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    try:
        from ray.train.v2._internal.execution import context as _ctx  # private

        logging.getLogger(_ctx.__file__).setLevel(logging.WARNING)
    except ImportError:  # a Ray without Train V2 internals at this path: keep its default logging
        pass


def placement_group_table() -> list[Any]:
    """The GCS placement-group table as PlacementGroupTableData messages (no dashboard / State API needed)."""
    from ray._private.state import state  # private
    from ray.core.generated import gcs_pb2

    accessor = state._connect_and_get_accessor()
    return [gcs_pb2.PlacementGroupTableData.FromString(raw) for raw in accessor.get_placement_group_table()]


def optuna_trial(search: Any, trial_id: str) -> Any:
    """The optuna.trial.Trial behind a Tune trial of an OptunaSearch (None when unknown)."""
    return search._ot_trials.get(trial_id)  # private


def optuna_study(search: Any) -> Any:
    """The optuna.Study an OptunaSearch asks and tells."""
    return search._ot_study  # private


def completed_trials(search: Any) -> set[str]:
    """Tune trial ids an OptunaSearch has already told Optuna about."""
    return search._completed_trials  # private


def ddp_without_forward_buffer_sync() -> dict[str, Any]:
    """DDP keywords that stop the per-forward re-broadcast of buffers (see gansim/train/loss.py).

    torch 2.12+ spells it forward_sync_buffers=False (buffers still broadcast once at construction); older torch
    has only broadcast_buffers=False, which also skips that first broadcast - harmless here, since every rank
    builds identical initial weights and buffers from the same seed.
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel

    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters:
        return {"forward_sync_buffers": False}
    return {"broadcast_buffers": False}
