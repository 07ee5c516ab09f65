"""The Tune trainable: one trial = one real `gansim train` run (a Ray Train TorchTrainer) on the trial's config."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gansim.config import Config, config_from_dict, set_dotted
from gansim.tune.space import SearchSpace

METRIC = "fidelity"
TRIAL_DIR = "trial_dir"  # reported with every result: the searcher stores it in the Optuna trial's user attrs
TRAIN_RUN = "train"  # checkpoints of a trial: <trial dir>/train/checkpoint_epoch_*


def trial_overrides(trial_dir: Path, workers: int, gpus_per_trial: float) -> dict[str, Any]:
    """Run-time settings of one trial that are not part of the searched config (and not in best.yaml)."""
    return {
        "run.out_dir": str(trial_dir),
        "run.name": TRAIN_RUN,
        "train.workers": workers,
        "train.gpus_per_worker": gpus_per_trial / workers,
        # A diverging trial must fail, not be restarted from its last checkpoint to diverge again.
        "train.max_failures": 0,
        "train.num_to_keep": 1,
    }


def build_trial_config(space: SearchSpace, base: dict[str, Any], values: dict[str, Any],
                       runtime: dict[str, Any]) -> Config:
    data = space.trial_dict(base, values)
    for key, value in runtime.items():
        set_dotted(data, key, value)
    return config_from_dict(data)


def _report_callback(trial_dir: Path) -> Any:
    """TuneReportCallback that keeps the objective finite (NaN would poison TPE and ASHA) and names the trial's
    directory (checkpoints under train/, TensorBoard under tb/)."""
    from ray.tune.integration.ray_train import TuneReportCallback

    class FidelityReportCallback(TuneReportCallback):
        def after_report(self, run_context: Any, metrics: list[dict[str, Any]], checkpoint: Any) -> None:
            for m in metrics:
                value = m.get(METRIC)
                if value is None or not math.isfinite(float(value)):
                    m[METRIC] = math.inf
                m[TRIAL_DIR] = str(trial_dir)
            super().after_report(run_context, metrics, checkpoint)

    return FidelityReportCallback()


def trial_driver(config: dict[str, Any], *, space: SearchSpace, base: dict[str, Any], workers: int,
                 gpus_per_trial: float) -> None:
    """Tune trainable (function API): builds the trial's config and runs gansim.train.launch.fit on it, i.e.
    a ray.train.torch.TorchTrainer over gansim.train.loop.train_loop_per_worker, exactly like `gansim train`.
    The driver requests no resources itself; the TorchTrainer's workers hold the trial's CPUs/GPUs. Metrics
    reach Tune through TuneReportCallback, one result per epoch. A diverged or failed run raises (fit turns
    it into a GansimError), so Tune records the trial as ERROR and the Optuna study as FAIL."""
    import ray.tune

    from gansim.train.launch import fit

    ctx = ray.tune.get_context()
    trial_dir = Path(ctx.get_trial_dir())
    values = {name: config[name] for name in space.params}
    cfg = build_trial_config(space, base, values, trial_overrides(trial_dir, workers, gpus_per_trial))
    # Same out_dir + run name on a resumed trial → fit continues from the trial's latest training checkpoint.
    # fit raises a GansimError when the run diverges or fails: Tune records the trial as ERROR, Optuna as FAIL.
    fit(cfg, resume=True, callbacks=[_report_callback(trial_dir)], verbose=False)
