"""`gansim produce`: mass production of events from an exported generator, MPI-sharded, deterministic, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from gansim.commands.common import count_type

DESCRIPTION = """\
Generate events with an exported generator (gansim export) and write them as one CaloGAN-format
(or jet-image) dataset. Run it as one process or under an MPI launcher:

  gansim produce --generator gen.pt --events 1e6 --out runs/prod
  mpiexec -n 4 gansim produce --generator gen.pt --events 1e9 --out /scratch/prod      (srun works too)

The event space is cut into chunks of --chunk-size events; chunk k is seeded by (--seed, k) only and the
chunks are dealt round-robin to the ranks, so the dataset is byte-identical for any number of ranks and
after any restart. Layout 'shards' (default) writes DIR/chunks/chunk_NNNNNN.h5 (one compressed file per
chunk, committed atomically) and DIR/dataset.h5, which presents all chunks as one file through HDF5
virtual datasets (energy, layer_0, layer_1, layer_2, overflow; or image, signal) readable by plain h5py:

  import h5py; f = h5py.File("DIR/dataset.h5"); f["layer_0"].shape      # (N, 3, 96)

Layout 'single' writes one shared DIR/dataset.h5 collectively with parallel HDF5 (h5py built with MPI,
see cluster/setup_phdf5.sh). DIR/manifest.json records the plan, committed chunks and their sha256;
re-running the same command resumes, a different one on the same DIR is refused (--overwrite replaces
it). `gansim inspect DIR/dataset.h5 --deep` validates the data and checks every chunk's checksum.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("produce", help="mass-produce events with MPI ranks writing (parallel) HDF5",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator", "-g", required=True, type=Path, metavar="FILE",
                   help="generator artefact written by `gansim export` (generator.pt)")
    p.add_argument("--events", "-n", required=True, type=count_type("events"), metavar="N",
                   help="number of events: 1000000, 1_000_000 or 1e6")
    p.add_argument("--out", "-o", required=True, type=Path, metavar="DIR", help="output directory")
    p.add_argument("--particle", default=None,
                   help="expected particle (eplus, gamma, piplus, jets); must match the generator's config")
    p.add_argument("--energy", default=None, metavar="SPEC",
                   help="incident energies in GeV: uniform:A,B | log-uniform:A,B | fixed:E (default uniform:1,100)")
    p.add_argument("--energy-file", type=Path, default=None, metavar="FILE",
                   help="resample incident energies (with replacement) from an HDF5 'energy' dataset, .npy or "
                        "text column (GeV)")
    p.add_argument("--signal-fraction", type=float, default=0.5,
                   help="jet generators: probability that an event is signal (label 1); default 0.5")
    p.add_argument("--seed", type=int, default=0, help="production seed; chunk k uses (seed, k) (default 0)")
    p.add_argument("--chunk-size", type=count_type("chunk-size"), default=100_000, metavar="C",
                   help="events per chunk = per shard file and per commit (default 100000)")
    p.add_argument("--batch-size", type=count_type("batch-size"), default=1024, metavar="B",
                   help="events per generator forward pass (default 1024; part of the plan)")
    p.add_argument("--layout", choices=("shards", "single"), default="shards",
                   help="shards: file per chunk + virtual dataset.h5 (default); single: one file, parallel HDF5")
    p.add_argument("--dtype", choices=("float32", "float16"), default="float32",
                   help="on-disk type of the cell / pixel arrays (float16 halves raw size; energies stay float32)")
    p.add_argument("--compression", choices=("gzip", "lzf", "zstd", "blosc-lz4", "none"), default="gzip",
                   help="HDF5 filter (with byte shuffle); zstd/blosc-lz4 need hdf5plugin to read (default gzip)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (ranks on a node share its GPUs round-robin)")
    p.add_argument("--compile", action="store_true", help="torch.compile the generator (GPU, long runs)")
    p.add_argument("--amp", action="store_true", help="autocast inference (float16 on GPU, bfloat16 on CPU)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, measured bytes/event and time estimate; write nothing")
    p.add_argument("--overwrite", action="store_true", help="replace an existing production run in --out")
    p.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="write chunks synchronously instead of in a writer thread (for measurements)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansim.produce.run import ProduceOptions, produce

    opts = ProduceOptions(
        generator=args.generator, events=args.events, out=args.out, particle=args.particle, energy=args.energy,
        energy_file=args.energy_file, seed=args.seed, chunk_size=args.chunk_size, batch_size=args.batch_size,
        layout=args.layout, dtype=args.dtype, compression=args.compression, device=args.device,
        dry_run=args.dry_run, compile=args.compile, amp=args.amp, overwrite=args.overwrite,
        signal_fraction=args.signal_fraction, overlap=args.overlap, progress=args.progress)
    produce(opts)
    return 0
