"""`gansim tune`: hyperparameter search with Ray Tune + Optuna (TPE) and ASHA, scored on physics fidelity."""

from __future__ import annotations

import argparse
from typing import Any

from gansim.commands.common import add_config_args, count_type

EPILOG = """\
examples:
  gansim tune --config calogan-eplus --space tune/calogan --trials 200 --data eplus.h5
  gansim tune --config debug --space tune/debug --trials 4 --out runs/tune-debug --data eplus.h5
  gansim tune ... --workers-per-trial 2 --gpus-per-trial 1 --storage sqlite:///runs/tune/optuna.db

Each trial is a real `gansim train` run (Ray Train TorchTrainer) of the config with the trial's parameters;
the objective is the fidelity score on held-out reference events (lower is better), reported every epoch;
ASHA stops weak trials early. The study's settings are the config tree's tune section (`gansim config --list`):
the config file's, then the space file's `tune:` section, then --set tune.KEY=VALUE and the flags below. A
trial that diverges (non-finite losses) is recorded as failed and the study goes on. Running the same command
again resumes the study: finished trials are kept, interrupted ones continue from their last checkpoint.

Outputs in --out: results.csv / results.md (sorted by score), best.yaml (`gansim train --config best.yaml`),
plots/*.png (Optuna's history, importances, learning curves, slices), the Optuna study (optuna-journal.log by
default: `optuna-dashboard <out>/optuna-journal.log`) and the Tune experiment in ray/study/ (every trial's
TensorBoard: `tensorboard --logdir <out>/ray/study`). With RAY_ADDRESS set (slurm/tune.sh does this) trials
run on that Ray cluster; otherwise Ray starts on this machine.
"""


FLAGS = (("trials", "tune.trials"), ("workers_per_trial", "tune.workers_per_trial"),
         ("gpus_per_trial", "tune.gpus_per_trial"), ("max_concurrent", "tune.max_concurrent"), ("out", "tune.out"),
         ("storage", "tune.storage"), ("seed", "tune.seed"), ("epochs", "train.epochs"), ("data", "data.path"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter search with Ray Tune + Optuna, scored on physics",
                       description="Search loss choice, learning rates and friends with Ray Tune (OptunaSearch "
                                   "TPE + ASHA); every trial is a real training run scored on physics fidelity.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, default="calogan-eplus")
    p.add_argument("--space", "-s", default="tune/calogan", metavar="YAML",
                   help="search-space file or shipped name (params, fixed, tune section); default tune/calogan")
    p.add_argument("--trials", "-t", type=count_type("trials"), default=None, metavar="N",
                   help="number of trials (sets tune.trials; default 200)")
    p.add_argument("--workers-per-trial", type=int, default=None, metavar="N",
                   help="Ray Train workers (DDP ranks) per trial (sets tune.workers_per_trial; default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=None, metavar="G",
                   help="GPUs per trial, shared by its workers; 0 trains on CPU (sets tune.gpus_per_trial)")
    p.add_argument("--max-concurrent", type=int, default=None, metavar="K",
                   help="trials run at once (sets tune.max_concurrent; default: cluster CPUs / (workers x "
                        "cpus_per_worker), capped by GPUs / gpus-per-trial)")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="study directory (sets tune.out; default runs/tune/<run.name>); the same --out resumes")
    p.add_argument("--storage", default=None, metavar="URL|FILE",
                   help="Optuna storage (sets tune.storage): an RDB URL (sqlite:///study.db, postgresql://...) or "
                        "a journal file (default <out>/optuna-journal.log)")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="TPE sampler seed (sets tune.seed)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="training epochs per trial (sets train.epochs, also where the space fixes it; ASHA's max_t)")
    p.add_argument("--data", default=None, metavar="FILE", help="training HDF5 file (sets data.path)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output (same as gansim --progress off)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansim.progress import finish
    from gansim.train.launch import check_inputs, resolve_paths
    from gansim.tune.space import load_study
    from gansim.tune.study import run_study

    extra = [f"{key}={getattr(args, flag)}" for flag, key in FLAGS if getattr(args, flag) is not None]
    base, space = load_study(args.config, args.space, list(args.overrides) + extra)
    base = _with_trial_workers(base)
    check_inputs(resolve_paths(base))  # missing or mismatched data fails now, not in every trial
    t = base.tune
    out = t.out or f"runs/tune/{base.run.name}"
    print(f"gansim tune: {len(space.params)} parameters ({', '.join(space.params)}), {t.trials} trials, "
          f"{t.workers_per_trial} worker(s) and {t.gpus_per_trial:g} GPU(s) per trial, scheduler {t.scheduler}; "
          f"study in {out}", flush=True)
    res = run_study(base, space, progress=not args.quiet)
    counts = {s: sum(r["status"] == s for r in res.rows) for s in ("complete", "pruned", "failed")}
    print(f"gansim tune: table {res.files.get('md')}, plots in {res.out / 'plots'}; Optuna study "
          f"'{res.study_name}' in {res.storage} (optuna-dashboard {res.storage}); TensorBoard: tensorboard "
          f"--logdir {res.out / 'ray' / 'study'}")
    best = "no trial completed all epochs, no best.yaml"
    if res.best is not None:
        params = ", ".join(f"{k}={res.best[k]:.3g}" if isinstance(res.best[k], float) else f"{k}={res.best[k]}"
                           for k in space.params)
        best = f"best fidelity {res.best['fidelity']:.4g} (trial {res.best['trial']}: {params})"
    finish("tune", f"{'resumed; ' if res.resumed else ''}{len(res.rows)} trials: {counts['complete']} complete, "
                   f"{counts['pruned']} pruned, {counts['failed']} failed in {res.wall_s:.0f} s; {best}",
           f"gansim train --config {res.best_config}" if res.best_config else f"gansim tune ... --out {res.out} "
           "with more --trials or --epochs")
    return 0


def _with_trial_workers(base: Any) -> Any:
    """check_inputs sizes an iteration by train.workers: use the per-trial worker count."""
    from gansim.config import config_from_dict

    data = base.to_dict()
    data["train"]["workers"] = base.tune.workers_per_trial
    return config_from_dict(data)
