"""Production throughput and storage: end-to-end vs bare generation per generator size, 1 -> 2 MPI ranks, and
bytes/event against the entropy floor of a trained generator's showers, lossless and with --precision.

    .venv/bin/python benchmarks/bench_produce.py throughput [--events 20000] [--repeats 3] [--threads T]
    .venv/bin/python benchmarks/bench_produce.py mpi [--events 20000] [--repeats 3]
    .venv/bin/python benchmarks/bench_produce.py storage --generator trained.pt [--events 20000]
    .venv/bin/python benchmarks/bench_produce.py precision --generator trained.pt [--precisions bits:7,quantum:1]
    .venv/bin/python benchmarks/bench_produce.py device --device cuda [--batches 4096,65536] [--modes float32,amp]

Each prints a markdown table (paste into benchmarks/results/produce.md with the command). Ratios are measured
within one run, bare and end-to-end interleaved, and the median over --repeats is quoted: the machine is shared.
"bare" = the same ChunkSampler generation (latents, forward, file units, storage dtype) on the same threads,
without compression, hashing or writing.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SIZES = {  # generator sizes (configs/debug.yaml + overrides)
    "debug calogan (30k params)": [],
    "calo-mlp default recipe (512x3)": ["model.name=calo-mlp", "model.gen_channels=512", "model.gen_layers=3",
                                        "model.latent_dim=64", "loss.name=wgan-gp", "model.minibatch_kernels=0"],
    "full calogan (latent 1024, 64 ch)": ["model.latent_dim=1024", "model.gen_channels=64"],
}


def make_gen(path: Path, overrides: list[str]) -> Path:
    import torch

    from gansim.config import load_config
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    cfg = load_config(REPO / "configs" / "debug.yaml", overrides)
    torch.manual_seed(0)
    return save_generator(path, build_generator(cfg), cfg)


def bare_rate(gen: Path, events: int, batch: int, threads: int, device: str = "cpu", amp: bool = False,
              compile: bool = False) -> tuple[float, float]:
    """(events/s, CPU seconds per event) of generation alone through the production path (same pool, threads)."""
    from gansim.models.artifact import load_generator
    from gansim.produce.run import build_plan, make_run
    from gansim.produce.sampler import ChunkSampler

    art = load_generator(gen, device=device)
    plan, spec = build_plan(make_run(gen, "unused", events=events, chunk_size=events, batch_size=batch,
                                     device=device, amp=amp, compile=compile), art)
    s = ChunkSampler(art, plan, spec, amp=amp, compile=compile, threads=threads)
    try:
        for _ in s.batches(0, n=min(events, 2 * batch)):  # warm-up
            pass
        t, cpu = time.perf_counter(), time.process_time()
        for _ in s.batches(0):
            pass
        return events / (time.perf_counter() - t), (time.process_time() - cpu) / events
    finally:
        s.close()


def produce_rate(gen: Path, out: Path, events: int, batch: int, threads: int, **kw: Any) -> dict[str, float]:
    """events/s of the chunk loop, its CPU seconds per event (all threads; robust on a shared machine: on a quiet
    one, CPU-bound throughput is cores / CPU per event) and stored bytes/event."""
    from gansim.produce import hooks
    from gansim.produce.run import make_run, produce

    cpu: dict[str, float] = {}

    def clock(event: str, **info: Any) -> None:  # CPU time of the chunk loop only, not of the set-up
        if event == "chunk":
            cpu.setdefault("start", time.process_time())
        elif event == "finish":
            cpu["end"] = time.process_time()

    hooks.HOOKS.append(clock)
    try:
        res = produce(make_run(gen, out, events=events, batch_size=batch, threads=threads, progress=False,
                               overwrite=True, **kw))
    finally:
        hooks.HOOKS.remove(clock)
    return {"rate": res["made"] / res["seconds"], "bpe": res["bytes"] / res["events"],
            "cpu": (cpu["end"] - cpu["start"]) / res["made"]}


def throughput(a: argparse.Namespace, tmp: Path) -> list[str]:
    lines = ["| generator | compression | bare ev/s | end-to-end ev/s | wall ratio e2e/bare (median; all) | "
             "CPU µs/event bare / e2e | CPU ratio bare/e2e |", "|---|---|---:|---:|---:|---:|---:|"]
    for name, over in SIZES.items():
        gen = make_gen(tmp / "g.pt", over)
        n = a.events if "full" not in name else max(a.events // 8, 2048)
        for comp in a.compressions.split(","):
            bares, e2es, ratios, cpu_b, cpu_e = [], [], [], [], []
            for _ in range(a.repeats):  # interleaved: both see the same background load
                b, cb = bare_rate(gen, n, a.batch_size, a.threads)
                e = produce_rate(gen, tmp / "p", n, a.batch_size, a.threads, compression=comp,
                                 chunk_size=a.chunk_size)
                bares.append(b)
                e2es.append(e["rate"])
                ratios.append(e["rate"] / b)
                cpu_b.append(cb)
                cpu_e.append(e["cpu"])
            cb, ce = statistics.median(cpu_b), statistics.median(cpu_e)
            lines.append(f"| {name} | {comp} | {statistics.median(bares):,.0f} | {statistics.median(e2es):,.0f} | "
                         f"**{statistics.median(ratios):.2f}** ({', '.join(f'{r:.2f}' for r in ratios)}) | "
                         f"{cb * 1e6:,.0f} / {ce * 1e6:,.0f} | **{cb / ce:.2f}** |")
            print(lines[-1], flush=True)
    return lines


def mpi_rate(gen: Path, out: Path, ranks: int, events: int, chunk: int, batch: int) -> float:
    exe = Path(sys.executable).parent / "mpiexec"
    cmd = [str(exe), "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "gansim.cli", "produce", "-g",
           str(gen), "--events", str(events), "--chunk-size", str(chunk), "--batch-size", str(batch), "--out",
           str(out), "--overwrite", "--no-progress", "--threads", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    m = re.search(r"made now by \d+ rank\(s\) in ([0-9.]+) s", proc.stdout)
    assert m, proc.stdout
    return events / float(m.group(1))


def mpi(a: argparse.Namespace, tmp: Path) -> list[str]:
    lines = ["| generator | 1 rank ev/s | 2 ranks ev/s | 2 / 1 (median) | ratios |", "|---|---:|---:|---:|---|"]
    for name, over in SIZES.items():
        if "full" in name:
            continue
        gen = make_gen(tmp / "g.pt", over)
        r1s, r2s, ratios = [], [], []
        for _ in range(a.repeats):
            r1 = mpi_rate(gen, tmp / "m1", 1, a.events, a.events // 8, a.batch_size)
            r2 = mpi_rate(gen, tmp / "m2", 2, a.events, a.events // 8, a.batch_size)
            r1s.append(r1)
            r2s.append(r2)
            ratios.append(r2 / r1)
        lines.append(f"| {name} | {statistics.median(r1s):,.0f} | {statistics.median(r2s):,.0f} | "
                     f"**{statistics.median(ratios):.2f}x** | {', '.join(f'{r:.2f}' for r in ratios)} |")
        print(lines[-1], flush=True)
    return lines


def device(a: argparse.Namespace, tmp: Path) -> list[str]:
    """Bare generation vs end-to-end produce on --device at several batch sizes, float32 / --amp / --amp --compile
    (benchmarks/gpu_check.sh runs this on a GPU; --device cpu rehearses it)."""
    over = SIZES[a.size]
    gen = make_gen(tmp / "g.pt", over)
    lines = [f"Generator: {a.size}; device {a.device}; {a.events:,} events per measurement; compression "
             f"{a.compressions.split(',')[0]}; {a.threads} pool threads.", "",
             "| batch | mode | bare ev/s | end-to-end ev/s | e2e / bare |", "|---:|---|---:|---:|---:|"]
    modes = {"float32": {}, "amp": {"amp": True}, "amp+compile": {"amp": True, "compile": True}}
    for batch in (int(b) for b in a.batches.split(",")):
        for mode in a.modes.split(","):
            kw = modes[mode]
            try:
                b, _ = bare_rate(gen, a.events, batch, a.threads, device=a.device, **kw)
                e = produce_rate(gen, tmp / "d", a.events, batch, a.threads, device=a.device,
                                 compression=a.compressions.split(",")[0], chunk_size=a.events, **kw)["rate"]
                lines.append(f"| {batch:,} | {mode} | {b:,.0f} | {e:,.0f} | **{e / b:.2f}** |")
            except Exception as exc:  # noqa: BLE001 - one failing mode (e.g. compile without a compiler) is a row
                lines.append(f"| {batch:,} | {mode} | failed: {str(exc).splitlines()[0][:80]} | | |")
            print(lines[-1], flush=True)
    return lines


def entropy_floor(arrays: dict[str, np.ndarray], keys: tuple[str, ...]) -> dict[str, float]:
    """Bytes/event an order-0 coder of independent cells could reach, per part:
    mask = sum over cells of the binary entropy of 'cell is zero'; values = for the non-zero float32 values of each
    cell, the empirical entropy of the top byte pair (sign, exponent, 7 mantissa bits) plus 16 bits for the low
    mantissa bytes, measured to be uniform (their empirical entropy is printed as a check)."""
    n = len(arrays[keys[0]])
    mask_bits = value_bits = low_entropy = 0.0
    for key in keys:
        x = arrays[key].reshape(n, -1).astype(np.float32)
        p = (x != 0).mean(axis=0)
        q = np.clip(p, 1e-12, 1 - 1e-12)
        mask_bits += float((-(q * np.log2(q) + (1 - q) * np.log2(1 - q)) * (p > 0) * (p < 1)).sum())
        for c in range(x.shape[1]):
            v = x[:, c][x[:, c] != 0].view(np.uint32)
            if v.size == 0:
                continue
            value_bits += _entropy(v >> 16) * v.size / n + 16 * v.size / n
            low_entropy = max(low_entropy, _entropy(v & 0xFF))
    return {"mask": mask_bits / 8, "values": value_bits / 8, "low_byte_entropy_bits": low_entropy}


def sparse_packed(arrays: dict[str, np.ndarray], keys: tuple[str, ...], rows: int = 256) -> float:
    """B/event of a sparse-aware packing (per block: zero mask bits + the non-zero values shuffled, each zstd -19):
    what a non-CaloGAN layout could store; for comparison only, gansim writes the plain CaloGAN arrays."""
    import zstandard

    from gansim.produce.codec import shuffle

    z = zstandard.ZstdCompressor(level=19)
    n = len(arrays[keys[0]])
    total = 0
    for key in keys:
        x = arrays[key].reshape(n, -1)
        for s in range(0, n, rows):
            b = x[s:s + rows]
            total += len(z.compress(np.packbits(b != 0).tobytes())) + len(z.compress(shuffle(b[b != 0])))
    return total / n


def _entropy(symbols: np.ndarray) -> float:
    _, counts = np.unique(symbols, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def storage(a: argparse.Namespace, tmp: Path) -> list[str]:
    from gansim.models.artifact import load_generator
    from gansim.produce.run import build_plan, make_run
    from gansim.produce.sampler import ChunkSampler

    gen = Path(a.generator)
    art = load_generator(gen)
    plan, spec = build_plan(make_run(gen, "unused", events=a.events, chunk_size=a.events), art)
    s = ChunkSampler(art, plan, spec, threads=a.threads)
    arrays = s.generate(0)
    s.close()
    floor = entropy_floor(arrays, art.kind.event_keys)
    other = sum(arrays[k][0].nbytes for k in arrays if k not in art.kind.event_keys)  # energy, overflow (raw)
    total_floor = floor["mask"] + floor["values"]
    packed = sparse_packed(arrays, art.kind.event_keys)
    lines = [f"Entropy floor of the cells (order-0, independent cells; {a.events:,} events of {gen.name}): mask "
             f"{floor['mask']:.1f} B + non-zero values {floor['values']:.1f} B = **{total_floor:.1f} B/event** "
             f"(low mantissa byte entropy {floor['low_byte_entropy_bits']:.3f} bits of 8: incompressible); the "
             f"energy and overflow datasets add {other} B raw. A sparse-aware packing (mask + non-zero values, zstd "
             f"-19; not the CaloGAN layout, for comparison) stores the cells in {packed:.1f} B/event "
             f"({packed / total_floor:.2f} x floor).", "",
             "| precision | compression | B/event (all datasets) | cells B/event | cells / floor | events/s |",
             "|---|---|---:|---:|---:|---:|"]
    for prec in a.precisions.split(","):
        for comp in a.compressions.split(","):
            r = produce_rate(gen, tmp / "s", a.events, a.batch_size, a.threads, compression=comp, precision=prec,
                             chunk_size=a.events)
            cells = r["bpe"] - _stored_other(tmp / "s", art.kind.event_keys)
            ratio = f"{cells / total_floor:.2f}" if prec == "lossless" else "-"
            lines.append(f"| {prec} | {comp} | {r['bpe']:,.1f} | {cells:,.1f} | {ratio} | {r['rate']:,.0f} |")
            print(lines[-1], flush=True)
    return lines


def precision(a: argparse.Namespace, tmp: Path) -> list[str]:
    """Does --precision leave a trace a classifier finds? Each precision's production (seed 1) is judged by
    `gansim evaluate` against an independent lossless production (seed 2) of the same trained generator; the
    lossless-vs-lossless row is the null reference."""
    from gansim.config import EvalConfig
    from gansim.metrics.evaluation import evaluate
    from gansim.metrics.io import load_sample
    from gansim.produce.run import make_run, produce

    gen = Path(a.generator)
    runs = {}
    for name, prec, seed in [("ref", "lossless", 2), *((p, p, 1) for p in a.precisions.split(","))]:
        out = tmp / f"prec-{len(runs)}"
        res = produce(make_run(gen, out, events=a.events, chunk_size=a.events, seed=seed, precision=prec,
                               compression="zstd", progress=False, overwrite=True))
        runs[name] = (res["dataset"], res["bytes"] / res["events"])
    lines = [f"{a.events:,} events of {gen.name} per sample, zstd; judged against an independent lossless sample "
             "(seed 2) by the DNN classifiers of `gansim evaluate` (±3σ null band from the sample sizes)", "",
             "| precision | B/event | AUC high level (±3σ) | AUC low level (±3σ) | inside null band |",
             "|---|---:|---:|---:|---|"]
    ref = load_sample(runs["ref"][0])
    for name, (dataset, bpe) in runs.items():
        if name == "ref":
            continue
        rep = evaluate(ref, load_sample(dataset), tmp / f"report-{name.replace(':', '_')}", EvalConfig(seed=0),
                       {}, None, progress=False)
        c = rep["classifier"]
        inside = all(abs(c[k]["auc"] - 0.5) <= 3 * c[k]["auc_null_sigma"] for k in ("high_level", "low_level"))
        auc = [f"{c[k]['auc']:.3f} (±{3 * c[k]['auc_null_sigma']:.3f})" for k in ("high_level", "low_level")]
        lines.append(f"| {name} | {bpe:,.1f} | {auc[0]} | {auc[1]} | {'yes' if inside else '**no**'} |")
        print(lines[-1], flush=True)
    return lines


def _stored_other(out: Path, cells: tuple[str, ...]) -> float:
    """Stored bytes/event of everything but the cell datasets (energies, overflow, HDF5 metadata)."""
    import h5py

    total = events = 0
    for path in out.glob("chunks/*/chunk_*.h5"):
        with h5py.File(path, "r") as f:
            events += f[cells[0]].shape[0]
            total += path.stat().st_size - sum(f[k].id.get_storage_size() for k in cells)
    return total / events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("section", nargs="?", default="throughput",
                    choices=("throughput", "mpi", "storage", "precision", "device"))
    ap.add_argument("--device", default="cpu", help="device: cpu or cuda")
    ap.add_argument("--size", default="full calogan (latent 1024, 64 ch)", choices=list(SIZES))
    ap.add_argument("--batches", default="4096,16384,65536", help="device: batch sizes")
    ap.add_argument("--modes", default="float32,amp,amp+compile", help="device: float32, amp, amp+compile")
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--chunk-size", type=int, default=5000)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=0, help="pool threads (0 = all cores)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compressions", default="gzip,zstd")
    ap.add_argument("--precisions", default="lossless,bits:10,bits:7,quantum:1")
    ap.add_argument("--generator", default="", help="storage: a trained generator artefact")
    ap.add_argument("--out", type=Path, default=None, help="also write the table to this file")
    a = ap.parse_args()
    if a.threads == 0:
        a.threads = len(os.sched_getaffinity(0))
    tmp = Path(tempfile.mkdtemp(prefix="bench-produce-"))
    try:
        import torch

        print(f"# {a.section}: {os.cpu_count()} cores (shared), torch {torch.__version__}, threads {a.threads}, "
              f"batch {a.batch_size}, events {a.events}, repeats {a.repeats}", flush=True)
        table = {"throughput": throughput, "mpi": mpi, "storage": storage, "precision": precision,
                 "device": device}[a.section](a, tmp)
        print("\n".join(table))
        if a.out:
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(f"Command: `{' '.join(sys.argv)}`\n\n" + "\n".join(table) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
