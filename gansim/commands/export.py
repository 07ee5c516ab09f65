"""`gansim export`: write the generator-only artefact from a training checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """\
CHECKPOINT may be a state.pt file, a checkpoint directory (checkpoint_epoch_NNNNNN), or a run directory
(--out of `gansim train`, or <out>/<run.name>), in which case the latest checkpoint is used, or with --best the
one whose per-epoch validation fidelity score was lowest (GAN training is not monotone: the last epoch is not
always the best generator; the score is measured on the training file's validation split, not the held-out
reference you evaluate on).

examples:
  gansim export runs/debug --out runs/debug/generator.pt
  gansim export runs/eplus --best --out eplus-generator.pt
  gansim export runs/eplus/run/checkpoint_epoch_000050 --out eplus-generator.pt --no-ema
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a generator-only artefact from a training checkpoint",
                       description="Write the generator (EMA weights when the run kept an EMA) with its config "
                                   "into one file that `gansim produce` and `gansim evaluate` read.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="state.pt, checkpoint directory or run directory")
    p.add_argument("--out", "-o", default="generator.pt", metavar="FILE",
                   help="artefact to write (default generator.pt)")
    p.add_argument("--best", action="store_true",
                   help="the checkpoint below CHECKPOINT with the lowest validation fidelity score, not the latest")
    p.add_argument("--no-ema", action="store_true", help="export the raw generator weights, not the EMA")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansim.train.export import export_checkpoint

    path, extra = export_checkpoint(args.checkpoint, args.out, use_ema=not args.no_ema, best=args.best)
    from gansim.progress import finish

    fid = extra["metrics"].get("fidelity")
    finish("export", f"wrote {path} (epoch {extra['epoch']}, step {extra['step']}, "
                     f"{'EMA' if extra['ema'] else 'raw'} weights{'' if fid is None else f', fidelity {fid:.4g}'}) "
                     f"from {extra['source_checkpoint']}",
           f"gansim evaluate --reference HELDOUT.h5 --generator {path} --out {Path(path).parent / 'report'}")
    return 0
