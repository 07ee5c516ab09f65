"""CaloGAN and LAGAN generator / discriminator: shapes, conditioning, gradients, BatchNorm rules, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from gansim.config import config_from_dict
from gansim.errors import GansimError
from gansim.losses import g_loss
from gansim.models.calogan import N_CELLS, LayerStream, pack_layers, unpack_layers
from gansim.models.names import MODEL_KINDS
from gansim.models.registry import (
    MODELS,
    build_discriminator,
    build_generator,
    count_parameters,
    describe,
    model_kind,
)

TINY = {"latent_dim": 8, "gen_channels": 8, "disc_channels": 8, "minibatch_kernels": 3, "minibatch_dim": 2}
SHAPES = {"layer_0": (3, 96), "layer_1": (12, 12), "layer_2": (12, 6)}


def tiny(name: str = "calogan", loss: str = "non-saturating", **model):
    particle = "jets" if name == "lagan" else "eplus"
    return config_from_dict({"model": {"name": name, **TINY, **model}, "loss": {"name": loss},
                             "data": {"particle": particle}})


def has_batchnorm(m: nn.Module) -> bool:
    return any(isinstance(x, nn.modules.batchnorm._BatchNorm) for x in m.modules())


@pytest.mark.parametrize("attention", [True, False])
def test_calo_generator_shapes_and_non_negative(attention):
    torch.manual_seed(0)
    g = build_generator(tiny(attention=attention))
    out = g(torch.randn(6, 8), torch.rand(6) * 99 + 1)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == SHAPES
    assert all(v.shape[0] == 6 and (v >= 0).all() and v.dtype == torch.float32 and v.is_contiguous()
               for v in out.values())
    assert sum(int((v > 0).sum()) for v in out.values()) > 0  # not dead at initialisation
    assert (g.attn is not None) == attention


def test_attention_changes_parameters_and_output():
    torch.manual_seed(0)
    g_on = build_generator(tiny(attention=True)).eval()
    g_off = build_generator(tiny(attention=False)).eval()
    assert count_parameters(g_on) - count_parameters(g_off) == 2 * (2 * 2 * 9 + 2)  # two 3x3 convs 2->2
    g_off.load_state_dict(g_on.state_dict(), strict=False)
    z, e = torch.randn(4, 8), torch.full((4,), 50.0)
    with torch.no_grad():
        a, b = g_on(z, e), g_off(z, e)
    torch.testing.assert_close(a["layer_0"], b["layer_0"])  # layer 0 has no predecessor
    assert not torch.allclose(a["layer_1"], b["layer_1"])


def test_energy_scales_the_latent_vector():
    torch.manual_seed(0)
    g = build_generator(tiny()).eval()
    z = torch.randn(5, 8)
    with torch.no_grad():
        a = g(z, torch.full((5,), 50.0))
        b = g(0.5 * z, torch.full((5,), 100.0))  # z * E/100 is the same vector
        c = g(z, torch.full((5,), 100.0))
        zero = g(torch.randn(5, 8), torch.zeros(5))
    for k in SHAPES:
        torch.testing.assert_close(a[k], b[k])
        assert not torch.allclose(a[k], c[k])
        torch.testing.assert_close(zero[k], zero[k][:1].expand_as(zero[k]))  # E = 0 erases z


def test_calo_discriminator_outputs():
    torch.manual_seed(0)
    d = build_discriminator(tiny())
    layers = {k: torch.rand(7, *s) for k, s in SHAPES.items()}
    energy = torch.rand(7) * 100
    score, e_reco = d(layers, energy)
    assert score.shape == (7,) and e_reco.shape == (7,)
    total = sum(v.flatten(1).sum(1) for v in layers.values())
    torch.testing.assert_close(e_reco, total)
    assert torch.isfinite(score).all()


def test_calo_discriminator_without_minibatch_features():
    d = build_discriminator(tiny(minibatch_kernels=0))
    layers = {k: torch.rand(3, *s) for k, s in SHAPES.items()}
    assert d(layers, torch.ones(3))[0].shape == (3,)
    assert count_parameters(d) < count_parameters(build_discriminator(tiny()))


def test_gradient_reaches_every_generator_parameter():
    torch.manual_seed(0)
    cfg = tiny()
    g, d = build_generator(cfg), build_discriminator(cfg)
    energy = torch.rand(16) * 99 + 1
    out = g(torch.randn(16, 8), energy)
    score, e_reco = d(out, energy)
    (g_loss("non-saturating", score) + (e_reco - energy).abs().mean()).backward()
    dead = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"


@pytest.mark.parametrize("name", ["calogan", "lagan"])
def test_batchnorm_only_without_wgan_gp(name):
    assert has_batchnorm(build_discriminator(tiny(name)))
    assert not has_batchnorm(build_discriminator(tiny(name, "wgan-gp")))
    assert not has_batchnorm(build_discriminator(tiny(name, batchnorm="off")))
    assert has_batchnorm(build_generator(tiny(name, "wgan-gp")))  # the rule is for the critic only


def test_wgan_gp_lagan_critic_is_deterministic():
    d = build_discriminator(tiny("lagan", "wgan-gp")).train()
    x = {"image": torch.rand(4, 25, 25)}
    torch.testing.assert_close(d(x, torch.ones(4))[0], d(x, torch.ones(4))[0])  # no dropout


def test_pack_unpack_round_trip():
    layers = {k: torch.randn(2, *s) for k, s in SHAPES.items()}
    flat = pack_layers(layers)
    assert flat.shape == (2, N_CELLS) == (2, 504)
    for k, v in unpack_layers(flat).items():
        torch.testing.assert_close(v, layers[k])


def test_layer_stream_parameter_count():
    s = LayerStream(latent_dim=8, rows=3, cols=4, base=64)  # widths 36, 16, 6
    dense = 8 * 5 * 6 * 36 + 5 * 6 * 36
    conv = 36 * 16 * 4 + 16 + 2 * 16  # + BatchNorm affine
    lc1 = (4 * 5) * (16 * 4) * 6 + 6 * 4 * 5
    lc2 = (3 * 4) * (6 * 4) * 1
    assert count_parameters(s) == dense + conv + lc1 + lc2


def test_lagan_shapes_and_class_conditioning():
    torch.manual_seed(0)
    cfg = tiny("lagan")
    g, d = build_generator(cfg).eval(), build_discriminator(cfg)
    z = torch.randn(4, 8)
    with torch.no_grad():
        sig, bkg = g(z, torch.ones(4)), g(z, torch.zeros(4))
    assert sig["image"].shape == (4, 25, 25) and (sig["image"] >= 0).all() and (bkg["image"] >= 0).all()
    assert not torch.allclose(sig["image"], bkg["image"])
    score, cls = d(sig, torch.ones(4))
    assert score.shape == (4,) and cls.shape == (4,)
    g.train()
    g(z, torch.tensor([0.0, 1.0, 0.0, 1.0]))["image"].sum().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_registry_kind_and_describe():
    assert model_kind(tiny()).name == "calo" and model_kind(tiny("lagan")).name == "jets"
    assert model_kind(tiny()).scale == 1e-3 and model_kind(tiny("lagan")).scale == 1e-2
    assert {n: s.kind for n, s in MODELS.items()} == MODEL_KINDS  # the light name table and the builders agree
    cfg = tiny()
    line = describe(cfg)
    n_g = count_parameters(build_generator(cfg))
    assert line.startswith("calogan (calo): G ") and f"({n_g:,})" in line and "\n" not in line
    cfg.model.name = "nope"
    with pytest.raises(GansimError, match="unknown model 'nope'"):
        build_generator(cfg)


def test_calo_mlp_builds_showers_from_layer_energies_and_threshold():
    """calo-mlp: non-negative cells, exact zeros below the data's zero-suppression threshold, the response
    the event level chose (initialised from data statistics), and gradients into every parameter."""
    import numpy as np

    from gansim.models.calo_mlp_stats import fit_statistics
    from gansim.models.calo_showers import N_BINS, N_FEATURES
    from gansim.models.registry import data_statistics, latent_size
    from tests.conftest import make_calo_arrays

    a = make_calo_arrays(400, seed=2)
    for k in SHAPES:
        a[k] = np.where(a[k] > 2.0, a[k], 0.0).astype(np.float32)  # a readout that suppresses cells <= 2 MeV
    cfg = tiny("calo-mlp", "wgan-gp", gen_channels=32, disc_channels=32, gen_layers=2, disc_layers=2)
    stats = data_statistics(cfg, a)
    assert stats is not None and set(stats) == set(fit_statistics(a))
    assert stats["feature_mean"].shape == (N_BINS, N_FEATURES) and stats["event_mean"].shape == (N_BINS, 4)
    assert abs(float(stats["threshold"].min()) - 2e-3) < 1e-3  # smallest non-zero cell, in GeV
    g, d = build_generator(cfg, stats), build_discriminator(cfg, stats)
    torch.manual_seed(0)
    energy = torch.tensor([2.0, 20.0, 80.0])
    out = g(torch.randn(3, latent_size(cfg)), energy)
    assert {k: tuple(v.shape[1:]) for k, v in out.items()} == SHAPES
    cells = torch.cat([v.flatten(1) for v in out.values()], 1)
    assert (cells >= 0).all() and ((cells == 0) | (cells > 0.999 * 2e-3)).all()
    # the survivors of zero suppression keep the layer energies the event level chose: the response is exact
    from gansim.models.calo_showers import N_EVENT

    z = torch.randn(3, latent_size(cfg))
    z[:, :N_EVENT] = 0.0  # event noise at zero: the energy-binned mean response of the data
    mean_resp = torch.exp(g.event_mean(energy)[:, 0])
    got = torch.cat([v.flatten(1) for v in g(z, energy).values()], 1).sum(1) / energy
    torch.testing.assert_close(got, mean_resp, rtol=2e-2, atol=0)
    score, total = d(out, energy)
    assert score.shape == (3,) and torch.allclose(total, cells.sum(1), rtol=1e-3)
    score.sum().backward()
    dead = [n for n, p in g.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, f"no gradient reaches {dead}"
    torch.testing.assert_close(d(None, energy, embedded=d.embed(out, energy))[0], d(out, energy)[0])


def test_calo_mlp_shift_moves_every_layer_by_the_same_millimetres():
    """model.shift: (dy, dx) per event and layer moves that layer's mean profile by that many mm (bilinear
    resampling keeps the centroid exact for sub-cell shifts); off, the generator has no shift weights, so
    artefacts trained before the option still load."""
    import numpy as np

    from gansim.models.calo_mlp import CALO_LAYERS, shifted_profile
    from gansim.models.calo_showers import OFF, cell_coordinates
    from gansim.models.registry import latent_size
    from tests.conftest import make_calo_arrays

    y, x = cell_coordinates()  # units of 100 mm
    log_p = -((y * 100 / 30.0) ** 2 + (x * 100 / 30.0) ** 2) / 2  # a 30 mm wide blob at the centre of each layer
    shift = torch.tensor([[0.5, -1.0, 3.0, -2.5, 6.0, 5.0], [-0.2, 2.0, -1.0, 4.0, -2.0, 9.0]])  # (dy, dx) x 3
    moved = torch.exp(shifted_profile(log_p.expand(2, -1), shift))
    for i, k in enumerate(CALO_LAYERS):
        sl = slice(OFF[i], OFF[i + 1])
        w = moved[:, sl] / moved[:, sl].sum(1, keepdim=True)
        cy, cx = (w * y[sl]).sum(1) * 100, (w * x[sl]).sum(1) * 100
        if k != "layer_0":  # layer 0 has 3 rows of 160 mm: the blob is not contained in y
            torch.testing.assert_close(cy, shift[:, 2 * i], rtol=0, atol=0.05)
        torch.testing.assert_close(cx, shift[:, 2 * i + 1], rtol=0, atol=0.05)

    cfg = tiny("calo-mlp", "wgan-gp", gen_channels=16, disc_channels=16, gen_layers=1, disc_layers=1)
    from gansim.models.registry import data_statistics

    stats = data_statistics(cfg, make_calo_arrays(300, seed=4))
    assert not any("shift" in n for n in build_generator(cfg, stats).state_dict())
    cfg.model.shift = True
    g = build_generator(cfg, stats)
    assert stats is not None and np.all(stats["shift_std"].numpy() > 0)
    out = g(torch.randn(4, latent_size(cfg)), torch.tensor([5.0, 10.0, 50.0, 90.0]))
    sum(v.sum() for v in out.values()).backward()
    assert g.shift_head.weight.grad is not None and g.shift_head.weight.grad.abs().sum() > 0


def test_calo_mlp_layer_without_survivors_passes_no_gradient():
    """A layer whose cells all fall below the readout threshold reads 0 and sends no gradient back: rescaling
    its empty sum used to multiply the threshold's surrogate gradient by ~1e9 (generator gradient norms 1e15)."""
    from gansim.models.registry import data_statistics, latent_size
    from tests.conftest import make_calo_arrays

    cfg = tiny("calo-mlp", "wgan-gp", gen_channels=16, disc_channels=16, gen_layers=1, disc_layers=1)
    stats = data_statistics(cfg, make_calo_arrays(300, seed=4))
    assert stats is not None
    stats["threshold"][:] = 1e3  # 1 TeV per cell: nothing survives
    g = build_generator(cfg, stats)
    torch.manual_seed(0)
    out = g(torch.randn(8, latent_size(cfg)), torch.full((8,), 50.0))
    assert all(bool((v == 0).all()) for v in out.values())
    sum((v * torch.randn_like(v)).sum() for v in out.values()).backward()
    assert all(p.grad is None or not p.grad.any() for p in g.parameters())


def test_calo_mlp_hits_draw_each_cells_occupancy_from_the_data():
    """model.hits: which cells are lit is drawn per cell with the data's P(lit | E), from a second per-cell noise
    vector; the known answer is the occupancy of make_calo_arrays (layer_0 30 %, layer_1 all, layer_2 50 %),
    which the amplitude noise alone (hits off) cannot give: its tiny readout threshold lights almost every cell."""
    from gansim.models.calo_showers import OFF
    from gansim.models.registry import data_statistics, latent_size
    from tests.conftest import make_calo_arrays

    cfg = tiny("calo-mlp", "wgan-gp", gen_channels=16, disc_channels=16, gen_layers=1, disc_layers=1)
    stats = data_statistics(cfg, make_calo_arrays(2000, seed=5))
    energy = torch.linspace(2.0, 90.0, 2000)

    def occupancy() -> list[float]:
        torch.manual_seed(1)
        g = build_generator(cfg, stats)
        with torch.no_grad():
            cells = torch.cat([v.flatten(1) for v in g(torch.randn(2000, latent_size(cfg)), energy).values()], 1)
        return [float((cells[:, OFF[i]:OFF[i + 1]] > 0).float().mean()) for i in range(3)]

    assert latent_size(cfg) == cfg.model.latent_dim + N_CELLS
    off = occupancy()
    assert off[0] > 0.9 and off[2] > 0.9
    cfg.model.hits = True
    assert latent_size(cfg) == cfg.model.latent_dim + 2 * N_CELLS
    on = occupancy()
    for got, want in zip(on, [0.3, 1.0, 0.5], strict=True):
        assert abs(got - want) < 0.03, (on, off)
    g = build_generator(cfg, stats)
    out = g(torch.randn(16, latent_size(cfg)), torch.full((16,), 40.0))
    sum((v * torch.randn_like(v)).sum() for v in out.values()).backward()
    assert g.hit_head.weight.grad is not None and g.hit_head.weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in g.parameters() if p.grad is not None)


def test_calo_mlp_quantiles_reproduce_a_bimodal_response_and_its_correlations():
    """model.quantiles: the event variables come from the data's quantile functions through a Gaussian copula, so
    with the heads at zero a bimodal response (30 % of events deposit ~1 % of the usual energy, mostly in layer 0,
    like pions crossing without a hadronic shower) is reproduced: fraction of low-response events, mean response,
    and the rank correlation of response and layer-0 share. A log-normal fit (quantiles off) spreads one wide
    bump over both modes and overshoots the mean."""
    from gansim.models.calo_mlp import quantile_transform
    from gansim.models.calo_mlp_stats import QUANTILE_KNOTS
    from gansim.models.registry import data_statistics, latent_size
    from tests.conftest import make_calo_arrays

    q = torch.stack([QUANTILE_KNOTS * 2.0, QUANTILE_KNOTS ** 3]).expand(2, -1, -1)  # (B, D, K)
    t = torch.tensor([[0.1, -0.5], [5.0, -4.0]])  # inside: exact at knots, linear between; outside: end slope
    step = float(QUANTILE_KNOTS[1] - QUANTILE_KNOTS[0])
    want = torch.tensor([[0.2, -0.125], [10.0, -3.5 ** 3 - 0.5 * (3.5 ** 3 - (3.5 - step) ** 3) / step]])
    torch.testing.assert_close(quantile_transform(q, t), want)

    n = 4000
    a = make_calo_arrays(n, seed=6)
    mip = np.random.default_rng(0).random(n) < 0.3
    for k, f in (("layer_0", 0.05), ("layer_1", 0.01), ("layer_2", 0.01)):
        a[k][mip] *= f
    energy = torch.as_tensor(a["energy"].reshape(-1))

    def response_and_share(layers: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        e = np.stack([np.asarray(layers[k]).reshape(n, -1).sum(1) for k in ("layer_0", "layer_1", "layer_2")], 1)
        return e.sum(1) / a["energy"].reshape(-1), e[:, 0] / e.sum(1)

    def rank_corr(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.corrcoef(u.argsort().argsort(), v.argsort().argsort())[0, 1])

    resp_data, share_data = response_and_share(a)
    resp_data = resp_data * 1e-3  # MeV cells, GeV energy
    cut = 0.1 * np.median(resp_data)
    cfg = tiny("calo-mlp", "wgan-gp", gen_channels=16, disc_channels=16, gen_layers=1, disc_layers=1)
    stats = data_statistics(cfg, a)

    def generate(quantiles: bool) -> tuple[np.ndarray, np.ndarray]:
        cfg.model.quantiles = quantiles
        g = build_generator(cfg, stats)
        torch.manual_seed(2)
        z = torch.randn(n, latent_size(cfg))
        with torch.no_grad():
            g.event_head.weight.zero_()
            out = g(z, energy)
        r, s = response_and_share({k: v.numpy() for k, v in out.items()})
        return r * a["energy"].reshape(-1) / energy.numpy(), s

    (on, share_on), (off, share_off) = generate(True), generate(False)
    assert abs((on < cut).mean() - 0.3) < 0.03
    assert abs(on.mean() / resp_data.mean() - 1) < 0.05
    assert abs(off.mean() / resp_data.mean() - 1) > 0.3
    want_corr = rank_corr(resp_data, share_data)
    # the copula carries most of the data's correlation (the softmax over layer shares dilutes it a little);
    # independent draws carry none
    assert want_corr < -0.5 and rank_corr(on, share_on) < 0.7 * want_corr, (want_corr, rank_corr(on, share_on))
    assert abs(rank_corr(off, share_off)) < 0.15


def test_lit_softmax_stays_finite_when_the_lit_cells_lie_far_in_the_tail():
    """Energy is shared among the lit cells by a softmax over them alone: equal to the masked softmax, zero where
    nothing is lit, and with finite gradients when every lit cell is ~100 nats below the unlit ones (the
    renormalised plain softmax divided by an underflowed sum: NaN gradients in 1 of 4 batches after 20 epochs)."""
    from gansim.models.calo_mlp import lit_softmax

    logits = torch.tensor([[0.0, -100.0, -101.0, 5.0], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]], requires_grad=True)
    soft = torch.full((3, 4), 0.3, requires_grad=True)
    hard = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    share = lit_softmax(logits, hard + soft - soft.detach())
    want = torch.softmax(logits.detach().masked_fill(hard == 0, float("-inf")), 1).nan_to_num(0.0)
    torch.testing.assert_close(share.detach(), want)
    (share * torch.arange(1.0, 5.0)).sum().backward()
    assert torch.isfinite(logits.grad).all() and torch.isfinite(soft.grad).all()
    assert logits.grad[0, 1:3].abs().sum() > 0
    # an unlit cell's surrogate gradient is its weight relative to the lit ones (capped at exp(20))
    assert 0 < soft.grad[2, 0] == soft.grad[2, 3] / 4 and soft.grad[0, 3] <= 4 * math.exp(20)
