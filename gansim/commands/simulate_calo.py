"""`gansim simulate calo`: reference CaloGAN-format showers from the built-in Pb/LAr shower simulator."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gansim.commands.common import check_output_file, count_type
from gansim.errors import GansimError
from gansim.seeding import check_seed

PARTICLES = ("eplus", "gamma", "piplus")  # kept in sync with gansim.sim.calo.PARTICLES (tested)

DESCRIPTION = """\
Simulate electromagnetic (e+, gamma) or hadronic (pi+) showers in the CaloGAN Pb/LAr calorimeter and write
a CaloGAN-format HDF5 file: energy (N,1) GeV, layer_0 (N,3,96), layer_1 (N,12,12), layer_2 (N,12,6) and
overflow (N,3), cells in MeV of visible (LAr) energy. The simulator stands in for Geant4: GFlash
(Grindhammer & Peters) EM profiles with correlated fluctuations, Molière-scaled lateral profiles, an
exponential first interaction, fluctuating EM fraction and e/h > 1 for pions, stochastic energy spots
(cost grows with energy), cell noise and zero suppression. The same --seed gives the same file."""


def _energy_range(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise GansimError(f"--energy: expected MIN,MAX in GeV (e.g. 1,100), got {text!r}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise GansimError(f"--energy: {text!r} is not two numbers MIN,MAX in GeV") from None
    from gansim.sim.calo import check_energy_range

    try:
        return check_energy_range(lo, hi)
    except GansimError as exc:
        raise GansimError(f"--energy: {exc}") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calo", help="calorimeter showers (e+, gamma, pi+) in the CaloGAN format",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--particle", "-p", required=True, choices=PARTICLES,
                   help="incident particle: eplus (positron), gamma (photon) or piplus (charged pion)")
    p.add_argument("--events", "-n", required=True, type=count_type("events"), metavar="N",
                   help="number of showers (e.g. 10000, 1e5, 100_000)")
    p.add_argument("--out", "-o", required=True, metavar="FILE",
                   help="output HDF5 file (written atomically; an existing file is replaced only when gansim "
                        "simulate wrote it)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed (non-negative); same seed and options give an identical file (default 0)")
    p.add_argument("--energy", default="1,100", metavar="MIN,MAX",
                   help="incident energy range in GeV, uniform; MIN = MAX gives a fixed energy; "
                        "within 0.1..1000 (default 1,100 as in CaloGAN)")
    p.add_argument("--batch-size", type=count_type("batch-size"), default=1024, metavar="B",
                   help="events per progress-bar step; does not change the result (default 1024)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_seed(args.seed)
    energy_range = _energy_range(args.energy)
    out = Path(args.out)
    check_output_file(out)
    from gansim.sim.calo import simulate_to_file

    t0 = time.perf_counter()
    path = simulate_to_file(out, args.particle, args.events, args.seed, energy_range,
                            progress=not args.no_progress, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    from gansim.progress import finish

    finish("simulate", f"wrote {args.events} {args.particle} showers ({energy_range[0]:g}-{energy_range[1]:g} GeV, "
                       f"seed {args.seed}) to {path} in {dt:.1f} s ({args.events / dt:.0f} showers/s)",
           f"gansim train --config calogan-{args.particle} --data {path}")
    return 0
