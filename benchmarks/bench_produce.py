"""Production throughput and storage: end-to-end vs bare forward, vs the simulator, 1 -> 2 ranks, bytes/event.

    .venv/bin/python benchmarks/bench_produce.py [--events 20000] [--config configs/debug.yaml] [--out FILE.md]

Writes a markdown table (default benchmarks/results/produce.md). Uses a randomly initialised generator of the
given config: speed and compressed size of an untrained generator are representative of the architecture's cost,
not of a trained model's sparsity (trained showers are sparser, so they compress better than shown here).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_gen(path: Path, config: Path, overrides: list[str]) -> Path:
    from gansim.config import load_config
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    cfg = load_config(config, overrides)
    torch.manual_seed(0)
    return save_generator(path, build_generator(cfg), cfg)


def bare_forward(gen: Path, events: int, batch: int) -> float:
    """events/s of z draw + forward_batch + to_file_units alone (no conditioning file, no HDF5)."""
    from gansim.models.artifact import load_generator

    art = load_generator(gen)
    g = torch.Generator().manual_seed(0)
    e = torch.rand(batch, generator=g) * 99 + 1
    art.to_file_units(art.forward_batch(torch.randn(batch, art.latent_dim, generator=g), e), e)  # warm-up
    t = time.perf_counter()
    for s in range(0, events, batch):
        b = min(batch, events - s)
        out = art.forward_batch(torch.randn(b, art.latent_dim, generator=g), e[:b])
        art.to_file_units(out, e[:b])
    return events / (time.perf_counter() - t)


def produce_rate(gen: Path, out: Path, events: int, chunk: int, batch: int, **kw: object) -> dict:
    from gansim.produce.run import make_run, produce

    res = produce(make_run(gen, out, events=events, chunk_size=chunk, batch_size=batch,
                                 progress=False, overwrite=True, **kw))  # type: ignore[arg-type]
    return {"rate": res["made"] / res["seconds"], "bpe": res["bytes"] / res["events"], "seconds": res["seconds"]}


def mpi_rate(gen: Path, out: Path, ranks: int, events: int, chunk: int, batch: int) -> float:
    exe = Path(sys.executable).parent / "mpiexec"
    cmd = [str(exe), "--allow-run-as-root", "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "gansim.cli",
           "produce", "-g", str(gen), "--events", str(events), "--chunk-size", str(chunk), "--batch-size",
           str(batch), "--out", str(out), "--overwrite", "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    m = re.search(r"made now by \d+ rank\(s\) in ([0-9.]+) s", proc.stdout)
    assert m, proc.stdout
    return events / float(m.group(1))


def sim_rates(particles: tuple[str, ...], energies: tuple[float, ...], n: int) -> dict[tuple[str, float], float]:
    from gansim.sim.calo import simulate_showers

    out = {}
    for p in particles:
        for e in energies:
            t = time.perf_counter()
            simulate_showers(p, n, seed=1, energies=np.full(n, e))
            out[(p, e)] = n / (time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "debug.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--sim-events", type=int, default=500)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "produce.md")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-produce-"))
    try:
        gen = make_gen(tmp / "gen.pt", a.config, a.overrides)
        n, c, b = a.events, a.chunk_size, a.batch_size
        bare = bare_forward(gen, n, b)
        e2e = produce_rate(gen, tmp / "p", n, c, b)
        e2e_sync = produce_rate(gen, tmp / "p", n, c, b, overlap=False)
        r1 = mpi_rate(gen, tmp / "m1", 1, n, c, b)
        r2 = mpi_rate(gen, tmp / "m2", 2, n, c, b)
        storage = []
        for comp in ("none", "gzip", "lzf", "zstd", "blosc-lz4"):
            for dt in ("float32", "float16"):
                storage.append((comp, dt, produce_rate(gen, tmp / "s", min(n, 5000), min(c, 5000), b,
                                                       compression=comp, dtype=dt)))
        sims = sim_rates(("eplus", "gamma", "piplus"), (10.0, 50.0, 100.0), a.sim_events)
        lines = [
            "# gansim produce benchmark", "",
            f"Machine: {os.cpu_count()} CPU cores (shared), torch {torch.__version__}, OMP_NUM_THREADS="
            f"{os.environ['OMP_NUM_THREADS']}, config {a.config.name} {' '.join(a.overrides)}; {n} events, "
            f"chunk {c}, batch {b}.", "",
            f"Command: `.venv/bin/python benchmarks/bench_produce.py --events {n} --chunk-size {c} "
            f"--batch-size {b}{''.join(' --set ' + o for o in a.overrides)}`", "",
            "## Throughput (CPU, 1 thread per rank)", "",
            "| what | events/s | vs bare forward |", "|---|---:|---:|",
            f"| bare generator forward (z draw + forward + file units) | {bare:,.0f} | 1.00 |",
            f"| produce end-to-end, shards+gzip, writer thread | {e2e['rate']:,.0f} | {e2e['rate'] / bare:.2f} |",
            f"| produce end-to-end, shards+gzip, synchronous writes | {e2e_sync['rate']:,.0f} | "
            f"{e2e_sync['rate'] / bare:.2f} |",
            f"| mpiexec -n 1 (wall incl. final VDS) | {r1:,.0f} | {r1 / bare:.2f} |",
            f"| mpiexec -n 2 | {r2:,.0f} | {r2 / bare:.2f} (scaling {r2 / r1:.2f}x) |", "",
            "## Speed-up over the built-in simulator (per shower, same CPU, 1 thread)", "",
            "| particle | energy GeV | simulator events/s | produce events/s | speed-up |", "|---|---:|---:|---:|---:|",
        ]
        for (p, e), r in sims.items():
            lines.append(f"| {p} | {e:g} | {r:,.0f} | {e2e['rate']:,.0f} | {e2e['rate'] / r:,.1f}x |")
        lines += ["", "## Bytes per event on disk (shards layout; untrained generator)", "",
                  "| compression | dtype | B/event | 1e9 events | events/s end-to-end |", "|---|---|---:|---:|---:|"]
        for comp, dt, r in storage:
            lines.append(f"| {comp} | {dt} | {r['bpe']:,.0f} | {r['bpe'] * 1e9 / 1e12:,.2f} TB | {r['rate']:,.0f} |")
        best = max(r2, e2e["rate"])
        lines += ["", "## Projection for 1e9 events on this machine", "",
                  f"- 1 rank: {1e9 / e2e['rate'] / 86400:,.2f} days; best measured here ({best:,.0f} ev/s, "
                  f"{os.cpu_count()} cores): {1e9 / best / 86400:,.2f} days",
                  f"- storage with gzip float32: {e2e['bpe'] * 1e9 / 1e12:,.2f} TB "
                  f"({e2e['bpe']:,.0f} B/event; raw float32 is 2,028 B/event)", ""]
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text("\n".join(lines))
        print("\n".join(lines))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
