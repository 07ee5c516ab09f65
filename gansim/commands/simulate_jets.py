"""`gansim simulate jets`: Pythia8 + FastJet reference jet images (W' -> WZ signal, QCD background)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gansim.commands.common import check_output_file, count_type
from gansim.errors import GansimError
from gansim.resources import cpus_available
from gansim.seeding import check_seed
from gansim.sim.jets import JETS_PER_CHUNK  # numpy only; pythia8mc/fastjet are imported when run

DESCRIPTION = """\
Generate LAGAN-style jet images from real Pythia8 events clustered with FastJet, written as one HDF5 file
(image (N,25,25) GeV, signal (N,), pt, eta, phi, mass, tau_21) that `gansim train` and `gansim inspect` read.

Physics: pp at sqrt(s) = 13 TeV. Signal W' (800 GeV) -> W Z with W -> q q' and Z -> nu nu; background QCD
dijets (HardQCD:all, pTHat in 0.8 x LO .. 1.5 x HI of the pT window). Visible final-state particles with
|eta| < 2.5, anti-kt R = 1.0, trimming (kt R_sub = 0.3, f_cut = 5%); the leading trimmed jet is kept when
LO < pT < HI. Images: 25 x 25 over [-1.25, 1.25]^2, pixel = pT; leading subjet centred, second subjet
rotated straight down, flipped so the right half holds more pT.

--events counts accepted jets (with --process both, half signal and half background, shuffled together).
The file depends only on the seed, counts and windows, not on --workers. Needs the jets extra:
  pip install 'gansim[jets]'

Example:
  gansim simulate jets --process both --events 10000 --out data/jets.h5 --workers 8
"""


def _window(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO,HI in GeV (example: 250,300)") from None
    return lo, hi


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("jets", help="Pythia8 + FastJet jet images (W' -> WZ vs QCD), LAGAN format",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--process", choices=("wprime", "qcd", "both"), default="both",
                   help="wprime = signal (boosted W jets), qcd = background, both = half each (default: both)")
    p.add_argument("--events", type=count_type("events"), required=True, metavar="N",
                   help="number of accepted jets to write, e.g. 2000 or 1e5")
    p.add_argument("--out", required=True, metavar="FILE", help="output HDF5 file (written atomically)")
    p.add_argument("--seed", type=int, default=0, help="master seed; chunk k uses a Pythia seed derived from "
                                                       "(seed, process, k) (default: 0)")
    p.add_argument("--workers", type=int, default=None, metavar="W",
                   help="worker processes generating chunks in parallel, 1 to the CPUs available (default: all)")
    p.add_argument("--pt-window", type=_window, default=(250.0, 300.0), metavar="LO,HI",
                   help="trimmed leading-jet pT window in GeV (default: 250,300)")
    p.add_argument("--mass-window", type=_window, default=None, metavar="LO,HI",
                   help="optional trimmed jet-mass window in GeV, e.g. 65,95 (default: none)")
    p.add_argument("--chunk-size", type=count_type("chunk-size"), default=JETS_PER_CHUNK, metavar="K",
                   help=f"accepted jets per work unit (default: {JETS_PER_CHUNK}); each unit has its own Pythia seed, "
                        "so this is part of what defines the file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansim.sim.jets import simulate_jets

    cpus = cpus_available()
    workers = cpus if args.workers is None else args.workers
    # Pythia is CPU-bound: more processes than CPUs only add memory (and 10^6 of them would take the machine down).
    if not 1 <= workers <= cpus:
        raise GansimError(f"--workers must be between 1 and {cpus} (the CPUs this process may use), got {workers}")
    check_seed(args.seed)
    check_output_file(Path(args.out))
    res = simulate_jets(args.out, args.process, args.events, seed=args.seed, workers=workers,
                        pt_window=args.pt_window, mass_window=args.mass_window,
                        chunk_size=args.chunk_size, progress=not args.quiet)
    eff = ", ".join(f"{p}: {n} jets from {res.events_tried[p]} events ({100 * n / res.events_tried[p]:.1f}%)"
                    for p, n in res.n_jets.items())
    from gansim.progress import finish

    finish("simulate", f"wrote {res.path}: {sum(res.n_jets.values())} jets in {res.seconds:.1f} s "
                       f"({res.jets_per_s:.1f} jets/s, {workers} worker{'s' if workers > 1 else ''}); {eff}",
           f"gansim train --config lagan --data {res.path}")
    return 0
