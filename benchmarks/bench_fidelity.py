"""Fidelity benchmark: train a recipe at a fixed budget on simulator data, evaluate it on independent held-out
events, and append one row to benchmarks/results/fidelity.md (all numbers and the learning curve go to
benchmarks/results/fidelity/<name>.json).

    python benchmarks/bench_fidelity.py --config calo-mlp-eplus --particle eplus --epochs 60 --name calo-mlp-60
    python benchmarks/bench_fidelity.py --config demo --particle eplus --epochs 10 --name demo-baseline
    python benchmarks/bench_fidelity.py --generator eplus --particle eplus --name pretrained-eplus   # no training

Training runs in-process through gansim.train.loop.train_local (the same loop Ray Train runs, without Ray), so the
benchmark also runs where only torch and h5py are installed (e.g. a GPU node: --device cuda). Training and
reference files are simulated once and cached by (particle, events, seed) in --data-dir; the two seeds differ,
so the reference is independent of the training data.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TABLE = RESULTS / "fidelity.md"
HEADER = ("| date | name | recipe | train / ref events | steps (samples seen) | train wall | machine | AUC high "
          "DNN / trees (±3σ) | AUC low (±3σ) | mean sep. power | worst features | response / resolution worst "
          "decile (jets: W′ mass peak gen vs ref) | gen. ms/shower/core | command |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")


def machine(device: str) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if device.startswith("cuda"):
        import torch

        return f"{torch.cuda.get_device_name(0)} + {os.cpu_count()} CPU cores"
    return f"{os.cpu_count()} cores {cpu}"


def simulated(particle: str, n: int, seed: int, data_dir: Path) -> Path:
    """The cached simulator file for (particle, n, seed); simulated on first use."""
    path = data_dir / f"{particle}-{n}-seed{seed}.h5"
    if path.is_file():
        return path
    print(f"bench: simulating {n} {particle} events (seed {seed}) -> {path}", flush=True)
    if particle == "jets":
        from gansim.sim.jets import simulate_jets

        simulate_jets(path, "both", n, seed=seed, workers=os.cpu_count() or 1, progress=False)
    else:
        from gansim.sim.calo import simulate_to_file

        simulate_to_file(path, particle, n, seed, progress=False)
    return path


def deciles(ref: dict[str, np.ndarray], gen: dict[str, np.ndarray]) -> dict[str, list[float]]:
    """Per incident-energy decile: gen/ref ratio of the mean response and of the resolution sigma(r)/<r>."""
    from gansim.metrics.calo_features import calo_features
    from gansim.metrics.distances import energy_bin_edges, response_resolution

    edges = energy_bin_edges(ref["energy"], 10, spacing="quantile")
    fr, fg = calo_features(ref), calo_features(gen)
    r = response_resolution(ref["energy"], fr["E_tot"], edges)
    g = response_resolution(gen["energy"], fg["E_tot"], edges)
    return {"e_lo": r["e_lo"], "e_hi": r["e_hi"],
            "response_ratio": [b / a for a, b in zip(r["response"], g["response"], strict=True)],
            "resolution_ratio": [b / a for a, b in zip(r["resolution"], g["resolution"], strict=True)]}


def evaluate_generator(generator: Path | str, ref_path: Path, out: Path, seed: int, classifier_events: int = 0,
                       boosted: bool = True, device: str = "cpu") -> dict[str, Any]:
    """`gansim evaluate` on the reference's conditions; returns the report plus decile ratios."""
    from gansim.api import generated_sample
    from gansim.config import EvalConfig
    from gansim.metrics.evaluation import evaluate
    from gansim.metrics.io import load_sample
    from gansim.models.artifact import load_generator

    ref = load_sample(ref_path, classifier_events)
    art = load_generator(generator, device=device)
    gen, info = generated_sample(art, ref, seed=seed)  # the sample `gansim evaluate --generator` judges
    rep = evaluate(ref, gen, out, EvalConfig(seed=seed, boosted_trees=boosted), info, art, progress=False)
    if "energy" in ref.data:  # response and resolution exist for showers only
        rep["deciles"] = deciles(ref.data, gen.data)
    return rep


def learning_curve(run_dir: Path, cfg: Any, ref_path: Path, points: int, seed: int, work: Path) -> list[dict]:
    """AUCs and mean separation power at `points` checkpoints (10k reference events, DNN judges only)."""
    from gansim.train.checkpoint import list_checkpoints, load_state
    from gansim.train.export import export_checkpoint

    ckpts = list_checkpoints(run_dir)
    if not ckpts or points <= 0:
        return []
    pick = sorted({ckpts[int(round(i))] for i in np.linspace(0, len(ckpts) - 1, min(points, len(ckpts)))})
    rows = []
    per_step = cfg.train.batch_size * cfg.train.n_critic
    for c in pick:
        gen_path, _ = export_checkpoint(c, work / f"{c.name}.pt")
        rep = evaluate_generator(gen_path, ref_path, work / c.name, seed, classifier_events=10_000, boosted=False)
        step = int(load_state(c / "state.pt")["step"])
        cls = rep["classifier"]
        rows.append({"checkpoint": c.name, "step": step, "samples_seen": step * per_step,
                     "auc_high": cls["high_level"]["auc"], "auc_low": cls["low_level"]["auc"],
                     "separation_power_mean": rep["physics_summary"]["separation_power_mean"]})
        print(f"bench: curve {c.name} step {step}: AUC high {rows[-1]['auc_high']:.3f} low {rows[-1]['auc_low']:.3f} "
              f"sep {rows[-1]['separation_power_mean']:.4f}", flush=True)
    return rows


def generation_speed(generator: Path | str, events: int, device: str) -> float:
    """ms per shower per CPU core (1 thread), end to end into compressed HDF5 shards (gansim produce)."""
    import torch

    from gansim.produce.run import make_run, produce

    torch.set_num_threads(1)
    out = Path(tempfile.mkdtemp(prefix="bench-speed-"))
    try:
        t0 = time.perf_counter()
        produce(make_run(generator, out / "run", events=events, chunk_size=min(events, 20_000), batch_size=1024,
                         device=device, progress=False, extrapolate=True))
        return (time.perf_counter() - t0) * 1e3 / events
    finally:
        shutil.rmtree(out, ignore_errors=True)


def train(args: argparse.Namespace, train_path: Path, work: Path) -> tuple[Path, Any, dict[str, Any]]:
    """Train the recipe in-process at the fixed budget; returns (generator path, config, training facts)."""
    import torch

    from gansim.config import load_config
    from gansim.train.export import export_checkpoint
    from gansim.train.loop import train_local

    over = [f"data.path={train_path}", f"run.out_dir={work / 'train'}", f"train.epochs={args.epochs}",
            f"data.particle={args.particle}", *args.set]
    if args.steps_per_epoch:
        over.append(f"train.steps_per_epoch={args.steps_per_epoch}")
    if args.device.startswith("cuda"):
        over.append("train.gpus_per_worker=1")
    cfg = load_config(args.config, over)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res = train_local(cfg, work / "train")
    seconds = time.perf_counter() - t0
    gen, extra = export_checkpoint(work / "train", work / "generator.pt", best=args.best)
    facts = {"epochs": res["epoch"], "steps": res["step"], "train_seconds": seconds,
             "samples_seen": res["step"] * cfg.train.batch_size * cfg.train.n_critic,
             "val_fidelity": [r.get("fidelity") for r in res["reports"]], "exported_epoch": extra["epoch"],
             "exported": "best validation fidelity" if args.best else "last epoch"}
    return gen, cfg, facts


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="calo-mlp-eplus", help="recipe: shipped config name or YAML path")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--generator", default=None, help="evaluate this artefact (path or shipped name); no training")
    p.add_argument("--particle", default="eplus", choices=("eplus", "gamma", "piplus", "jets"))
    p.add_argument("--train-events", type=int, default=50_000)
    p.add_argument("--ref-events", type=int, default=20_000)
    p.add_argument("--train-seed", type=int, default=101)
    p.add_argument("--ref-seed", type=int, default=202)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--steps-per-epoch", type=int, default=0)
    p.add_argument("--curve", type=int, default=5, help="learning-curve points (checkpoints evaluated)")
    p.add_argument("--threads", type=int, default=2, help="torch threads for training")
    p.add_argument("--device", default="cpu")
    p.add_argument("--best", action="store_true",
                   help="export the checkpoint with the best validation fidelity (gansim export --best), not the last")
    p.add_argument("--speed-events", type=int, default=20_000)
    p.add_argument("--seed", type=int, default=0, help="evaluation seed")
    p.add_argument("--name", required=True, help="row name (also the JSON file name)")
    p.add_argument("--note", default="", help="free text for the row (e.g. what changed)")
    p.add_argument("--ship", default=None, metavar="NAME",
                   help="also write the generator, with this row's numbers as metadata, to gansim/pretrained/NAME.pt")
    p.add_argument("--data-dir", type=Path, default=ROOT / "runs" / "bench-fidelity" / "data")
    p.add_argument("--work", type=Path, default=None, help="run directory (default runs/bench-fidelity/<name>)")
    args = p.parse_args()
    work = args.work or ROOT / "runs" / "bench-fidelity" / args.name
    work.mkdir(parents=True, exist_ok=True)
    ref_path = simulated(args.particle, args.ref_events, args.ref_seed, args.data_dir)
    facts: dict[str, Any] = {}
    cfg = None
    if args.generator:
        gen: Path | str = args.generator
    else:
        train_path = simulated(args.particle, args.train_events, args.train_seed, args.data_dir)
        gen, cfg, facts = train(args, train_path, work)
    rep = evaluate_generator(gen, ref_path, work / "report", args.seed, device=args.device)
    curve = learning_curve(work / "train", cfg, ref_path, args.curve, args.seed, work / "curve") if cfg else []
    speed = generation_speed(gen, args.speed_events, args.device)
    record = {"name": args.name, "date": time.strftime("%Y-%m-%d"), "command": " ".join(["python", *sys.argv]),
              "machine": machine(args.device), "config": args.config if not args.generator else None,
              "set": args.set, "generator": str(args.generator or gen), "particle": args.particle,
              "train_events": args.train_events, "ref_events": args.ref_events, "train_seed": args.train_seed,
              "ref_seed": args.ref_seed, **facts,
              "classifier": rep["classifier"], "physics_summary": rep["physics_summary"],
              "features": {k: v["separation_power"] for k, v in rep["features"].items()},
              "deciles": rep.get("deciles"), "mass_peak": rep.get("mass_peak"), "curve": curve,
              "ms_per_shower_per_core": speed, "note": args.note}
    (RESULTS / "fidelity").mkdir(parents=True, exist_ok=True)
    (RESULTS / "fidelity" / f"{args.name}.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    append_row(record)
    keep_figures(work / "report", RESULTS / "fidelity" / args.name)
    print(f"bench: {row(record)}")
    if args.ship:
        print(f"bench: shipped {ship(gen, args.ship, record)}")
    return 0


def ship(generator: Path | str, name: str, record: dict[str, Any]) -> Path:
    """Re-save the artefact as gansim/pretrained/NAME.pt with how it was made and what it measured."""
    from gansim.models.artifact import load_generator, save_generator

    art = load_generator(generator)
    c = record["classifier"]
    meta = {**art.extra, "pretrained": name, "made_by": record["command"], "date": record["date"],
            "training_data": {"simulator": "gansim simulate calo" if record["particle"] != "jets"
                              else "gansim simulate jets", "particle": record["particle"],
                              "events": record["train_events"], "seed": record.get("train_seed")},
            "measured": {"auc_high_level": c["high_level"]["auc"],
                         "auc_high_level_trees": c.get("high_level_trees", {}).get("auc"),
                         "auc_low_level": c["low_level"]["auc"],
                         "separation_power_mean": record["physics_summary"]["separation_power_mean"],
                         "reference_events": record["ref_events"], "reference_seed": record.get("ref_seed"),
                         "ms_per_shower_per_core": record["ms_per_shower_per_core"]}}
    meta.pop("source_checkpoint", None)  # a path on the machine that trained it
    return save_generator(ROOT / "gansim" / "pretrained" / f"{name}.pt", art.module, art.config, extra=meta)


def row(r: dict[str, Any]) -> str:
    c = r["classifier"]
    band = 3 * c["high_level"]["auc_null_sigma"]
    trees = c.get("high_level_trees", {}).get("auc", float("nan"))
    worst = sorted(r["features"].items(), key=lambda kv: -kv[1])[:3]
    d = r["deciles"]
    decile = "-"
    if d:
        resp = max(abs(x - 1) for x in d["response_ratio"])
        reso = max(abs(x - 1) for x in d["resolution_ratio"])
        decile = f"{100 * resp:.1f} % / {100 * reso:.1f} %"
    elif (r.get("mass_peak") or {}).get("signal"):  # jets: where the W' mass peak sits instead
        from gansim.metrics.jet_features import MASS_PEAK_WINDOW_GEV as lo_hi

        mp = r["mass_peak"]["signal"]
        gen = (f"none in {lo_hi[0]:g}-{lo_hi[1]:g}" if mp["gen"] is None or math.isnan(mp["gen"])
               else f"{mp['gen']:.1f}")
        decile = f"W′ mass peak {gen} vs {mp['ref']:.1f} GeV"
    recipe = r["config"] or f"generator {r['generator']}"
    if r["set"]:
        recipe += " " + " ".join(f"`{s}`" for s in r["set"])
    steps = f"{r.get('steps', '-')} ({r.get('samples_seen', 0) / 1e6:.1f}M)" if "steps" in r else "-"
    wall = f"{r['train_seconds'] / 60:.0f} min" if "train_seconds" in r else "-"
    return (f"| {r['date']} | {r['name']}{' - ' + r['note'] if r['note'] else ''} | {recipe} | "
            f"{r['train_events'] // 1000}k / {r['ref_events'] // 1000}k | {steps} | {wall} | {r['machine']} | "
            f"{c['high_level']['auc']:.3f} / {trees:.3f} (±{band:.3f}) | {c['low_level']['auc']:.3f} "
            f"(±{3 * c['low_level']['auc_null_sigma']:.3f}) | {r['physics_summary']['separation_power_mean']:.4f} | "
            + ", ".join(f"{k} {v:.3f}" for k, v in worst)
            + f" | {decile} | {r['ms_per_shower_per_core']:.3f} | `{r['command']}` |")


FIGURES = ("features_energies.png", "features_depth.png", "features_layer_0.png", "features_layer_1.png",
           "features_layer_2.png", "response_resolution.png", "conditioning.png", "average_showers.png",
           "jet_features.png", "jet_images.png")


def keep_figures(report: Path, dest: Path) -> None:
    """The report's headline figures next to the JSON (the run directory under runs/ is not committed)."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in FIGURES:
        if (report / name).is_file():
            shutil.copy2(report / name, dest / name)


def append_row(record: dict[str, Any]) -> None:
    if not TABLE.exists():
        TABLE.write_text("# Fidelity benchmark\n\nOne row per run of `benchmarks/bench_fidelity.py` (details and "
                         "learning curves in `benchmarks/results/fidelity/<name>.json`).\n\n" + HEADER)
    with TABLE.open("a") as f:
        f.write(row(record) + "\n")


if __name__ == "__main__":
    sys.exit(main())
