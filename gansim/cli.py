"""Thin `gansim` entry point: builds the sub-command parsers and turns user errors into one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from gansim import __version__
from gansim.errors import GansimError
from gansim.progress import MODES, set_mode

# Each command lives in gansim/commands/<name>.py with register(subparsers) and heavy imports kept
# inside its run function, so `gansim --help` stays fast.
COMMANDS = ("simulate", "inspect", "convert", "train", "export", "evaluate", "tune", "produce", "config", "doctor")

DESCRIPTION = """\
gansim - GAN fast simulation for particle physics, from one core to many GPU nodes.

  simulate   make reference data: calorimeter showers (built-in) or Pythia8+FastJet jet images
  inspect    validate a CaloGAN / jet-image HDF5 file and summarise it
  convert    CaloChallenge-format files (incident_energies, showers) to and from the CaloGAN contract
  train      train a GAN with Ray Train (PyTorch DDP), with checkpoints and resume
  export     write a generator-only artefact from a training checkpoint
  evaluate   physics validation: shower shapes, jet observables, classifier AUC, plots
  tune       hyperparameter search with Ray Tune + Optuna, scored on physics
  produce    mass production with MPI ranks writing (parallel) HDF5
  config     show the config tree, its defaults and a resolved config
  doctor     check torch/CUDA/NCCL, MPI, parallel HDF5, Ray, Optuna, SLURM; say how to install what is missing
"""
PROGRESS_HELP = ("progress output: auto (bars on a terminal, a status line every GANSIM_PROGRESS_INTERVAL s "
                 "otherwise), bar, lines or off (also GANSIM_PROGRESS); a command's --quiet / --no-progress = off")


class OneLineParser(argparse.ArgumentParser):
    """Bad command lines end like every other user error: one line on stderr naming the problem, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="gansim", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gansim {__version__}")
    parser.add_argument("--progress", dest="progress_mode", choices=MODES, default=None, help=PROGRESS_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(f"gansim.commands.{name}").register(sub)
    for leaf in _leaf_parsers(sub):  # the same switch after the command: gansim evaluate ... --progress lines
        leaf.add_argument("--progress", dest="progress_mode", choices=MODES, default=argparse.SUPPRESS,
                          help=PROGRESS_HELP)
    return parser


def _leaf_parsers(sub: argparse._SubParsersAction) -> list[argparse.ArgumentParser]:
    out = []
    for p in dict.fromkeys(sub.choices.values()):  # aliases map to the same parser
        nested = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        out += _leaf_parsers(nested[0]) if nested else [p]
    return out


def progress_mode(args: argparse.Namespace) -> str | None:
    """The one progress switch: --progress, or a command's own --quiet / --no-progress meaning off."""
    if getattr(args, "quiet", False) or getattr(args, "no_progress", False) or getattr(args, "progress", True) is False:
        return "off"
    return args.progress_mode


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    mode = progress_mode(args)
    if mode is not None:
        set_mode(mode)  # inherited by Ray workers and subprocesses
    debug = bool(os.environ.get("GANSIM_DEBUG"))  # GANSIM_DEBUG=1: tracebacks instead of one line
    try:
        return int(args.func(args) or 0)
    except GansimError as exc:
        if debug:
            raise
        print(f"gansim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gansim {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # Full disks, unwritable directories and the like: one line, not a traceback wall.
        if debug:
            raise
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"gansim {args.command}: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except MemoryError as exc:
        # The known large allocations are checked against the available memory up front (gansim.resources);
        # this is what is left: the machine ran out while working. Say so in one line.
        if debug:
            raise
        detail = f" ({exc})" if str(exc) else ""
        print(f"gansim {args.command}: error: out of memory{detail}; ask for fewer events or use a machine with "
              "more memory", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
