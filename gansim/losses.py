"""Adversarial losses on raw critic scores (minimax, non-saturating, WGAN-GP, hinge, least-squares) and aux terms."""

from __future__ import annotations

import typing
from collections.abc import Callable

import torch
import torch.nn.functional as F

from gansim.config import Loss
from gansim.errors import GansimError

LOSSES: tuple[str, ...] = typing.get_args(Loss)


def _check(name: str) -> None:
    if name not in LOSSES:
        raise GansimError(f"unknown loss {name!r} (known: {', '.join(LOSSES)})")


def d_loss(name: str, real_score: torch.Tensor, fake_score: torch.Tensor) -> torch.Tensor:
    """Discriminator loss = real term + fake term, each a batch mean. Scores are logits / critic values."""
    _check(name)
    r, f = real_score.float(), fake_score.float()
    if name in ("minimax", "non-saturating"):  # binary cross-entropy: real -> 1, fake -> 0
        return F.softplus(-r).mean() + F.softplus(f).mean()
    if name == "wgan-gp":  # critic maximises E[D(real)] - E[D(fake)]; the penalty is added by the caller
        return f.mean() - r.mean()
    if name == "hinge":
        return F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean()
    return 0.5 * ((r - 1.0) ** 2).mean() + 0.5 * (f ** 2).mean()  # least-squares (LSGAN, a=0, b=c=1)


def g_loss(name: str, fake_score: torch.Tensor) -> torch.Tensor:
    """Generator loss; its gradient w.r.t. fake_score is negative (G wants higher scores)."""
    _check(name)
    f = fake_score.float()
    if name == "minimax":  # original: minimise log(1 - sigmoid(f)) = -softplus(f); saturates when D wins
        return -F.softplus(f).mean()
    if name == "non-saturating":  # maximise log sigmoid(f)
        return F.softplus(-f).mean()
    if name in ("wgan-gp", "hinge"):
        return -f.mean()
    return 0.5 * ((f - 1.0) ** 2).mean()


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     alpha: torch.Tensor) -> torch.Tensor:
    """WGAN-GP (arXiv:1704.00028): mean over the batch of (||grad_x critic(x)||_2 - 1)^2 at random interpolates.

    x = alpha * real + (1 - alpha) * fake with alpha (B,) in [0, 1) per sample. Differentiable w.r.t. the
    critic's parameters (create_graph=True); real and fake are detached.
    """
    if real.shape != fake.shape:
        raise GansimError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    if alpha.shape != real.shape[:1]:
        raise GansimError(f"gradient_penalty: alpha has shape {tuple(alpha.shape)}, expected ({real.shape[0]},)")
    a = alpha.to(real.device, real.dtype).reshape((real.shape[0],) + (1,) * (real.dim() - 1))
    x = (a * real.detach() + (1.0 - a) * fake.detach()).requires_grad_(True)
    score = critic(x)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def readout(name: str, score: torch.Tensor) -> torch.Tensor:
    """What TensorBoard shows: mean sigmoid(D) for probability losses, the mean critic value otherwise."""
    s = score.detach().float()
    return torch.sigmoid(s).mean() if name in ("minimax", "non-saturating") else s.mean()


def energy_aux_loss(energy_reco: torch.Tensor, energy_true: torch.Tensor) -> torch.Tensor:
    """CaloGAN auxiliary term: mean absolute error between reconstructed and requested total energy (GeV)."""
    return (energy_reco.reshape(-1).float() - energy_true.reshape(-1).float()).abs().mean()


def class_aux_loss(class_logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """LAGAN auxiliary term: binary cross-entropy of the class logit against the 0/1 label."""
    return F.binary_cross_entropy_with_logits(class_logit.reshape(-1).float(), label.reshape(-1).float())
