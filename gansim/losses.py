"""Adversarial losses on raw critic scores (minimax, non-saturating, WGAN-GP, hinge, least-squares) and aux terms."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from gansim.errors import GansimError

LOSSES = ("minimax", "non-saturating", "wgan-gp", "hinge", "least-squares")


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
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP (arXiv:1704.00028): mean over the batch of (||grad_x critic(x)||_2 - 1)^2 at random interpolates.

    Differentiable w.r.t. the critic's parameters (create_graph=True); real and fake are detached.
    alpha ~ U(0,1) per sample, drawn from `generator` (CPU or on the data's device) when given.
    """
    if real.shape != fake.shape:
        raise GansimError(f"gradient_penalty: real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    gen_device = generator.device if generator is not None else real.device
    alpha = torch.rand(shape, generator=generator, device=gen_device, dtype=real.dtype).to(real.device)
    x = (alpha * real.detach() + (1.0 - alpha) * fake.detach()).requires_grad_(True)
    score = critic(x)
    (grad,) = torch.autograd.grad(score.sum(), x, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


def energy_aux_loss(energy_reco: torch.Tensor, energy_true: torch.Tensor) -> torch.Tensor:
    """CaloGAN auxiliary term: mean absolute error between reconstructed and requested total energy (GeV)."""
    return (energy_reco.reshape(-1).float() - energy_true.reshape(-1).float()).abs().mean()


def class_aux_loss(class_logit: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """LAGAN auxiliary term: binary cross-entropy of the class logit against the 0/1 label."""
    return F.binary_cross_entropy_with_logits(class_logit.reshape(-1).float(), label.reshape(-1).float())
