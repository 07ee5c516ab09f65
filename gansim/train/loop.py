"""The per-worker training loop: data shard, DDP models, GAN iterations, validation, TensorBoard, checkpoints."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from gansim.config import Config, config_from_dict
from gansim.errors import GansimError
from gansim.train.checkpoint import checkpoint_name, rng_state, save_state, set_rng_state
from gansim.train.guards import broadcast_float, distributed, sync_buffers
from gansim.train.session import LocalSession, RaySession, Session, scratch_dir
from gansim.train.steps import GanState, iteration, make_ema, unwrap

# Config sections that must match to continue from a checkpoint (others, e.g. epochs or lr, may change).
RESUME_MUST_MATCH = ("model",)


def _wrap(module: nn.Module, device: torch.device) -> nn.Module:
    if not distributed():
        return module
    ids = [device.index] if device.type == "cuda" else None
    # forward_sync_buffers=False (torch's new name for broadcast_buffers=False; weights and buffers still sync
    # at init): see gansim/train/steps.py (separate real/fake forwards; buffers averaged per epoch).
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)


def build_state(cfg: Config, device: torch.device, restored: dict[str, Any] | None = None) -> GanState:
    """Models (identically initialised on every rank), optimisers, EMA; loaded from `restored` when given."""
    from gansim.models.registry import build_discriminator, build_generator

    torch.manual_seed(cfg.run.seed)
    G, D = build_generator(cfg).to(device), build_discriminator(cfg).to(device)
    g_ema = make_ema(G) if cfg.train.ema_decay > 0 else None
    if restored is not None:
        G.load_state_dict(restored["G"])
        D.load_state_dict(restored["D"])
        if g_ema is not None:
            g_ema.load_state_dict(restored["G_ema"] if restored.get("G_ema") is not None else restored["G"])
    G, D = _wrap(G, device), _wrap(D, device)
    betas = (cfg.train.beta1, cfg.train.beta2)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.train.lr_g, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.train.lr_d, betas=betas)
    st = GanState(G, D, opt_g, opt_d, g_ema)
    if restored is not None:
        opt_g.load_state_dict(restored["opt_g"])
        opt_d.load_state_dict(restored["opt_d"])
        for opt, lr in ((opt_g, cfg.train.lr_g), (opt_d, cfg.train.lr_d)):
            for group in opt.param_groups:  # the config of this run wins over the checkpoint's
                group["lr"], group["betas"] = lr, betas
        st.step, st.epoch = int(restored["step"]), int(restored["epoch"])
        st.nonfinite_total = int(restored.get("nonfinite_total", 0))
    return st


def state_dict(st: GanState, cfg: Config, metrics: dict[str, float]) -> dict[str, Any]:
    """The content of state.pt (plain types and tensors only: loadable with weights_only=True)."""
    return {
        "G": unwrap(st.G).state_dict(), "D": unwrap(st.D).state_dict(),
        "G_ema": st.g_ema.state_dict() if st.g_ema is not None else None,
        "opt_g": st.opt_g.state_dict(), "opt_d": st.opt_d.state_dict(),
        "step": st.step, "epoch": st.epoch, "nonfinite_total": st.nonfinite_total,
        "rng": rng_state(), "config": cfg.to_dict(), "metrics": {k: float(v) for k, v in metrics.items()},
    }


def check_resumable(cfg: Config, restored: dict[str, Any]) -> None:
    old = restored.get("config", {})
    new = cfg.to_dict()
    for section in RESUME_MUST_MATCH:
        if old.get(section) != new[section]:
            diff = sorted(k for k in new[section] if old.get(section, {}).get(k) != new[section][k])
            raise GansimError(f"the checkpoint was trained with a different {section} config ({', '.join(diff)}); "
                              "use --fresh to start over or a different --out")


def make_loader(cfg: Config, rank: int, world: int, device: torch.device) -> tuple[DataLoader, Any]:
    from gansim.data.dataset import train_val_datasets

    d = cfg.data
    train_ds, val_ds = train_val_datasets(d.path, d.val_fraction, cfg.run.seed, in_memory=d.in_memory,
                                          max_events=d.max_events)
    B = cfg.train.batch_size
    need = B * world * cfg.train.n_critic
    if len(train_ds) < need:
        raise GansimError(f"training set has {len(train_ds)} events, fewer than one iteration needs "
                          f"(batch_size {B} x workers {world} x n_critic {cfg.train.n_critic} = {need})")
    # drop_last keeps every rank's batch the same size (DDP equivalence with one worker on the global batch).
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True, seed=cfg.run.seed,
                                 drop_last=True)
    loader = DataLoader(train_ds, batch_size=B, sampler=sampler, drop_last=True, num_workers=d.loader_workers,
                        pin_memory=device.type == "cuda", persistent_workers=d.loader_workers > 0)
    return loader, val_ds


def iterations_per_epoch(cfg: Config, loader: DataLoader) -> int:
    n = len(loader) // cfg.train.n_critic
    return min(n, cfg.train.steps_per_epoch) if cfg.train.steps_per_epoch > 0 else n


def _write_pid(out_dir: Path, rank: int) -> None:
    d = out_dir / "workers"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"rank{rank}.pid").write_text(f"{os.getpid()}\n")


def run_training(cfg: Config, session: Session, out_dir: str | Path) -> dict[str, Any]:
    """Train until cfg.train.epochs on this rank; returns a summary (rank 0's is Ray's result.return_value)."""
    from gansim.models.registry import model_kind
    from gansim.train.tblog import TBLogger
    from gansim.train.validation import physics_check, reference_sample

    out_dir = Path(out_dir)
    rank, world, device = session.rank, session.world_size, session.device
    if device.type == "cpu":
        torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    _write_pid(out_dir, rank)
    kind = model_kind(cfg)
    restored = session.restore_state()
    if restored is not None:
        check_resumable(cfg, restored)
        if rank == 0 and restored.get("rng"):
            set_rng_state(restored["rng"])
    st = build_state(cfg, device, restored)
    loader, val_ds = make_loader(cfg, rank, world, device)
    per_epoch = iterations_per_epoch(cfg, loader)
    epochs = cfg.train.epochs
    restored_epoch = st.epoch if restored is not None else -1
    reference: dict[str, np.ndarray] = {}
    tb = TBLogger(out_dir / "tb" if rank == 0 else None)
    if rank == 0:
        if restored is not None:
            print(f"gansim train: resuming from epoch {st.epoch}, step {st.step}", flush=True)
        if cfg.train.val_events > 0 and len(val_ds) > 0:
            reference = reference_sample(val_ds.arrays(), cfg.train.val_events, cfg.run.seed)
    samples_per_iter = cfg.train.batch_size * world * cfg.train.n_critic
    summary: dict[str, Any] = {"epoch": st.epoch, "step": st.step, "diverged": False,
                               "restored_epoch": restored_epoch}
    if st.epoch >= epochs:
        if rank == 0:
            print(f"gansim train: already trained for {st.epoch} epochs (train.epochs = {epochs})", flush=True)
        metrics = dict(restored.get("metrics", {})) if restored else {}
        metrics.update(epoch=st.epoch, step=st.step, restored_epoch=restored_epoch)
        session.report(metrics, None)
        return summary
    pbar = _progress(rank, epochs * per_epoch, st.epoch * per_epoch)
    try:
        for epoch in range(st.epoch, epochs):
            loader.sampler.set_epoch(epoch)
            # Dropout etc. draw from the global RNG: seed it per (seed, epoch, rank) so restarts replay exactly.
            torch.manual_seed(cfg.run.seed * 100_003 + epoch * 1009 + rank)
            sums: dict[str, float] = {}
            count, t0 = 0, time.perf_counter()
            it = iter(loader)
            for _ in range(per_epoch):
                batches = [next(it) for _ in range(cfg.train.n_critic)]
                m = iteration(st, batches, cfg, kind, rank, world, device)
                for k, v in m.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if rank == 0 and st.step % cfg.train.log_every == 0:
                    rate = samples_per_iter * count / max(time.perf_counter() - t0, 1e-9)
                    tb.scalars({k: v for k, v in m.items() if k != "skipped"}, st.step, "train/")
                    tb.scalars({"samples_per_s": rate, "lr_g": st.opt_g.param_groups[0]["lr"],
                                "lr_d": st.opt_d.param_groups[0]["lr"], "nonfinite_total": st.nonfinite_total},
                               st.step, "train/")
                if pbar is not None:
                    pbar.update(1)
                    pbar.set_postfix(epoch=epoch + 1, d=f"{m.get('d_loss', float('nan')):.3g}",
                                     g=f"{m.get('g_loss', float('nan')):.3g}", refresh=False)
                if st.nonfinite_consecutive >= cfg.train.max_nonfinite:
                    summary.update(diverged=True, epoch=st.epoch, step=st.step)
                    break
            elapsed = max(time.perf_counter() - t0, 1e-9)
            if summary["diverged"]:
                metrics = {"epoch": st.epoch, "step": st.step, "diverged": 1.0,
                           "nonfinite_steps": float(st.nonfinite_total), "nonfinite_consecutive":
                           float(st.nonfinite_consecutive), "fidelity": float("nan"), "d_loss": float("nan"),
                           "g_loss": float("nan"), "samples_per_s": 0.0, "restored_epoch": restored_epoch}
                session.report(metrics, None)  # no checkpoint: the last good one stays the latest
                break
            st.epoch = epoch + 1
            metrics = _epoch_metrics(sums, count, st, samples_per_iter * count / elapsed)
            metrics["restored_epoch"] = restored_epoch
            sync_buffers(unwrap(st.G))
            sync_buffers(unwrap(st.D))
            fidelity = float("nan")
            if rank == 0 and reference:
                gen_model = st.g_ema if st.g_ema is not None else unwrap(st.G)
                phys, generated = physics_check(gen_model, reference, kind, cfg.model.latent_dim,
                                                cfg.run.seed + 7, device)
                fidelity = float(phys["fidelity"])
                tb.scalars(phys, st.step, "val/")
                tb.showers(reference, generated, kind, st.step)
            metrics["fidelity"] = broadcast_float(fidelity, device)
            if rank == 0:
                tb.scalars({k: v for k, v in metrics.items() if k not in ("epoch", "step")}, st.step, "epoch/")
                tb.flush()
                _print_epoch(metrics, epochs, pbar)
            want_ckpt = st.epoch % cfg.train.checkpoint_every == 0 or st.epoch == epochs
            _report(session, st, cfg, metrics, want_ckpt)
            summary.update(epoch=st.epoch, step=st.step, fidelity=metrics["fidelity"])
    finally:
        if pbar is not None:
            pbar.close()
        tb.close()
    summary["nonfinite_steps"] = st.nonfinite_total
    return summary


def _epoch_metrics(sums: dict[str, float], count: int, st: GanState, rate: float) -> dict[str, float]:
    # Means over the epoch's iterations (a skipped update adds nothing to its sums).
    good_d = max(count * 1.0, 1.0)
    m = {k: v / good_d for k, v in sums.items() if k != "skipped"}
    m.setdefault("d_loss", float("nan"))
    m.setdefault("g_loss", float("nan"))
    m.update(epoch=st.epoch, step=st.step, nonfinite_steps=float(st.nonfinite_total), samples_per_s=rate)
    return m


def _report(session: Session, st: GanState, cfg: Config, metrics: dict[str, float], want_ckpt: bool) -> None:
    tmp = None
    if want_ckpt and session.rank == 0:
        tmp = scratch_dir() / checkpoint_name(st.epoch)
        try:
            save_state(tmp, state_dict(st, cfg, metrics))
            cfg.save(tmp / "config.yaml")
        except GansimError as exc:  # non-finite weights: keep the previous checkpoint as the latest
            print(f"gansim train: epoch {st.epoch}: {exc}", file=sys.stderr, flush=True)
            shutil.rmtree(tmp.parent, ignore_errors=True)
            tmp = None
    try:
        session.report(metrics, tmp)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def _progress(rank: int, total: int, initial: int) -> Any:
    if rank != 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="it", file=sys.stderr, dynamic_ncols=True,
                mininterval=1.0)


def _print_epoch(m: dict[str, float], epochs: int, pbar: Any) -> None:
    line = (f"epoch {int(m['epoch'])}/{epochs}  step {int(m['step'])}  d_loss {m['d_loss']:.4g}  "
            f"g_loss {m['g_loss']:.4g}  D(x) {m.get('d_real', float('nan')):.3g}  "
            f"D(G(z)) {m.get('d_fake', float('nan')):.3g}  fidelity {m['fidelity']:.4g}  "
            f"{m['samples_per_s']:.0f} samples/s  non-finite {int(m['nonfinite_steps'])}")
    if pbar is not None:
        pbar.write(line, file=sys.stdout)
    else:
        print(line, flush=True)


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Ray Train worker entry point: config = {"cfg": Config.to_dict(), "out_dir": str (optional)}."""
    import logging

    # Ray Train logs every report with its full metrics dict at INFO (on a logger named after its source file);
    # the loop prints its own epoch line instead.
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    try:
        from ray.train.v2._internal.execution import context as _ctx

        logging.getLogger(_ctx.__file__).setLevel(logging.WARNING)
    except ImportError:  # a Ray without Train V2 internals at this path: keep its default logging
        pass
    cfg = config_from_dict(config["cfg"])
    return run_training(cfg, RaySession(), config.get("out_dir") or cfg.run.out_dir)


def train_local(cfg: Config, out_dir: str | Path, checkpoint_root: str | Path | None = None) -> dict[str, Any]:
    """Same loop without Ray (one process, or inside an initialised torch.distributed group): tests, benchmarks."""
    out_dir = Path(out_dir)
    session = LocalSession(checkpoint_root or out_dir / cfg.run.name, cfg.train.num_to_keep)
    result = run_training(cfg, session, out_dir)
    result["reports"] = session.reports
    return result
