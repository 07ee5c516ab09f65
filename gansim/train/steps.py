"""One GAN iteration under DDP: n_critic discriminator steps then one generator step, with the DDP traps handled.

Decisions (see tests/test_train_ddp.py for the checks):
- Real and fake batches go through D in *separate* forwards (the CaloGAN / DCGAN recipe: BatchNorm and
  minibatch discrimination see pure batches). DDP is therefore built with forward_sync_buffers=False (torch's
  new name for broadcast_buffers=False): with the default, every forward re-broadcasts rank 0's BatchNorm
  buffers in place, which is wasted traffic twice per step and can trip autograd's in-place check.
  Running statistics are averaged over ranks instead (guards.sync_buffers) before validation, checkpoints and export.
- Fakes for the D step come from the *unwrapped* G under no_grad: no graph into G, no DDP reducer involvement.
- The G step calls the *unwrapped* D with requires_grad off: gradients flow through D into G only, D's .grad
  stay empty, D's DDP reducer is not armed, and D's optimiser is not stepped.
- The gradient penalty differentiates the critic with create_graph=True and adds the result to the D loss
  before one backward(); DDP all-reduces the summed gradient once (autograd.grad w.r.t. the interpolates does
  not fire DDP's parameter hooks).
- Non-finite loss or gradient on any rank → every rank skips the update (all-reduced flag) and restores
  the BatchNorm buffers the bad forward touched.
- Latents are a function of (seed, step, phase, global row): rank r's local row i is global row i*W + r,
  matching DistributedSampler's interleaving, so W workers see the same (sample, z) pairs as one worker on
  the same global batch.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from gansim import losses
from gansim.config import Config
from gansim.models.registry import DATA_SCALE
from gansim.train.guards import (
    any_rank_true,
    grad_norm,
    is_bad,
    restore_buffers,
    set_requires_grad,
    snapshot_buffers,
)

CALO_LAYERS = ("layer_0", "layer_1", "layer_2")
_ROW_SEED_MULT = 1_000_003


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


@dataclass
class GanState:
    """Everything one worker trains; G and D may be DDP-wrapped."""

    G: nn.Module
    D: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    g_ema: nn.Module | None = None
    step: int = 0  # completed iterations (G updates attempted)
    epoch: int = 0  # completed epochs
    nonfinite_total: int = 0
    nonfinite_consecutive: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def to_model(batch: dict[str, torch.Tensor], kind: str, device: torch.device) -> tuple[Any, torch.Tensor]:
    """File units → model units: (x, cond). calo: x = dict of layers in GeV, cond = energy (B,1) GeV."""
    scale = DATA_SCALE[kind]
    if kind == "calo":
        x = {k: batch[k].to(device, non_blocking=True) * scale for k in CALO_LAYERS}
        return x, batch["energy"].to(device, non_blocking=True).reshape(-1, 1)
    return batch["image"].to(device, non_blocking=True) * scale, batch["signal"].to(device).reshape(-1).float()


def flatten_x(x: Any) -> torch.Tensor:
    if isinstance(x, dict):
        return torch.cat([x[k].flatten(1) for k in CALO_LAYERS], dim=1)
    return x.flatten(1)


def unflatten_like(flat: torch.Tensor, like: Any) -> Any:
    if isinstance(like, dict):
        out, start = {}, 0
        for k in CALO_LAYERS:
            n = like[k][0].numel()
            out[k] = flat[:, start:start + n].reshape(like[k].shape)
            start += n
        return out
    return flat.reshape(like.shape)


def latent(seed: int, step: int, phase: int, batch: int, latent_dim: int, rank: int, world: int,
           device: torch.device) -> torch.Tensor:
    """z rows for this rank: row i is global row i*world + rank of the (seed, step, phase) latent matrix."""
    g = torch.Generator()
    rows = []
    base = (seed * 7919 + step) * 131 + phase
    for i in range(batch):
        g.manual_seed((base * _ROW_SEED_MULT + i * world + rank) % (2**63 - 1))
        rows.append(torch.randn(latent_dim, generator=g))
    return torch.stack(rows).to(device)


def aux_loss(kind: str, aux: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    return losses.energy_aux_loss(aux, cond) if kind == "calo" else losses.class_aux_loss(aux, cond)


def aux_weight(cfg: Config, kind: str) -> float:
    return cfg.loss.lambda_e if kind == "calo" else cfg.loss.lambda_class


def d_step(st: GanState, x_real: Any, cond: torch.Tensor, z: torch.Tensor, cfg: Config, kind: str,
           gp_generator: torch.Generator | None, device: torch.device) -> dict[str, float] | None:
    """One discriminator update; returns scalars, or None when skipped as non-finite on some rank."""
    D, Gm = st.D, unwrap(st.G)
    saved = snapshot_buffers(unwrap(D), Gm)
    with torch.no_grad():
        x_fake = Gm(z, cond)  # detached by construction: the D step never builds a graph into G
    st.opt_d.zero_grad(set_to_none=True)
    real_score, real_aux = D(x_real, cond)
    fake_score, fake_aux = D(x_fake, cond)
    adv = losses.d_loss(cfg.loss.name, real_score, fake_score)
    lam = aux_weight(cfg, kind)
    aux = aux_loss(kind, real_aux, cond) + aux_loss(kind, fake_aux, cond) if lam > 0 else torch.zeros((), device=device)
    loss = adv + lam * aux
    gp = torch.zeros((), device=device)
    if cfg.loss.name == "wgan-gp" and cfg.loss.gp_weight > 0:
        def critic(flat: torch.Tensor) -> torch.Tensor:
            return D(unflatten_like(flat, x_real), cond)[0]

        gp = losses.gradient_penalty(critic, flatten_x(x_real), flatten_x(x_fake), gp_generator)
        loss = loss + cfg.loss.gp_weight * gp
    loss.backward()  # DDP all-reduces D's gradients here
    gnorm = grad_norm(unwrap(D))
    if any_rank_true(is_bad(loss, gnorm), device):
        st.opt_d.zero_grad(set_to_none=True)
        restore_buffers(saved, unwrap(D), Gm)
        return None
    st.opt_d.step()
    return {"d_loss": float(loss.detach()), "d_adv": float(adv.detach()), "d_aux": float(aux.detach()),
            "gp": float(gp.detach()), "d_grad_norm": float(gnorm),
            "d_real": float(_readout(cfg.loss.name, real_score)), "d_fake": float(_readout(cfg.loss.name, fake_score))}


def g_step(st: GanState, cond: torch.Tensor, z: torch.Tensor, cfg: Config, kind: str,
           device: torch.device) -> dict[str, float] | None:
    """One generator update through a frozen D; returns scalars, or None when skipped as non-finite."""
    Dm = unwrap(st.D)
    saved = snapshot_buffers(Dm, unwrap(st.G))
    set_requires_grad(Dm, False)
    try:
        st.opt_g.zero_grad(set_to_none=True)
        x_fake = st.G(z, cond)  # through DDP: G's gradients are all-reduced
        score, aux = Dm(x_fake, cond)
        adv = losses.g_loss(cfg.loss.name, score)
        lam = aux_weight(cfg, kind)
        aux_l = aux_loss(kind, aux, cond) if lam > 0 else torch.zeros((), device=device)
        loss = adv + lam * aux_l
        loss.backward()
    finally:
        set_requires_grad(Dm, True)
    gnorm = grad_norm(unwrap(st.G))
    if any_rank_true(is_bad(loss, gnorm), device):
        st.opt_g.zero_grad(set_to_none=True)
        restore_buffers(saved, Dm, unwrap(st.G))
        return None
    st.opt_g.step()
    if st.g_ema is not None:
        update_ema(st.g_ema, unwrap(st.G), cfg.train.ema_decay)
    return {"g_loss": float(loss.detach()), "g_adv": float(adv.detach()), "g_aux": float(aux_l.detach()),
            "g_grad_norm": float(gnorm), "d_gen": float(_readout(cfg.loss.name, score.detach()))}


def _readout(loss_name: str, score: torch.Tensor) -> torch.Tensor:
    """Mean sigmoid(D) for probability losses, mean critic value otherwise (what TensorBoard shows)."""
    if loss_name in ("minimax", "non-saturating"):
        return torch.sigmoid(score.detach().float()).mean()
    return score.detach().float().mean()


def make_ema(generator: nn.Module) -> nn.Module:
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


def iteration(st: GanState, batches: list[dict[str, torch.Tensor]], cfg: Config, kind: str, rank: int, world: int,
              device: torch.device) -> dict[str, float]:
    """n_critic D steps (one real batch each) then one G step; counts and returns skipped steps.

    The step counter advances even when updates are skipped, so latents never repeat after a bad step.
    """
    seed, step, latent_dim = cfg.run.seed, st.step, cfg.model.latent_dim
    out: dict[str, float] = {}
    skipped = 0

    def account(res: dict[str, float] | None) -> None:
        nonlocal skipped
        if res is None:  # consecutive counts skipped updates in a row; any good update resets it
            skipped += 1
            st.nonfinite_total += 1
            st.nonfinite_consecutive += 1
        else:
            st.nonfinite_consecutive = 0
            out.update(res)

    cond = None
    for phase, batch in enumerate(batches):
        x_real, cond = to_model(batch, kind, device)
        z = latent(seed, step, phase, cond.shape[0], latent_dim, rank, world, device)
        gp_gen = torch.Generator().manual_seed((seed * 1_000_033 + step * 97 + phase) * 4099 + rank)
        account(d_step(st, x_real, cond, z, cfg, kind, gp_gen, device))
    if cond is None:
        raise ValueError("iteration needs at least one real batch")
    z = latent(seed, step, len(batches), cond.shape[0], latent_dim, rank, world, device)
    account(g_step(st, cond, z, cfg, kind, device))
    st.step += 1
    out["skipped"] = float(skipped)
    return out
