"""The training loop of one worker, top to bottom: resume, epochs, physics check, TensorBoard, checkpoints."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gansim.config import Config, config_from_dict
from gansim.errors import GansimError
from gansim.progress import say
from gansim.seeding import Purpose, numpy_rng
from gansim.train.checkpoint import check_resumable, checkpoint_name, save_state
from gansim.train.session import LocalSession, RaySession, Session, scratch_dir
from gansim.train.trainer import Trainer, condition_range, make_loader, progress_bar


def reference_sample(arrays: dict[str, np.ndarray], n: int, seed: int) -> dict[str, np.ndarray]:
    """A fixed (seeded) subset of the validation events, the same every epoch."""
    total = len(next(iter(arrays.values()))) if arrays else 0
    if n <= 0 or total == 0:
        return {}
    idx = np.sort(numpy_rng(seed, Purpose.VALIDATE).permutation(total)[: min(n, total)])
    return {k: np.asarray(v[idx]) for k, v in arrays.items()}


def build_trainer(cfg: Config, session: Session) -> tuple[Trainer, Any, Any]:
    """(Trainer, training loader, validation dataset): fresh from data statistics, or from the session's checkpoint."""
    from gansim.models.registry import data_statistics, model_kind

    if session.device.type == "cpu":
        torch.set_num_threads(max(1, int(cfg.train.cpus_per_worker)))
    loader, val_ds = make_loader(cfg, session.rank, session.world_size, session.device)
    restored = session.restore_state()
    if restored is not None:
        check_resumable(cfg, restored)
    train_arrays = loader.dataset.arrays()
    # data statistics initialise data-aware models on a fresh start; a checkpoint's buffers replace them
    stats = data_statistics(cfg, train_arrays) if restored is None else None
    tr = Trainer(cfg, session.device, session.rank, session.world_size, stats)
    tr.condition_range = condition_range(model_kind(cfg), train_arrays)
    if restored is not None:
        tr.load(restored)
    return tr, loader, val_ds


def run_training(cfg: Config, session: Session, out_dir: str | Path) -> dict[str, Any]:
    """Train until cfg.train.epochs on this rank; returns a summary (rank 0's is Ray's result.return_value)."""
    from gansim.train.tblog import TBLogger

    out_dir = Path(out_dir)
    _write_pid(out_dir, session.rank)
    tr, loader, val_ds = build_trainer(cfg, session)
    rank, epochs = session.rank, cfg.train.epochs
    per_epoch = tr.iterations_per_epoch(loader)
    summary: dict[str, Any] = {"epoch": tr.epoch, "step": tr.step, "diverged": False,
                               "restored_epoch": tr.restored_epoch}
    if rank == 0 and tr.restored_epoch >= 0:
        say(f"gansim train: resuming from epoch {tr.epoch}, step {tr.step}")
    if tr.epoch >= epochs:
        if rank == 0:
            say(f"gansim train: already trained for {tr.epoch} epochs (train.epochs = {epochs})")
        session.report({"epoch": tr.epoch, "step": tr.step, "restored_epoch": tr.restored_epoch}, None)
        return summary
    reference = reference_sample(val_ds.arrays(), cfg.train.val_events, cfg.run.seed) if rank == 0 else {}
    tb = TBLogger(out_dir / "tb" if rank == 0 else None)
    pbar = progress_bar(rank, epochs * per_epoch, tr.step)
    try:
        for epoch in range(tr.epoch, epochs):
            metrics = tr.train_epoch(loader, epoch, on_log=_logger(tb, pbar))
            if metrics is None:  # stopped on train.max_nonfinite consecutive non-finite steps
                summary.update(diverged=True, epoch=tr.epoch, step=tr.step)
                session.report(_diverged_metrics(tr), None)  # no checkpoint: the last good one stays the latest
                break
            metrics["restored_epoch"] = tr.restored_epoch
            tr.sync()
            fidelity = float("nan")
            if rank == 0 and reference:
                phys, generated = tr.validate(reference)
                fidelity = float(phys["fidelity"])
                tb.scalars(phys, tr.step, "val/")
                tb.showers(reference, generated, tr.kind, tr.step)
            metrics["fidelity"] = tr.share(fidelity)
            if rank == 0:
                tb.scalars({k: v for k, v in metrics.items() if k not in ("epoch", "step")}, tr.step, "epoch/")
                tb.flush()
                _print_epoch(metrics, epochs, pbar)
            want_ckpt = tr.epoch % cfg.train.checkpoint_every == 0 or tr.epoch == epochs
            _report(session, tr, metrics, want_ckpt)
            summary.update(epoch=tr.epoch, step=tr.step, fidelity=metrics["fidelity"])
        if rank == 0 and not summary["diverged"]:
            tb.hparams(cfg, {"hparam/fidelity": summary.get("fidelity", float("nan"))})
    finally:
        if pbar is not None:
            pbar.close()
        tb.close()
    summary["nonfinite_steps"] = tr.nonfinite_total
    return summary


def _write_pid(out_dir: Path, rank: int) -> None:
    """<out>/workers/rank<R>.pid: which process trains rank R (for operators and the worker-failure tests)."""
    d = out_dir / "workers"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"rank{rank}.pid").write_text(f"{os.getpid()}\n")


def _logger(tb: Any, pbar: Any) -> Any:
    def on_log(tr: Trainer, stats: dict[str, float], count: int, seconds: float) -> None:
        if pbar is not None:
            pbar.update(tr.step - pbar.n)  # the bar counts optimiser steps: exact after a resume or a short epoch
            pbar.set_postfix(epoch=tr.epoch + 1, d=f"{stats.get('d_loss', float('nan')):.3g}",
                             g=f"{stats.get('g_loss', float('nan')):.3g}", refresh=False)
        if tr.rank == 0:
            t = tr.cfg.train
            rate = t.batch_size * tr.world * t.n_critic * count / max(seconds, 1e-9)
            tb.scalars({k: v for k, v in stats.items() if k != "skipped"}, tr.step, "train/")
            tb.scalars({"samples_per_s": rate, "lr_g": tr.opt_g.param_groups[0]["lr"],
                        "lr_d": tr.opt_d.param_groups[0]["lr"], "nonfinite_total": tr.nonfinite_total},
                       tr.step, "train/")
    return on_log


def _diverged_metrics(tr: Trainer) -> dict[str, float]:
    nan = float("nan")
    return {"epoch": tr.epoch, "step": tr.step, "diverged": 1.0, "nonfinite_steps": float(tr.nonfinite_total),
            "nonfinite_consecutive": float(tr.nonfinite_consecutive), "fidelity": nan, "d_loss": nan,
            "g_loss": nan, "samples_per_s": 0.0, "restored_epoch": tr.restored_epoch}


def _report(session: Session, tr: Trainer, metrics: dict[str, float], want_ckpt: bool) -> None:
    tmp = None
    if want_ckpt and session.rank == 0:
        tmp = scratch_dir() / checkpoint_name(tr.epoch)
        try:
            save_state(tmp, tr.save(metrics))
            tr.cfg.save(tmp / "config.yaml")
        except GansimError as exc:  # non-finite weights: keep the previous checkpoint as the latest
            say(f"gansim train: epoch {tr.epoch}: {exc}", err=True)
            shutil.rmtree(tmp.parent, ignore_errors=True)
            tmp = None
    try:
        session.report(metrics, tmp)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp.parent, ignore_errors=True)


def _print_epoch(m: dict[str, float], epochs: int, pbar: Any) -> None:
    line = (f"epoch {int(m['epoch'])}/{epochs}  step {int(m['step'])}  d_loss {m['d_loss']:.4g}  "
            f"g_loss {m['g_loss']:.4g}  D(x) {m.get('d_real', float('nan')):.3g}  "
            f"D(G(z)) {m.get('d_fake', float('nan')):.3g}  fidelity {m['fidelity']:.4g}  "
            f"{m['samples_per_s']:.0f} samples/s  non-finite {int(m['nonfinite_steps'])}")
    if pbar is not None:
        pbar.update(int(m["step"]) - pbar.n)
        pbar.write(line, file=sys.stdout)
    else:
        print(line, flush=True)


def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Ray Train worker entry point: config = {"cfg": Config.to_dict(), "out_dir": str (optional)}."""
    from gansim.compat import quiet_ray_train_logs
    from gansim.progress import install_relay

    quiet_ray_train_logs()
    install_relay(config.get("progress_relay"))  # rank 0's bar and epoch lines are drawn by the driver
    cfg = config_from_dict(config["cfg"])
    return run_training(cfg, RaySession(), config.get("out_dir") or cfg.run.out_dir)


def train_local(cfg: Config, out_dir: str | Path, checkpoint_root: str | Path | None = None) -> dict[str, Any]:
    """Same loop without Ray (one process, or inside an initialised torch.distributed group): tests, benchmarks."""
    out_dir = Path(out_dir)
    session = LocalSession(checkpoint_root or out_dir / cfg.run.name, cfg.train.num_to_keep)
    result = run_training(cfg, session, out_dir)
    result["reports"] = session.reports
    return result
