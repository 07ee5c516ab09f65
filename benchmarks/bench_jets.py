"""Accepted jets per second of `gansim simulate jets` per process and worker count (Pythia8 + FastJet)."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

from gansim.sim.jets import simulate_jets


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--events", type=int, default=200, help="accepted jets per process and run (default: 200)")
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to try (default: 1 2)")
    p.add_argument("--chunk-size", type=int, default=50, help="jets per work unit (default: 50)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for process in ("wprime", "qcd"):
            for w in args.workers:
                res = simulate_jets(Path(tmp) / f"{process}.h5", process, args.events, seed=1, workers=w,
                                    chunk_size=args.chunk_size, progress=False)
                rows.append({"process": process, "workers": w, "jets": args.events, "seconds": round(res.seconds, 2),
                             "jets_per_s": round(res.jets_per_s, 2),
                             "acceptance": round(args.events / res.events_tried[process], 4)})
    print(f"# simulate jets on {platform.node()} ({platform.processor() or platform.machine()})")
    print("| process | workers | jets | seconds | jets/s | acceptance |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['process']} | {r['workers']} | {r['jets']} | {r['seconds']} | {r['jets_per_s']} | "
              f"{100 * r['acceptance']:.1f}% |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
