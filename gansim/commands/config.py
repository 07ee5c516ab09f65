"""`gansim config`: list every config key with its default, or print a resolved config."""

from __future__ import annotations

import argparse

import yaml

from gansim.commands.common import add_config_args, config_from_args
from gansim.config import describe_fields


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config", help="show config keys/defaults or a resolved config",
                       description="Print the resolved config (YAML + --set overrides), or with --list every "
                                   "key, its default and meaning.")
    add_config_args(p)
    p.add_argument("--list", action="store_true", help="list every key with default and help")
    p.add_argument("--shipped", action="store_true",
                   help="list the configs shipped with gansim (usable by name: --config calogan-eplus)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.shipped:
        from gansim.paths import list_shipped_configs, shipped_config

        for name in list_shipped_configs():
            first = (shipped_config(name).read_text().splitlines() or [""])[0].lstrip("# ")  # type: ignore[union-attr]
            print(f"{name:<22} {first}")
        return 0
    if args.list:
        rows = describe_fields()
        width = max(len(k) for k, _, _ in rows)
        for key, default, help_ in rows:
            print(f"{key:<{width}}  {default!s:<14}  {help_}")
        return 0
    cfg = config_from_args(args)
    print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
    return 0
