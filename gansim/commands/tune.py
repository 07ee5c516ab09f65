"""`gansim tune`: hyperparameter search with Ray Tune + Optuna (TPE) and ASHA, scored on physics fidelity."""

from __future__ import annotations

import argparse

from gansim.commands.common import add_config_args, config_from_args, count_type

EPILOG = """\
examples:
  gansim tune --config configs/calogan-eplus.yaml --space configs/tune/calogan.yaml --trials 200
  gansim tune --config configs/debug.yaml --space configs/tune/debug.yaml --trials 4 --out runs/tune-debug
  gansim tune ... --workers-per-trial 2 --gpus-per-trial 1 --storage sqlite:///runs/tune/optuna.db

Each trial is a real `gansim train` run (Ray Train TorchTrainer) of the config with the trial's parameters;
the objective is the fidelity score on held-out reference events (lower is better), reported every epoch;
ASHA stops weak trials early (scheduler section of the space file). A trial that diverges (non-finite losses)
is recorded as failed and the study goes on. Running the same command again resumes the study: finished
trials are kept, interrupted ones continue from their last checkpoint.

Outputs in --out: results.csv / results.md (sorted by score), best.yaml (`gansim train --config best.yaml`),
plots/{history,importance,loss_vs_score}.png, the Optuna study (optuna-journal.log by default; readable with
optuna-dashboard or optuna.load_study) and the Tune experiment in ray/study/. With RAY_ADDRESS set
(slurm/tune.sh does this) trials run on that Ray cluster; otherwise Ray starts on this machine.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter search with Ray Tune + Optuna, scored on physics",
                       description="Search loss choice, learning rates and friends with Ray Tune (OptunaSearch "
                                   "TPE + ASHA); every trial is a real training run scored on physics fidelity.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, default="configs/calogan-eplus.yaml")
    p.add_argument("--space", "-s", default="configs/tune/calogan.yaml", metavar="YAML",
                   help="search-space file (params, fixed, scheduler, ...); default configs/tune/calogan.yaml")
    p.add_argument("--trials", "-t", type=count_type("trials"), default=200, metavar="N",
                   help="number of trials (default 200)")
    p.add_argument("--workers-per-trial", type=int, default=1, metavar="N",
                   help="Ray Train workers (DDP ranks) per trial (default 1)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G",
                   help="GPUs per trial, shared by its workers; 0 trains on CPU (default 0)")
    p.add_argument("--max-concurrent", type=int, default=None, metavar="K",
                   help="trials run at once (default: cluster CPUs / (workers x cpus_per_worker), "
                        "capped by GPUs / gpus-per-trial)")
    p.add_argument("--out", "-o", default=None, metavar="DIR",
                   help="study directory (default runs/tune/<run.name>); re-run with the same --out to resume")
    p.add_argument("--storage", default=None, metavar="URL|FILE",
                   help="Optuna storage: an RDB URL (sqlite:///study.db, postgresql://...) or a journal file "
                        "(default <out>/optuna-journal.log)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="TPE sampler seed (default 0)")
    p.add_argument("--epochs", type=int, default=None, metavar="E",
                   help="training epochs per trial (sets train.epochs; ASHA's max_t)")
    p.add_argument("--data", default=None, metavar="FILE", help="training HDF5 file (sets data.path)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _check_flags(args: argparse.Namespace) -> None:
    from gansim.errors import GansimError

    if args.workers_per_trial < 1:
        raise GansimError(f"--workers-per-trial must be at least 1, got {args.workers_per_trial}")
    if not args.gpus_per_trial >= 0:
        raise GansimError(f"--gpus-per-trial must be >= 0, got {args.gpus_per_trial}")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise GansimError(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    if not 0 <= args.seed < 2**32:  # Optuna's TPESampler seeds a numpy RandomState: 32 bits
        raise GansimError(f"--seed: must satisfy 0 <= seed < 2^32 (the Optuna sampler's range), got {args.seed}")
    if args.epochs is not None and args.epochs < 1:
        raise GansimError(f"--epochs must be at least 1, got {args.epochs}")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gansim.train.launch import check_inputs, resolve_paths
    from gansim.tune.space import load_space
    from gansim.tune.study import TuneOptions, run_study

    _check_flags(args)
    extra = [f"train.workers={args.workers_per_trial}"]
    if args.epochs is not None:
        extra.append(f"train.epochs={args.epochs}")
    if args.data is not None:
        extra.append(f"data.path={args.data}")
    base = config_from_args(args, extra)
    space = load_space(args.space, base)
    check_inputs(resolve_paths(base))  # missing or mismatched data fails now, not in every trial
    out = Path(args.out or f"runs/tune/{base.run.name}")
    opts = TuneOptions(trials=args.trials, out=out, workers_per_trial=args.workers_per_trial,
                       gpus_per_trial=args.gpus_per_trial, max_concurrent=args.max_concurrent,
                       storage=args.storage, seed=args.seed, progress=not args.quiet)
    print(f"gansim tune: {len(space.params)} parameters ({', '.join(space.params)}), {args.trials} trials, "
          f"{args.workers_per_trial} worker(s) and {args.gpus_per_trial:g} GPU(s) per trial; study in {out}",
          flush=True)
    res = run_study(base, space, opts)
    counts = {s: sum(r["status"] == s for r in res.rows) for s in ("complete", "pruned", "failed")}
    print(f"gansim tune: {'resumed; ' if res.resumed else ''}{len(res.rows)} trials: {counts['complete']} complete, "
          f"{counts['pruned']} pruned, {counts['failed']} failed ({res.wall_s:.0f} s)")
    if res.best is not None:
        params = ", ".join(f"{k}={res.best[k]:.3g}" if isinstance(res.best[k], float) else f"{k}={res.best[k]}"
                           for k in space.params)
        print(f"gansim tune: best fidelity {res.best['fidelity']:.4g} (trial {res.best['trial']}): {params}")
        print(f"gansim tune: best config {res.best_config}  ->  gansim train --config {res.best_config}")
    else:
        print("gansim tune: no trial completed all epochs; no best.yaml written")
    print(f"gansim tune: table {res.files.get('md')}, plots in {res.out / 'plots'}; Optuna study "
          f"'{res.study_name}' in {res.storage}")
    return 0
