"""`gansim inspect FILE`: validate a CaloGAN / jet-image file against the data contract and summarise it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gansim.data.schema import validate
from gansim.kinds import get_kind


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="validate an HDF5 file and print a summary",
        description="Validate FILE against the CaloGAN (energy, layer_0..2, overflow) or LAGAN jet-image "
                    "(image, signal, ...) contract: keys, shapes, dtypes, NaN/inf, negative energies, empty "
                    "files. Prints format, number of events, energy range, per-layer mean energy and sparsity. "
                    "Exit 0 when valid, 2 with one error line otherwise.")
    p.add_argument("file", help="HDF5 file (a production run's DIR/dataset.h5 works too)")
    p.add_argument("--deep", action="store_true",
                   help="also verify the checksums of every chunk listed in a production run's manifest.json")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    summary = validate(args.file)
    deep = None
    if args.deep:
        from gansim.produce.verify import deep_verify

        deep = deep_verify(Path(args.file))
    if args.json:
        out = dict(vars(summary))
        if deep is not None:
            out["deep"] = deep
        print(json.dumps(out, indent=2, default=str))
        return 0
    kind = get_kind(summary.format)
    print(f"file       {summary.path}")
    print(f"format     {kind.format_name}{' (virtual dataset)' if summary.virtual else ''}")
    print(f"events     {summary.n_events}")
    print(f"energy     {summary.energy_range[0]:.3f} .. {summary.energy_range[1]:.3f} {kind.range_unit}")
    for layer, mean in summary.layer_mean.items():
        print(f"{layer:<10} mean sum {mean:10.2f} {kind.summary_unit}   "
              f"empty cells {100 * summary.layer_sparsity[layer]:5.1f}%")
    for k in ("generator", "version", "particle", "seed", "config_hash"):
        if k in summary.attrs:
            print(f"{k:<10} {summary.attrs[k]}")
    if deep is not None:
        print(f"checksums  {deep['chunks_verified']} chunks verified OK")
    print("valid")
    return 0
