"""Argument helpers shared by several sub-commands (config loading, positive counts)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from gansim.config import Config, load_config
from gansim.errors import GansimError


def add_config_args(p: argparse.ArgumentParser, default: str | None = None) -> None:
    """--config FILE and repeatable --set KEY=VALUE."""
    p.add_argument("--config", "-c", default=default, metavar="YAML",
                   help="run config (configs/*.yaml)" + (f"; default {default}" if default else ""))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.lr_g=1e-4 (repeatable; "
                        "`gansim config --list` shows every key)")


def config_from_args(args: argparse.Namespace, extra: list[str] | None = None) -> Config:
    return load_config(args.config, list(args.overrides) + list(extra or []))


_COUNT = re.compile(r"^[0-9][0-9_]*(\.[0-9]*)?([eE]\+?[0-9]+)?$")


def parse_count(text: str, what: str = "events") -> int:
    """Parse a positive whole count: '1e9', '1_000_000', '1000000'; reject 0, negatives, fractions."""
    s = str(text).strip()
    if not _COUNT.match(s):
        raise GansimError(f"--{what}: {text!r} is not a positive whole number (examples: 1000, 1_000_000, 1e9)")
    value = float(s.replace("_", ""))
    if not value.is_integer():
        raise GansimError(f"--{what}: {text!r} is not a whole number")
    if value <= 0:
        raise GansimError(f"--{what}: must be positive, got {text!r}")
    return int(value) if "e" not in s.lower() else int(round(value))


def count_type(what: str) -> Any:
    """argparse type= wrapper around parse_count with an argparse-style error."""
    def conv(text: str) -> int:
        try:
            return parse_count(text, what)
        except GansimError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[1]) from None
    conv.__name__ = what
    return conv
