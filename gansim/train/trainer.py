"""The per-worker training loop as a Trainer: build, load, train_epoch, validate, save; `fit` reads top to bottom."""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from gansim.compat import ddp_without_forward_buffer_sync
from gansim.config import Config
from gansim.errors import GansimError
from gansim.kinds import DataKind
from gansim.seeding import Purpose, int_seed, torch_generator
from gansim.train import checkpoint
from gansim.train.guards import (
    any_rank_bad,
    broadcast_float,
    distributed,
    grad_norm,
    restore_buffers,
    snapshot_buffers,
    sync_buffers,
)
from gansim.train.loss import GanLoss, Phase, penalty_alpha, unwrap


def _wrap(module: nn.Module, device: torch.device) -> nn.Module:
    if not distributed():
        return module
    ids = [device.index] if device.type == "cuda" else None
    # forward_sync_buffers=False: see gansim/train/loss.py (separate real/fake forwards; buffers averaged per epoch)
    return nn.parallel.DistributedDataParallel(module, device_ids=ids, **ddp_without_forward_buffer_sync())


def make_ema(generator: nn.Module) -> nn.Module:
    import copy

    ema = copy.deepcopy(unwrap(generator))
    ema.eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(pm.detach(), 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(bm)


def train_latents(seed: int, step: int, index: int, batch: int, size: int, rank: int, world: int,
                  device: torch.device) -> torch.Tensor:
    """This rank's latents of phase `index` of a step: rows rank::world of the global (batch x world) matrix drawn
    in one call on the device, matching DistributedSampler's interleaving (W ranks reproduce one rank)."""
    g = torch_generator(seed, Purpose.TRAIN_LATENT, step, index, device=device)
    return torch.randn(batch * world, size, device=device, generator=g)[rank::world]


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
    sampler = DistributedSampler(train_ds, num_replicas=world, rank=rank, shuffle=True,
                                 seed=int_seed(cfg.run.seed, Purpose.SHUFFLE) % 2**31, drop_last=True)
    loader = DataLoader(train_ds, batch_size=B, sampler=sampler, drop_last=True, num_workers=d.loader_workers,
                        pin_memory=device.type == "cuda", persistent_workers=d.loader_workers > 0)
    return loader, val_ds


class Trainer:
    """Everything one worker trains: G and D (DDP-wrapped when distributed), optimisers, EMA, loss, data."""

    def __init__(self, cfg: Config, device: torch.device, rank: int = 0, world: int = 1,
                 stats: dict[str, Any] | None = None) -> None:
        """Models (identically initialised on every rank, from data statistics when given), optimisers, loss."""
        from gansim.models.registry import build_discriminator, build_generator, latent_size, model_kind

        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.kind: DataKind = model_kind(cfg)
        self.latent_size = latent_size(cfg)
        torch.manual_seed(int_seed(cfg.run.seed, Purpose.INIT))
        G = build_generator(cfg, stats).to(self.device)
        D = build_discriminator(cfg, stats).to(self.device)
        self.g_ema = make_ema(G) if cfg.train.ema_decay > 0 else None
        self.G, self.D = _wrap(G, self.device), _wrap(D, self.device)
        betas = (cfg.train.beta1, cfg.train.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.train.lr_g, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.train.lr_d, betas=betas)
        self.loss = GanLoss(cfg, self.kind, self.G, self.D)
        self.step = self.epoch = self.nonfinite_total = self.nonfinite_consecutive = 0
        self.condition_range: list[float] = []
        self.restored_epoch = -1

    def load(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint's state (see gansim.train.checkpoint)."""
        checkpoint.restore(self, state)
        self.restored_epoch = self.epoch

    # -- one iteration ----------------------------------------------------------------------------------------
    def phase(self, phase: Phase, cond: torch.Tensor, real: dict[str, torch.Tensor] | None, index: int
               ) -> dict[str, torch.Tensor] | None:
        """Forward, backward and (unless any rank saw a non-finite value) one optimiser step of G or D."""
        model, opt = (self.D, self.opt_d) if phase == "D" else (self.G, self.opt_g)
        b = cond.shape[0]
        z = train_latents(self.cfg.run.seed, self.step, index, b, self.latent_size, self.rank, self.world,
                          self.device)
        alpha = None
        if phase == "D" and self.loss.gp_weight > 0:
            gen = torch_generator(self.cfg.run.seed, Purpose.PENALTY, self.step, index, device=self.device)
            alpha = penalty_alpha(gen, b * self.world, self.rank, self.world, self.device)
        saved = snapshot_buffers(unwrap(self.D), unwrap(self.G))  # a bad forward poisons BatchNorm statistics
        opt.zero_grad(set_to_none=True)
        stats = self.loss.accumulate_gradients(phase, cond, z, real, alpha)
        gnorm = grad_norm(unwrap(model))
        # The only host sync of a phase: every rank must agree whether to step or skip.
        if any_rank_bad((stats["d_loss" if phase == "D" else "g_loss"], gnorm), self.device):
            opt.zero_grad(set_to_none=True)
            restore_buffers(saved, unwrap(self.D), unwrap(self.G))
            return None
        opt.step()
        stats[f"{phase.lower()}_grad_norm"] = gnorm
        return stats

    def set_learning_rates(self, total_steps: int) -> None:
        """Apply train.lr_schedule at the current step (a function of the step alone: resumes replay it)."""
        t = self.cfg.train
        if t.lr_schedule == "constant" or total_steps <= 0:
            return
        frac = min(self.step / total_steps, 1.0)
        shape = 1.0 - frac if t.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * frac))
        factor = t.lr_final + (1.0 - t.lr_final) * shape
        for opt, lr in ((self.opt_g, t.lr_g), (self.opt_d, t.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * factor

    def train_step(self, batches: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """n_critic D phases (one real batch each) then one G phase; the step counter advances even when
        updates are skipped, so latents never repeat after a bad step."""
        out: dict[str, torch.Tensor] = {}
        skipped = 0
        cond = None
        for index, batch in enumerate(batches):
            real, cond = self.kind.to_model(batch, self.device)
            skipped += self._account(self.phase("D", cond, real, index), out)
        if cond is None:
            raise ValueError("train_step needs at least one real batch")
        if self.step >= self.cfg.train.critic_warmup:
            skipped += self._account(self.phase("G", cond, None, len(batches)), out)
        if self.g_ema is not None and "g_loss" in out:
            # warm-up: early on the average would be dominated by the random initial weights
            decay = min(self.cfg.train.ema_decay, (1.0 + self.step) / (10.0 + self.step))
            update_ema(self.g_ema, unwrap(self.G), decay)
        self.step += 1
        out["skipped"] = torch.tensor(float(skipped))
        return out

    def _account(self, stats: dict[str, torch.Tensor] | None, out: dict[str, torch.Tensor]) -> int:
        if stats is None:  # consecutive counts skipped updates in a row; any good update resets it
            self.nonfinite_total += 1
            self.nonfinite_consecutive += 1
            return 1
        self.nonfinite_consecutive = 0
        out.update(stats)
        return 0

    # -- epochs -------------------------------------------------------------------------------------------------
    def iterations_per_epoch(self, loader: DataLoader) -> int:
        n = len(loader) // self.cfg.train.n_critic
        cap = self.cfg.train.steps_per_epoch
        return min(n, cap) if cap > 0 else n

    def train_epoch(self, loader: DataLoader, epoch: int, on_log: Any = None) -> dict[str, float] | None:
        """One epoch; returns mean statistics, or None when it stopped on train.max_nonfinite bad steps.

        Statistics stay on the device and are read once per train.log_every steps (and at the epoch end)."""
        loader.sampler.set_epoch(epoch)
        # Dropout and friends draw from the global RNG: seed it per (epoch, rank) so restarts replay exactly.
        torch.manual_seed(int_seed(self.cfg.run.seed, Purpose.DROPOUT, epoch, self.rank))
        sums: dict[str, torch.Tensor] = {}
        count, t0 = 0, time.perf_counter()
        it = iter(loader)
        per_epoch = self.iterations_per_epoch(loader)
        for _ in range(per_epoch):
            self.set_learning_rates(self.cfg.train.epochs * per_epoch)
            stats = self.train_step([next(it) for _ in range(self.cfg.train.n_critic)])
            for k, v in stats.items():
                sums[k] = sums[k] + v if k in sums else v.clone()
            count += 1
            if on_log is not None and self.step % self.cfg.train.log_every == 0:
                on_log(self, {k: float(v) for k, v in stats.items()}, count, time.perf_counter() - t0)
            if self.nonfinite_consecutive >= self.cfg.train.max_nonfinite:
                return None
        self.epoch = epoch + 1
        means = dict(zip(sums, (torch.stack(list(sums.values())) / max(count, 1)).tolist(), strict=True))
        means.pop("skipped", None)
        means.setdefault("d_loss", float("nan"))
        means.setdefault("g_loss", float("nan"))
        samples = self.cfg.train.batch_size * self.world * self.cfg.train.n_critic * count
        means.update(epoch=self.epoch, step=self.step, nonfinite_steps=float(self.nonfinite_total),
                     samples_per_s=samples / max(time.perf_counter() - t0, 1e-9))
        return means

    def sampler(self) -> Any:
        """The Sampler over the generator used for validation and export (EMA when kept)."""
        from gansim.models.sampler import Sampler

        module = self.g_ema if self.g_ema is not None else unwrap(self.G)
        return Sampler(module, self.kind, self.latent_size, self.device)

    def validate(self, reference: dict[str, np.ndarray]) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """Rank 0: physics numbers (incl. 'fidelity') of generated events at the reference's conditions."""
        from gansim.metrics.score import physics_summary

        generated = self.sampler().generate(self.kind.condition(reference), self.cfg.run.seed, Purpose.VALIDATE)
        return physics_summary(reference, generated, self.kind), generated

    def sync(self) -> None:
        sync_buffers(unwrap(self.G))
        sync_buffers(unwrap(self.D))

    def share(self, value: float) -> float:
        return broadcast_float(value, self.device)

    def save(self, metrics: dict[str, float]) -> dict[str, Any]:
        """The content of state.pt (loadable with weights_only=True)."""
        return checkpoint.pack(self, metrics)


def condition_range(kind: DataKind, arrays: dict[str, np.ndarray]) -> list[float]:
    c = kind.condition(arrays)
    return [float(c.min()), float(c.max())] if len(c) else [0.0, 0.0]


def progress_bar(rank: int, total: int, initial: int) -> Any:
    if rank != 0:
        return None
    from gansim.progress import bar

    return bar(total=total, initial=initial, desc="train", unit="it", file=sys.stderr)
