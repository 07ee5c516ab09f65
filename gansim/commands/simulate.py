"""`gansim simulate {calo,jets}`: reference training data from the built-in simulators."""

from __future__ import annotations

import argparse

from gansim.commands import simulate_calo, simulate_jets


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="generate reference data (calo showers, jet images)",
                       description="Generate reference training data in the CaloGAN or LAGAN format.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    simulate_calo.register(kinds)
    simulate_jets.register(kinds)
