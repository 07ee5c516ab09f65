"""Showers per second of the built-in calorimeter simulator per particle at 1, 10 and 100 GeV (median of 3 runs).

Usage: .venv/bin/python benchmarks/bench_simulate.py [--repeats 3] [--seconds 1.0] [--out FILE.md]
(default output benchmarks/results/simulate.md).
Writes a Markdown table (and prints it). Each run simulates enough showers to take about --seconds, so the
numbers are steady without making the benchmark long; the last row is the CaloGAN spectrum (uniform 1-100 GeV).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from gansim.sim.calo import PARTICLES, simulate_showers

CASES: tuple[tuple[str, float, float], ...] = (("1 GeV", 1.0, 1.0), ("10 GeV", 10.0, 10.0),
                                                ("100 GeV", 100.0, 100.0), ("1-100 GeV", 1.0, 100.0))


def rate(particle: str, lo: float, hi: float, seconds: float, repeats: int) -> tuple[float, int]:
    """Median showers/s over `repeats` runs, with the shower count sized from a short probe run."""
    t = time.perf_counter()
    simulate_showers(particle, 64, seed=99, energy_range=(lo, hi))
    per = (time.perf_counter() - t) / 64
    n = int(min(20000, max(64, seconds / max(per, 1e-6))))
    rates = []
    for i in range(repeats):
        t = time.perf_counter()
        simulate_showers(particle, n, seed=i, energy_range=(lo, hi))
        rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates), n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3, help="runs per cell, the median is reported (default 3)")
    p.add_argument("--seconds", type=float, default=1.0, help="target seconds per run (default 1.0)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/simulate.md"), help="Markdown output file")
    args = p.parse_args(argv)
    simulate_showers("eplus", 64, seed=0)  # warm-up: imports, page faults
    rows = {particle: [rate(particle, lo, hi, args.seconds, args.repeats) for _, lo, hi in CASES]
            for particle in PARTICLES}
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Built-in calorimeter simulator: showers per second",
        "",
        f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`  ",
        f"Machine: {platform.node()} ({cpu}, {os.cpu_count()} logical CPUs, shared), numpy {np.__version__}, "
        f"one process, median of {args.repeats} runs (showers per run in brackets).",
        "",
        "| particle | " + " | ".join(name for name, _, _ in CASES) + " |",
        "|---|" + "---:|" * len(CASES),
    ]
    for particle, cells in rows.items():
        lines.append(f"| {particle} | " + " | ".join(f"{r:,.0f} ({n})" for r, n in cells) + " |")
    lines += ["", "Cost grows about linearly with energy above a few GeV: the number of energy spots is "
              "Poisson(E / a^2), ~86 spots per GeV for EM showers."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
