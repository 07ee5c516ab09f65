"""Distributed helpers for the GAN step: rank-agreed non-finite detection, grad norms, buffer sync."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn


def distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def grad_norm(module: nn.Module) -> torch.Tensor:
    """L2 norm of all gradients (after DDP's all-reduce, so identical on every rank); nan/inf propagate."""
    grads = [p.grad.detach().float().norm() for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.stack(grads).norm()


def any_rank_bad(values: tuple[torch.Tensor, ...], device: torch.device) -> bool:
    """True when any value on any rank is NaN or inf: one fused flag, one all-reduce, one host sync."""
    bad = torch.stack([(~torch.isfinite(v.detach().float())).any() for v in values]).any().float().reshape(1)
    if distributed():
        bad = bad.to(device)
        dist.all_reduce(bad, op=dist.ReduceOp.MAX)
    return bool(bad.item() > 0)


def snapshot_buffers(*modules: nn.Module) -> list[torch.Tensor]:
    """Copy of BatchNorm running stats etc., restored when a step is skipped (a NaN forward poisons them)."""
    return [b.detach().clone() for m in modules for b in m.buffers()]


def restore_buffers(saved: list[torch.Tensor], *modules: nn.Module) -> None:
    bufs = [b for m in modules for b in m.buffers()]
    with torch.no_grad():
        for b, s in zip(bufs, saved, strict=True):
            b.copy_(s)


def sync_buffers(module: nn.Module) -> None:
    """Average floating buffers (BatchNorm running stats) over ranks; integer buffers from rank 0.

    The models are wrapped with broadcast_buffers=False (see gansim/train/loss.py), so each rank's running
    statistics drift apart during an epoch; this brings them back together before validation, checkpoints and
    export.
    """
    if not distributed():
        return
    world = dist.get_world_size()
    with torch.no_grad():
        for b in module.buffers():
            if b.is_floating_point():
                dist.all_reduce(b, op=dist.ReduceOp.SUM)
                b.div_(world)
            else:
                dist.broadcast(b, src=0)


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def broadcast_float(value: float, device: torch.device) -> float:
    """Rank 0's value on every rank (e.g. the validation score only rank 0 computes)."""
    if not distributed():
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.broadcast(t, src=0)
    return float(t.item())
