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


def any_rank_true(flag: bool, device: torch.device) -> bool:
    """Logical OR of a per-rank flag over all ranks, so every rank takes the same branch (skip or step)."""
    if not distributed():
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def is_bad(*values: torch.Tensor) -> bool:
    return any(not bool(torch.isfinite(v).all()) for v in values)


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

    The models are wrapped with broadcast_buffers=False (see loop.py), so each rank's running statistics drift
    apart during an epoch; this brings them back together before validation, checkpoints and export.
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
