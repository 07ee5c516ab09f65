"""Benchmark: vectorised LocallyConnected2d against im2col variants and a per-position loop, forward + backward.

    .venv/bin/python benchmarks/bench_locally_connected.py --batch 256 --repeats 7 --threads 1 \
        --out benchmarks/results/locally_connected.md
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from gansim.models.layers import LocallyConnected2d, locally_connected_naive

# (label, in_ch, out_ch, in_size, kernel, stride): layers of the paper-size CaloGAN (gen_channels = disc_channels = 64)
CASES = [
    ("G layer_0 stream LC1 (16->6, 5x98, k2)", 16, 6, (5, 98), 2, 1),
    ("D layer_0 LC1 (64->16, 5x98, k3, s1x2)", 64, 16, (5, 98), 3, (1, 2)),
    ("D layer_1 LC1 (64->16, 14x14, k3, s1x2)", 64, 16, (14, 14), 3, (1, 2)),
]


def im2col_weight(layer: LocallyConnected2d) -> torch.Tensor:
    """The layer's weight with the in-patch index reordered (kh, kw, C) -> (C, kh, kw), as F.unfold orders it."""
    (kh, kw), c, o = layer.kernel_size, layer.in_channels, layer.out_channels
    w = layer.weight.detach().view(-1, kh, kw, c, o).permute(0, 3, 1, 2, 4).reshape(-1, c * kh * kw, o)
    return w.contiguous().requires_grad_(True)


def im2col_bmm(x: torch.Tensor, layer: LocallyConnected2d, w: torch.Tensor) -> torch.Tensor:
    """Alternative: F.unfold (B, K, L) -> permute to (L, B, K) -> bmm; the transpose copy dominates."""
    cols = F.unfold(x, layer.kernel_size, padding=layer.padding, stride=layer.stride)
    out = torch.bmm(cols.permute(2, 0, 1), w).permute(1, 2, 0)
    return out.reshape(x.shape[0], layer.out_channels, *layer.out_size) + layer.bias


def im2col_einsum(x: torch.Tensor, layer: LocallyConnected2d, w: torch.Tensor) -> torch.Tensor:
    """Alternative: F.unfold + einsum (torch picks the contraction order)."""
    cols = F.unfold(x, layer.kernel_size, padding=layer.padding, stride=layer.stride)
    out = torch.einsum("bkl,lko->bol", cols, w).reshape(x.shape[0], layer.out_channels, *layer.out_size)
    return out + layer.bias


def time_round_robin(impls: dict[str, Callable[[], torch.Tensor]], params: list[torch.Tensor],
                     repeats: int) -> dict[str, tuple[float, float]]:
    """Median (CPU ms, wall ms) per forward + backward; implementations alternate so machine load hits all alike.

    CPU time (process_time) is the robust figure on a shared machine when running one thread.
    """
    cpu: dict[str, list[float]] = {n: [] for n in impls}
    wall: dict[str, list[float]] = {n: [] for n in impls}
    for i in range(repeats + 1):  # round 0 warms up
        for name, fn in impls.items():
            for p in params:
                p.grad = None
            c0, t0 = time.process_time(), time.perf_counter()
            fn().square().mean().backward()
            if i:
                cpu[name].append((time.process_time() - c0) * 1e3)
                wall[name].append((time.perf_counter() - t0) * 1e3)
    return {n: (statistics.median(cpu[n]), statistics.median(wall[n])) for n in impls}


def bench_case(cin: int, cout: int, size: tuple[int, int], k: int, s: int | tuple[int, int], batch: int,
               repeats: int) -> tuple[int, dict[str, tuple[float, float]]]:
    """Median ms per forward+backward of each implementation on one layer shape."""
    layer = LocallyConnected2d(cin, cout, size, k, stride=s)
    x = torch.randn(batch, cin, *size, requires_grad=True)
    w_im2col = im2col_weight(layer)
    params = [x, w_im2col, *layer.parameters()]
    impls = {"gansim": lambda: layer(x), "unfold+bmm": lambda: im2col_bmm(x, layer, w_im2col),
             "unfold+einsum": lambda: im2col_einsum(x, layer, w_im2col),
             "naive loop": lambda: locally_connected_naive(x, layer)}
    with torch.no_grad():
        ref = impls["naive loop"]()
        for name, fn in impls.items():  # all four compute the same layer
            torch.testing.assert_close(fn(), ref, rtol=1e-4, atol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
    return layer.out_size[0] * layer.out_size[1], time_round_robin(impls, params, repeats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256, help="batch size (CaloGAN paper: 256)")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats per implementation (median reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    ap.add_argument("--out", type=Path, default=None, help="write a Markdown table here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    rows = []
    for label, cin, cout, size, k, s in CASES:
        positions, med = bench_case(cin, cout, size, k, s, args.batch, args.repeats)
        rows.append((label, positions, med))
        print(f"{label}: {positions} positions, CPU ms: " + ", ".join(f"{n} {v[0]:.1f}" for n, v in med.items())
              + f"; speed-up vs loop {med['naive loop'][0] / med['gansim'][0]:.1f}x", flush=True)

    if args.out:
        cmd = "python benchmarks/bench_locally_connected.py " + " ".join(sys.argv[1:] if argv is None else argv)
        lines = [
            "# LocallyConnected2d: vectorised vs per-position loop",
            "",
            f"Command: `{cmd}`  ",
            f"Machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
            f"{args.threads} thread(s), batch {args.batch}. Median of {args.repeats} forward+backward passes, "
            "implementations interleaved; CPU ms (process time, robust on a shared machine) / wall ms.",
            "",
            "| layer | positions | gansim: per-offset bmm | unfold+bmm | unfold+einsum | naive loop "
            "| speed-up vs loop (CPU) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label, positions, med in rows:
            cells = " | ".join(f"{med[n][0]:.1f} / {med[n][1]:.1f}" for n in ("gansim", "unfold+bmm",
                                                                            "unfold+einsum", "naive loop"))
            lines.append(f"| {label} | {positions} | {cells} | {med['naive loop'][0] / med['gansim'][0]:.1f}x |")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
