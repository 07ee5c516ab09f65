"""Training throughput under Ray Train (1 and 2 CPU workers) and generator forward throughput by batch size.

    .venv/bin/python benchmarks/bench_train.py [--epochs 4] [--steps 20] [--out benchmarks/results/train.md]

Training: configs/calogan-eplus.yaml scaled down for a 2-core CPU (overrides listed in the output), data from
the built-in simulator, samples/s = global real events consumed per second in the training loop (rank 0
wall clock per epoch, excluding validation and checkpointing), median over epochs after the first.
Generator forward: randomly initialised generators of the debug config and of the paper-size calogan-eplus
config (29.7M parameters), eval mode, no grad, 1 thread, median of repeated timed calls.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TRAIN_OVERRIDES = ["model.latent_dim=128", "model.gen_channels=16", "model.disc_channels=16",
                   "model.minibatch_kernels=5", "model.minibatch_dim=5", "train.batch_size=64",
                   "train.val_events=200", "train.log_every=1000"]


def train_throughput(data: Path, workers: int, epochs: int, steps: int, root: Path) -> tuple[float, list[float]]:
    from gansim.config import load_config
    from gansim.train.checkpoint import STATE_FILE, list_checkpoints, load_state
    from gansim.train.launch import fit

    out = root / f"w{workers}"
    cfg = load_config(REPO / "configs/calogan-eplus.yaml", [
        *TRAIN_OVERRIDES, f"data.path={data}", f"run.out_dir={out}", f"train.workers={workers}",
        f"train.epochs={epochs}", f"train.steps_per_epoch={steps}", f"train.num_to_keep={epochs}"])
    fit(cfg, resume=False, verbose=False)
    # Every epoch's checkpoint carries that epoch's metrics (rank 0's samples/s of the global batch).
    rates = [float(load_state(c / STATE_FILE)["metrics"]["samples_per_s"]) for c in list_checkpoints(out)]
    return statistics.median(rates[1:] if len(rates) > 1 else rates), rates


def forward_throughput(config: str, batch: int, repeats: int) -> float:
    from gansim.config import load_config
    from gansim.models.registry import build_generator

    cfg = load_config(REPO / config)
    g = build_generator(cfg).eval()
    z = torch.randn(batch, cfg.model.latent_dim)
    e = torch.rand(batch, 1) * 99 + 1
    times = []
    with torch.no_grad():
        g(z, e)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            g(z, e)
            times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=20, help="iterations per epoch")
    ap.add_argument("--events", type=int, default=6000, help="simulated training events")
    ap.add_argument("--out", default=str(REPO / "benchmarks/results/train.md"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    import ray

    from gansim.sim.calo import simulate_to_file

    lines: list[str] = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = simulate_to_file(root / "eplus.h5", "eplus", args.events, seed=1, progress=False)
        ray.init(num_cpus=4, object_store_memory=128 * 1024**2, include_dashboard=False,
                 _node_ip_address="127.0.0.1", logging_level="warning", num_gpus=0)
        try:
            train = {w: train_throughput(data, w, args.epochs, args.steps, root) for w in (1, 2)}
        finally:
            ray.shutdown()
    fwd = {(c, b): forward_throughput(c, b, 20 if b < 1024 else 5)
           for c in ("configs/debug.yaml", "configs/calogan-eplus.yaml") for b in (1, 128, 1024)}

    cpu = platform.processor() or platform.machine()
    lines += ["# gansim train benchmark", "",
              f"Machine: {os.cpu_count()} CPU cores (shared with other jobs), {cpu}, torch {torch.__version__}, "
              f"OMP_NUM_THREADS=1 per worker; 1-minute load average {load_before:.1f} before and "
              f"{os.getloadavg()[0]:.1f} after the run (other jobs share the cores, so 2-worker scaling is a lower "
              "bound).", "",
              "Command: `.venv/bin/python benchmarks/bench_train.py "
              f"--epochs {args.epochs} --steps {args.steps} --events {args.events}`", "",
              "## Training throughput (Ray Train TorchTrainer, DDP over gloo, CPU)", "",
              "Config: `configs/calogan-eplus.yaml` with `" + " ".join(TRAIN_OVERRIDES) +
              f"`, {args.steps} iterations/epoch, {args.epochs} epochs; samples/s = real events per second "
              "(global), median over epochs 2..N.", "",
              "| workers | global batch | samples/s (median) | per-epoch samples/s | scaling |",
              "|---:|---:|---:|---|---:|"]
    base = train[1][0]
    for w, (med, rates) in train.items():
        lines.append(f"| {w} | {64 * w} | {med:,.0f} | {', '.join(f'{r:,.0f}' for r in rates)} | "
                     f"{med / base:.2f}x |")
    lines += ["", "## Generator forward throughput (eval, no grad, 1 thread)", "",
              "| config | G parameters | batch 1 showers/s | batch 128 showers/s | batch 1024 showers/s |",
              "|---|---:|---:|---:|---:|"]
    from gansim.config import load_config
    from gansim.models.registry import build_generator, count_parameters

    for c in ("configs/debug.yaml", "configs/calogan-eplus.yaml"):
        n = count_parameters(build_generator(load_config(REPO / c)))
        lines.append(f"| {c} | {n:,} | " + " | ".join(f"{fwd[(c, b)]:,.0f}" for b in (1, 128, 1024)) + " |")
    text = "\n".join(lines) + "\n"
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
