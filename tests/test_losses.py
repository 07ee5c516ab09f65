"""Adversarial and auxiliary losses on known inputs; gradient penalty on analytic critics."""

from __future__ import annotations

import math

import pytest
import torch

from gansim.errors import GansimError
from gansim.losses import LOSSES, class_aux_loss, d_loss, energy_aux_loss, g_loss, gradient_penalty

LN2 = math.log(2.0)


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float64)


def test_exact_values_at_zero_logits():
    zero = t(0.0, 0.0)
    assert d_loss("minimax", zero, zero).item() == pytest.approx(2 * LN2)
    assert d_loss("non-saturating", zero, zero).item() == pytest.approx(2 * LN2)
    assert g_loss("minimax", zero).item() == pytest.approx(-LN2)  # log(1 - 1/2)
    assert g_loss("non-saturating", zero).item() == pytest.approx(LN2)  # -log(1/2)


def test_exact_values_other_losses():
    real, fake = t(0.5, 2.0), t(-2.0, 0.5)
    # wgan: E[f] - E[r] = -0.75 - 1.25
    assert d_loss("wgan-gp", real, fake).item() == pytest.approx(-2.0)
    assert g_loss("wgan-gp", fake).item() == pytest.approx(0.75)
    # hinge: mean(relu(1-r)) = (0.5 + 0)/2, mean(relu(1+f)) = (0 + 1.5)/2
    assert d_loss("hinge", real, fake).item() == pytest.approx(1.0)
    assert g_loss("hinge", fake).item() == pytest.approx(0.75)
    # least squares: 0.5*mean((r-1)^2) + 0.5*mean(f^2) = 0.5*(0.25+1)/2 + 0.5*(4+0.25)/2
    assert d_loss("least-squares", real, fake).item() == pytest.approx(0.3125 + 1.0625)
    assert g_loss("least-squares", fake).item() == pytest.approx(0.5 * (9 + 0.25) / 2)
    # cross-entropy with logit 3: softplus(-3) for a real one, softplus(3) for a fake one
    sp = math.log1p(math.exp(-3.0))
    assert d_loss("minimax", t(3.0), t(3.0)).item() == pytest.approx(sp + 3.0 + sp)


@pytest.mark.parametrize("name", LOSSES)
def test_gradient_signs(name):
    fake = t(-2.5, -0.3, 0.0, 0.4, 0.8).requires_grad_(True)
    (gf,) = torch.autograd.grad(g_loss(name, fake), fake)
    assert (gf < 0).all(), f"{name}: G must want higher fake scores, got {gf}"
    real = t(-0.5, 0.0, 0.2, 0.5, 0.9).requires_grad_(True)
    fake_d = t(0.05, 0.1, 0.3, 0.5, 0.6).requires_grad_(True)  # > 0: LSGAN pushes fakes to 0
    gr, gfd = torch.autograd.grad(d_loss(name, real, fake_d), [real, fake_d])
    assert (gr < 0).all() and (gfd > 0).all(), f"{name}: D must push real up and fake down"


def test_minimax_saturates_where_non_saturating_does_not():
    fake = t(-8.0).requires_grad_(True)  # D confidently rejects the fake
    (g_mm,) = torch.autograd.grad(g_loss("minimax", fake), fake)
    (g_ns,) = torch.autograd.grad(g_loss("non-saturating", fake), fake)
    assert abs(g_mm.item()) < 1e-3 and g_ns.item() == pytest.approx(-1 / (1 + math.exp(-8.0)))


def test_unknown_loss_is_a_gansim_error():
    with pytest.raises(GansimError, match="unknown loss 'wasserstein'"):
        d_loss("wasserstein", t(0.0), t(0.0))
    with pytest.raises(GansimError, match="unknown loss"):
        g_loss("", t(0.0))


def test_gradient_penalty_linear_critic():
    w = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]], dtype=torch.float64)  # |w| = 3, image-shaped input
    real, fake = torch.randn(6, 2, 3, dtype=torch.float64), torch.randn(6, 2, 3, dtype=torch.float64)
    alpha = torch.rand(6, dtype=torch.float64)
    gp = gradient_penalty(lambda x: (x * w).flatten(1).sum(1), real, fake, alpha)
    assert gp.item() == pytest.approx((3.0 - 1.0) ** 2)
    unit = w / 3.0
    assert gradient_penalty(lambda x: (x * unit).flatten(1).sum(1), real, fake, alpha).item() == pytest.approx(
        0.0, abs=1e-12)


def test_gradient_penalty_quadratic_critic_uses_given_alpha():
    real = torch.randn(8, 5, dtype=torch.float64)
    fake = torch.randn(8, 5, dtype=torch.float64)
    alpha = torch.rand(8, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    gp = gradient_penalty(lambda x: 0.5 * (x ** 2).sum(1), real, fake, alpha)
    x = alpha[:, None] * real + (1 - alpha[:, None]) * fake  # grad of 0.5|x|^2 is x
    expect = ((x.norm(dim=1) - 1) ** 2).mean()
    assert gp.item() == pytest.approx(expect.item(), rel=1e-12)


def test_gradient_penalty_is_differentiable_wrt_critic_parameters():
    critic = torch.nn.Linear(4, 1).double()
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, 0.0, 0.0, 0.0]]))
    real, fake = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    gp = gradient_penalty(lambda x: critic(x).squeeze(1), real, fake, torch.rand(3, dtype=torch.float64))
    gp.backward()
    # gp = (|w| - 1)^2 -> d/dw = 2 (|w| - 1) w / |w| = (2, 0, 0, 0); the bias does not enter
    torch.testing.assert_close(critic.weight.grad, torch.tensor([[2.0, 0.0, 0.0, 0.0]], dtype=torch.float64))
    assert critic.bias.grad is None or critic.bias.grad.abs().item() == 0.0


def test_gradient_penalty_shape_mismatch():
    with pytest.raises(GansimError, match="differ"):
        gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2))
    with pytest.raises(GansimError, match="alpha has shape"):
        gradient_penalty(lambda x: x.sum(1), torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3))


def test_auxiliary_losses():
    assert energy_aux_loss(t(10.0, 20.0), t(12.0, 19.0).view(2, 1)).item() == pytest.approx(1.5)
    assert class_aux_loss(t(0.0, 0.0), t(1.0, 0.0)).item() == pytest.approx(LN2)
    assert class_aux_loss(t(2.0), t(1.0)).item() == pytest.approx(math.log1p(math.exp(-2.0)))
