"""`gansim simulate calo` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from gansim.errors import GansimError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calo", help="(not yet available)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise GansimError("'simulate calo' is not available yet")
