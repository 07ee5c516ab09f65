"""`gansim train`: train a GAN with Ray Train (PyTorch DDP over gloo/NCCL), checkpointing and resuming."""

from __future__ import annotations

import argparse

from gansim.commands.common import add_config_args, config_from_args

EPILOG = """\
examples:
  gansim train --config configs/debug.yaml --workers 2
  gansim train --config configs/calogan-eplus.yaml --data eplus.h5 --out runs/eplus --gpus-per-worker 1 --workers 4
  gansim train --config configs/calogan-eplus.yaml --set train.lr_d=1e-5 --set loss.name=wgan-gp

Running the same command again continues from the latest checkpoint in <out>/<run.name>/ (also after a crash
or a killed job); --fresh deletes those checkpoints and starts over. With RAY_ADDRESS set (slurm/train.sh does
this) the run joins that Ray cluster; otherwise Ray is started on this machine. Outputs: <out>/config.yaml (the
resolved config), <out>/tb (TensorBoard), <out>/<run.name>/checkpoint_epoch_*/state.pt.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN with Ray Train (PyTorch DDP), with checkpoints and resume",
                       description="Train a GAN (CaloGAN or LAGAN) with Ray Train: one DDP worker per --workers, "
                                   "gloo on CPU, NCCL on GPU.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(p, default="configs/calogan-eplus.yaml")
    p.add_argument("--workers", "-n", type=int, default=None, metavar="N",
                   help="Ray Train workers = DDP ranks (sets train.workers)")
    p.add_argument("--gpus-per-worker", type=float, default=None, metavar="G",
                   help="GPUs per worker; 0 trains on CPU with gloo (sets train.gpus_per_worker)")
    p.add_argument("--cpus-per-worker", type=float, default=None, metavar="C",
                   help="logical CPUs reserved per worker (sets train.cpus_per_worker)")
    p.add_argument("--data", default=None, metavar="FILE", help="training HDF5 file (sets data.path)")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (sets run.out_dir)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="sets train.epochs")
    p.add_argument("--fresh", action="store_true",
                   help="delete this run's previous checkpoints and start from scratch instead of resuming")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansim.errors import GansimError

    extra: list[str] = []
    for flag, key in (("workers", "train.workers"), ("gpus_per_worker", "train.gpus_per_worker"),
                      ("cpus_per_worker", "train.cpus_per_worker"), ("epochs", "train.epochs")):
        value = getattr(args, flag)
        if value is not None:
            extra.append(f"{key}={value}")
    if args.data is not None:
        extra.append(f"data.path={args.data}")
    if args.out is not None:
        extra.append(f"run.out_dir={args.out}")
    cfg = config_from_args(args, extra)
    if cfg.train.gpus_per_worker > 0:
        import torch

        if not torch.cuda.is_available() and not _cluster_has_gpus():
            raise GansimError(f"--gpus-per-worker {cfg.train.gpus_per_worker:g}: no CUDA device visible "
                              f"(torch {torch.__version__}); use --gpus-per-worker 0 for CPU")
    from gansim.train.launch import fit

    fit(cfg, resume=not args.fresh)
    return 0


def _cluster_has_gpus() -> bool:
    # The driver may run on a CPU-only login/head node of a GPU cluster: trust the cluster then.
    import os

    return bool(os.environ.get("RAY_ADDRESS"))
