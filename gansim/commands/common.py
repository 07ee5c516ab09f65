"""Argument helpers shared by several sub-commands (config loading, positive counts)."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from gansim.config import MAX_EVENTS, Config, load_config
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
    """Parse a positive whole count up to MAX_EVENTS: '1e9', '1_000_000', '1000000'; reject 0, negatives, fractions.

    MAX_EVENTS is only the outer bound every count shares; each command bounds its counts further by what its
    plan, memory and disk allow, and says which bound it hit.
    """
    s = str(text).strip()
    if not _COUNT.match(s):
        raise GansimError(f"--{what}: {text!r} is not a positive whole number (examples: 1000, 1_000_000, 1e9)")
    value = float(s.replace("_", ""))
    if not value.is_integer():
        raise GansimError(f"--{what}: {text!r} is not a whole number")
    if value <= 0:
        raise GansimError(f"--{what}: must be positive, got {text!r}")
    if value > MAX_EVENTS:
        raise GansimError(f"--{what}: {text} is above the maximum {MAX_EVENTS:.0e}")
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


def check_output_file(path: Path, what: str = "--out") -> None:
    """Fail early, before any simulation, if the output cannot be written (probe file in the directory), or if it
    would replace a file that gansim simulate did not write (a user's data is never overwritten)."""
    from gansim.data.schema import written_by_gansim

    if path.is_dir():
        raise GansimError(f"{what}: {path} is a directory; give a file name such as {path}/showers.h5")
    if path.is_symlink() and not path.exists():
        raise GansimError(f"{what}: {path} is a dangling or looping symbolic link; remove it or choose another name")
    if path.exists() and not written_by_gansim(path):
        raise GansimError(f"{what}: {path} exists and was not written by gansim simulate; gansim replaces only its "
                          "own files: remove it or choose another name")
    if path.exists() and not os.access(path, os.W_OK):
        raise GansimError(f"{what}: {path} exists and is not writable")
    parent = path.parent
    for anc in (parent, *parent.parents):
        if anc.exists():
            if not anc.is_dir():
                raise GansimError(f"{what}: {anc} is a file, not a directory")
            break
    probe = parent / f".{path.name}.probe-{os.getpid()}"
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe.open("wb").close()
        probe.unlink()
    except OSError as exc:
        raise GansimError(f"{what}: cannot write in {parent} ({exc.strerror or exc})") from None
