"""`gansim produce`: mass production of events from an exported generator, MPI-sharded, deterministic, resumable."""

from __future__ import annotations

import argparse
from typing import Any

from gansim.commands.common import add_config_args, config_from_args, count_type

DESCRIPTION = """\
Generate events with an exported generator (gansim export) and write them as one CaloGAN-format
(or jet-image) dataset. Run it as one process or under an MPI launcher:

  gansim produce --generator gen.pt --events 1e6 --out runs/prod
  mpiexec -n 4 gansim produce --generator gen.pt --events 1e9 --out /scratch/prod      (srun works too)

The event space is cut into chunks; chunk k's conditions come from (--seed, k), its latents from (--seed,
event block), and every micro-batch of --batch-size events is generated with one intra-op thread (several in
flight on a thread pool), so the bytes depend on the plan alone: not on ranks, threads, cores or restarts
(README: "What makes the bytes identical"). Layout 'shards' (default) writes GB-scale chunk files in fan-out
directories DIR/chunks/DDDDD/chunk_KKKKKKKK.h5 (committed atomically), one VDS index per directory and
DIR/dataset.h5 over them, readable by plain h5py (read in slices; see the README on open-file limits):

  import h5py; f = h5py.File("DIR/dataset.h5"); f["layer_0"][:1000]          # (1000, 3, 96)
  import gansim; ds = gansim.open_dataset("DIR"); ds["layer_0"][:1000]        # any size, few files open

Layout 'single' writes one shared DIR/dataset.h5 collectively with parallel HDF5 (h5py built with MPI,
see cluster/setup_phdf5.sh). DIR/manifest.json records the plan, the environment that fixes the bytes,
committed chunks and their sha256; re-running the same command resumes, a different one on the same DIR is
refused (--overwrite replaces it). `gansim inspect DIR/dataset.h5 --deep` checks every chunk's checksum.
--dry-run prints files, directories, bytes, inodes and wall time per rank count, measured here.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("produce", help="mass-produce events with MPI ranks writing (parallel) HDF5",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", "-g", metavar="FILE|NAME",
                   help="generator artefact written by `gansim export`, or a shipped name (eplus, gamma, piplus)")
    p.add_argument("--events", "-n", type=count_type("events"), metavar="N",
                   help="number of events: 1000000, 1_000_000 or 1e6")
    p.add_argument("--out", "-o", metavar="DIR", help="output directory")
    p.add_argument("--particle", default=None,
                   help="expected particle (eplus, gamma, piplus, jets); must match the generator's config")
    p.add_argument("--energy", default=None, metavar="SPEC",
                   help="incident energies in GeV: uniform:A,B | log-uniform:A,B | fixed:E (default: uniform over "
                        "the generator's training range)")
    p.add_argument("--energy-file", default=None, metavar="FILE",
                   help="resample incident energies (with replacement) from an HDF5 'energy' dataset, .npy or a "
                        "one-column text file (GeV)")
    p.add_argument("--extrapolate", action="store_true",
                   help="allow incident energies outside the range the generator was trained on")
    p.add_argument("--signal-fraction", type=float, default=None,
                   help="jet generators: probability that an event is signal (label 1); default 0.5")
    p.add_argument("--seed", type=int, default=None, help="production seed; chunk k uses (seed, k) (default 0)")
    p.add_argument("--chunk-size", type=count_type("chunk-size"), default=None, metavar="C",
                   help="events per chunk = per chunk file and per commit (default: auto, ~2 GB files from the "
                        "bytes/event measured on the run's first events)")
    p.add_argument("--batch-size", type=count_type("batch-size"), default=None, metavar="B",
                   help="events per generator forward pass (default 1024; part of the plan)")
    p.add_argument("--precision", default=None, metavar="SPEC",
                   help="lossless (default) | bits:M (keep M mantissa bits: relative error <= 2^-(M+1)) | "
                        "quantum:Q (round cells to a power-of-two quantum <= Q in MeV / GeV: error <= Q/2)")
    p.add_argument("--threads", type=int, default=None, metavar="T",
                   help="generation + compression threads per rank (default: OMP_NUM_THREADS or this rank's share "
                        "of the cores); never changes the bytes")
    p.add_argument("--layout", choices=("shards", "single"), default=None,
                   help="shards: file per chunk + virtual dataset.h5 (default); single: one file, parallel HDF5")
    p.add_argument("--dtype", choices=("float32", "float16"), default=None,
                   help="on-disk type of the cell / pixel arrays (float16 halves raw size; energies stay float32)")
    p.add_argument("--compression", choices=("gzip", "lzf", "zstd", "blosc-lz4", "none"), default=None,
                   help="HDF5 filter (with byte shuffle); zstd/blosc-lz4 need hdf5plugin to read (default gzip)")
    p.add_argument("--device", default=None,
                   help="cpu, cuda or auto (cuda when the rank sees a GPU); ranks on a node share its GPUs")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator (GPU, long runs)")
    p.add_argument("--amp", action="store_true", help="autocast inference (float16 on GPU, bfloat16 on CPU)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, measured bytes/event and time estimate; write nothing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing production run in --out")
    p.add_argument("--no-overlap", dest="overlap", action="store_false", default=None,
                   help="write chunks synchronously instead of in a writer thread (for measurements)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress output")
    add_config_args(p)
    p.set_defaults(func=run)


FLAGS = (("generator", "produce.generator"), ("events", "produce.events"), ("out", "produce.out"),
         ("energy", "produce.energy"), ("energy_file", "produce.energy_file"),
         ("signal_fraction", "produce.signal_fraction"), ("seed", "produce.seed"), ("chunk_size", "produce.chunk_size"),
         ("batch_size", "produce.batch_size"), ("precision", "produce.precision"), ("threads", "produce.threads"),
         ("layout", "produce.layout"), ("dtype", "produce.dtype"),
         ("compression", "produce.compression"), ("device", "produce.device"), ("overlap", "produce.overlap"))


def run(args: argparse.Namespace) -> int:
    from gansim.config import MAX_EVENTS
    from gansim.errors import GansimError
    from gansim.produce.run import AgreedError, Run, produce

    if args.events is not None and args.events > MAX_EVENTS:  # say it in the user's terms, not as a 100-digit int
        raise GansimError(f"--events {args.events:.3g} is above the maximum {MAX_EVENTS:.0e} events per production "
                          "(a 1e15-event plan is ~1 EB of showers); split it into runs with different --seed")
    extra = [f"{key}={getattr(args, flag)}" for flag, key in FLAGS if getattr(args, flag) is not None]
    extra += [f"produce.{flag}=true" for flag in ("amp", "compile") if getattr(args, flag)]
    cfg = config_from_args(args, extra).produce
    for what, value in (("--generator", cfg.generator), ("--out", cfg.out), ("--events", cfg.events)):
        if not value:
            raise GansimError(f"{what} is required (or set it in the config's produce section)")
    try:
        res = produce(Run(cfg, dry_run=args.dry_run, overwrite=args.overwrite, progress=args.progress,
                          extrapolate=args.extrapolate, particle=args.particle))
    except AgreedError as exc:
        if exc.quiet:  # every rank failed together; rank 0 prints the one line
            return 2
        raise
    _finish(args, cfg, res)
    return 0


def _finish(args: argparse.Namespace, cfg: Any, res: dict[str, Any]) -> None:
    """Rank 0's summary line (every rank returns the same result)."""
    from gansim.produce.comm import world
    from gansim.progress import finish

    if world().Get_rank() != 0:
        return
    if args.dry_run:
        finish("produce", "dry run: the plan and estimate are above; nothing was written",
               "the same command without --dry-run")
        return
    finish("produce", f"{res['events']:,} events in {res['chunks']} chunks, {res['bytes'] / 1e6:.1f} MB -> "
                      f"{res['dataset']}", f"gansim inspect {res['dataset']} --deep")
