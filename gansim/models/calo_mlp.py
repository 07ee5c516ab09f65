"""calo-mlp: a conditional MLP GAN for CaloGAN showers that builds each shower the way the physics does.

Preprocessing fitted on the training set (`calo_mlp_stats.fit_statistics`, stored as buffers, so it travels
with every checkpoint and artefact) is energy dependent: in bins of log E_inc it holds the mean, spread, quantiles
and rank correlations of the event-level variables u = (log E_tot/E_inc, log E_k/E_tot), the mean cell profile
of every layer (overall and given that a cell is lit), each cell's probability to be lit, the mean and spread of
the critic's shower features, and the readout threshold (the smallest non-zero cell of each layer).

Generator, from z = (global latent, per-cell noise) and E_inc:
  * event level: u = mu(E) + sigma(E) * (z_0..3 + head(h)): with the head at zero the response and the layer
    shares already have the data's mean and spread at every energy; the network learns their shape and
    correlations;
  * quantiles (model.quantiles): u = Q(E, L(E) z_0..3 + head(h)) instead, Q the data's quantile function of
    each event variable at the event's energy (piecewise linear in Gaussian units) and L the Cholesky factor of
    their rank correlations (a Gaussian copula): with the head at zero the event variables have exactly the
    data's distributions and correlations, also where they are far from Gaussian (the pi+ response is bimodal:
    ~0.5 % of E_inc for pions that cross the calorimeter without a hadronic shower, ~40 % otherwise; a
    log-normal fit to it is 1.8 wide and doubles the mean response; e+ layer 2 is empty in 24 % of events);
  * shift (model.shift): one transverse offset (dy, dx) per event moves the mean profile of every layer
    (bilinear resampling), scaled per layer: the shower axis wanders coherently through the layers (in the
    reference the layer-0 and layer-1 centroids are 0.9 correlated), which independent per-cell noise cannot
    produce, and wanders further the deeper the layer. Layer k moves by std_k(E) * (noise + head_k(h)), std_k
    starting at the data's spread of that layer's centroid at the event's energy;
  * cells: softmax per layer of (log mean profile(E) + head(h) + s * eps), eps ~ N(0, 1) per cell from the
    latent vector, times the layer energy; s starts at the data's spread of log cell shares per layer and energy
    and the network adjusts it per event. The per-cell noise gives every cell its own fluctuation, as sampling
    fluctuations do; a few dozen latent values cannot;
  * hits (model.hits): which cells are lit is drawn first, one Bernoulli per cell with P(lit | E) from the data
    (moved with the shower axis when shift is on) adjusted by a head, from a second per-cell noise value
    (probit; straight-through gradient); the energy is then shared among the lit cells only, around the mean
    share of a cell *given that it is lit*. Occupancy and amplitude are then separate, as in a real readout:
    without it, how many cells pass the threshold is set by the amplitude noise alone, and the lit-cell
    fractions are the worst-modelled features (fidelity.md);
  * zero suppression: cells below the readout threshold read exactly 0 (straight-through gradient), and the
    surviving cells are rescaled so each layer keeps the energy the event level chose.

Critic: an MLP on a fixed embedding: log(1 + e/threshold) per cell, the conditioning, and the shower features
(layer energies, lateral centres and widths, lit-cell fractions, E_ratio, response, depth) computed
differentiably, standardised by their mean and spread at the event's energy (so a wrong energy dependence is
as visible as a wrong shape) and passed through asinh (never flat: a far-off shower still gets a gradient).
It is penalised in this embedding (GanLoss uses `embed`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES, N_CELLS
from gansim.models.calo_mlp_stats import P_MIN, QUANTILE_KNOTS
from gansim.models.calo_showers import (
    N_BINS,
    N_COND,
    N_EVENT,
    N_FEATURES,
    N_LAYERS,
    OFF,
    cell_coordinates,
    cond_features,
    flat_cells,
    shower_features,
    threshold_mask,
)

TAU_HIT = 0.5  # softness (probit units) of the hit draw's surrogate gradient


def noise_size(hits: bool) -> int:
    """Per-cell latent values after the global latent: amplitude noise, and hit noise with model.hits."""
    return N_CELLS * (2 if hits else 1)


class EnergyTable(nn.Module):
    """Per-log-energy-bin rows (N_BINS, D), linearly interpolated in log E between bin centres (clamped)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.linspace(0.0, math.log(100.0), N_BINS))
        self.register_buffer("rows", torch.zeros(N_BINS, dim))

    def forward(self, energy: torch.Tensor) -> torch.Tensor:
        c = self.centres
        le = torch.log(energy.clamp_min(1e-6)).clamp(c[0], c[-1])
        pos = (le - c[0]) / (c[1] - c[0]).clamp_min(1e-9)
        i0 = pos.floor().long().clamp(0, N_BINS - 2)
        w = (pos - i0).unsqueeze(1)
        return self.rows[i0] * (1 - w) + self.rows[i0 + 1] * w


def quantile_transform(knots_q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear Q(t) through (QUANTILE_KNOTS, knots_q (B, D, K)) at t (B, D); linear beyond the ends."""
    knots = QUANTILE_KNOTS.to(t.device, t.dtype)
    step = knots[1] - knots[0]
    i0 = ((t - knots[0]) / step).floor().long().clamp(0, len(knots) - 2)
    lo, hi = knots_q.gather(2, i0.unsqueeze(2)).squeeze(2), knots_q.gather(2, (i0 + 1).unsqueeze(2)).squeeze(2)
    w = (t - knots[0]) / step - i0.to(t.dtype)
    return lo + (hi - lo) * w


def shifted_profile(log_profile: torch.Tensor, shift_mm: torch.Tensor) -> torch.Tensor:
    """Log mean profiles (B, N_CELLS) moved, bilinearly, by (dy, dx) mm per event and layer (B, 2 * N_LAYERS)."""
    parts = []
    for i, k in enumerate(CALO_LAYERS):
        (nr, nc), (sr, sc) = LAYER_SHAPES[k], CELL_SIZES_MM[k]
        img = torch.exp(log_profile[:, OFF[i]:OFF[i + 1]]).reshape(-1, 1, nr, nc)
        theta = torch.zeros(img.shape[0], 2, 3, dtype=img.dtype, device=img.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        # the grid samples the source at (output - shift): normalised units are half the layer's extent
        theta[:, 0, 2] = -2.0 * shift_mm[:, 2 * i + 1] / (nc * sc)
        theta[:, 1, 2] = -2.0 * shift_mm[:, 2 * i] / (nr * sr)
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        moved = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
        parts.append(torch.log(moved.flatten(1).clamp_min(1e-7)))
    return torch.cat(parts, 1)


def hit_mask(log_prob: torch.Tensor, head: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """1 where a cell is lit: P(lit) = Phi(probit(prob) + head) with standard-normal noise; surrogate gradient."""
    s = torch.special.ndtri(torch.exp(log_prob).clamp(P_MIN, 1 - P_MIN)) + head + noise
    soft = torch.sigmoid(s / TAU_HIT)
    return (s > 0).to(s.dtype) + soft - soft.detach()


def lit_softmax(logits: torch.Tensor, hits: torch.Tensor) -> torch.Tensor:
    """Softmax over the lit cells only (hits 0/1 with a surrogate gradient); all zero where nothing is lit.

    Scaled by the largest *lit* logit, so the sum is >= 1 whenever a cell is lit: a plain softmax renormalised
    over the lit cells divides by their share of the whole layer, which underflows when they all lie far out in
    the tail (gradients of 1e38 -> NaN in ~1 of 4 batches after 20 epochs). An unlit cell's surrogate gradient
    is its weight relative to the lit ones, exp(logit - top), as in the plain softmax: it says how much energy
    the cell would take if lit. Bounding it by 1 (clamping at the top lit logit) made training drift (validation
    fidelity 0.022 -> 0.074 after 12 epochs); exp(20) only guards against overflow. The normalisation is
    detached: the survivors' rescale after the readout threshold carries its gradient.
    """
    lit = hits.detach() > 0
    top = logits.detach().masked_fill(~lit, float("-inf")).amax(1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    w = torch.exp((logits - top).clamp_max(20.0)) * hits
    norm = w.detach().sum(1, keepdim=True)
    return w / torch.where(lit.any(1, keepdim=True), norm, torch.ones_like(norm))


def _set_table(table: EnergyTable, centres: torch.Tensor, rows: torch.Tensor) -> None:
    table.centres.copy_(centres)
    table.rows.copy_(rows)


class CaloMLPGenerator(nn.Module):
    """G(z, E) -> {"layer_k": cells in GeV}; z = (latent_dim global values, then one noise value per cell, and a
    second one per cell with hits on)."""

    def __init__(self, *, latent_dim: int, hidden: int = 512, layers: int = 3, shift: bool = False,
                 hits: bool = False, quantiles: bool = False, stats: dict[str, Any] | None = None) -> None:
        super().__init__()
        n_event_noise = N_EVENT + (2 if shift else 0)
        if latent_dim < n_event_noise:
            raise ValueError(f"calo-mlp needs model.latent_dim >= {n_event_noise} (event-level noise), "
                             f"got {latent_dim}")
        self.latent_dim, self.noise_dim = latent_dim, noise_size(hits)
        self.body = nn.ModuleList()
        n_in = latent_dim
        for _ in range(layers):
            self.body.append(nn.Linear(n_in + N_COND, hidden))
            n_in = hidden
        self.act = nn.LeakyReLU(0.2)
        self.event_head = nn.Linear(hidden + N_COND, N_EVENT)
        self.cell_head = nn.Linear(hidden + N_COND, N_CELLS)  # cell logits around the mean profile
        self.noise_head = nn.Linear(hidden + N_COND, N_CELLS)  # log scale of the per-cell logit noise
        self.event_mean, self.event_std = EnergyTable(N_EVENT), EnergyTable(N_EVENT)
        self.profile, self.log_noise = EnergyTable(N_CELLS), EnergyTable(N_CELLS)
        self.register_buffer("threshold", torch.full((N_CELLS,), 1e-9))
        # per layer (dy, dx): in units of shift_std, mm
        self.shift_head = nn.Linear(hidden + N_COND, 2 * N_LAYERS) if shift else None
        self.shift_std = EnergyTable(2 * N_LAYERS) if shift else None
        self.event_q = EnergyTable(N_EVENT * len(QUANTILE_KNOTS)) if quantiles else None
        self.event_chol = EnergyTable(N_EVENT * N_EVENT) if quantiles else None
        self.hit_head = nn.Linear(hidden + N_COND, N_CELLS) if hits else None  # probit offset of P(lit)
        self.hit_prob = EnergyTable(N_CELLS) if hits else None  # log P(lit) per cell
        if stats is not None:
            self.initialise(stats)

    @torch.no_grad()
    def initialise(self, stats: dict[str, Any]) -> None:
        """Start from the data's energy-dependent averages: statistics into buffers, heads near zero."""
        self.threshold.copy_(stats["threshold"])
        c = stats["centres"]
        _set_table(self.event_mean, c, stats["event_mean"])
        _set_table(self.event_std, c, stats["event_std"])
        _set_table(self.profile, c, stats["profile"] if self.hit_prob is None else stats["lit_profile"])
        _set_table(self.log_noise, c, stats["log_noise"])
        heads = [self.event_head, self.cell_head, self.noise_head]
        if self.shift_head is not None and self.shift_std is not None:
            _set_table(self.shift_std, c, stats["shift_std"])
            heads.append(self.shift_head)
        if self.event_q is not None and self.event_chol is not None:
            _set_table(self.event_q, c, stats["event_quantiles"])
            _set_table(self.event_chol, c, stats["event_copula"])
        if self.hit_head is not None and self.hit_prob is not None:
            _set_table(self.hit_prob, c, stats["hit_prob"])
            heads.append(self.hit_head)
        for head in heads:
            head.weight.mul_(0.1)
            head.bias.zero_()

    @property
    def latent_size(self) -> int:
        return self.latent_dim + self.noise_dim

    def forward(self, z: torch.Tensor, energy: torch.Tensor) -> dict[str, torch.Tensor]:
        energy = energy.reshape(-1)
        c = cond_features(energy)
        h, eps = z[:, :self.latent_dim], z[:, self.latent_dim:self.latent_dim + N_CELLS]
        for lin in self.body:
            h = self.act(lin(torch.cat([h, c], 1)))
        h = torch.cat([h, c], 1)
        t = z[:, :N_EVENT]
        if self.event_chol is not None:  # correlated as in the data
            t = torch.einsum("bij,bj->bi", self.event_chol(energy).reshape(-1, N_EVENT, N_EVENT), t)
        t = t + self.event_head(h)
        if self.event_q is not None:
            u = quantile_transform(self.event_q(energy).reshape(-1, N_EVENT, len(QUANTILE_KNOTS)), t)
        else:
            u = self.event_mean(energy) + self.event_std(energy) * t
        layer_e = torch.softmax(u[:, 1:], 1) * (torch.exp(u[:, :1]) * energy[:, None])
        noise = torch.exp(self.log_noise(energy) + self.noise_head(h))
        profile = self.profile(energy)
        shift_mm = None
        if self.shift_head is not None and self.shift_std is not None:
            common = z[:, N_EVENT:N_EVENT + 2].repeat(1, N_LAYERS)  # one direction, shared by the layers
            shift_mm = self.shift_std(energy) * (common + self.shift_head(h))
            profile = shifted_profile(profile, shift_mm)
        hits = None
        if self.hit_head is not None and self.hit_prob is not None:
            log_prob = self.hit_prob(energy)
            if shift_mm is not None:
                log_prob = shifted_profile(log_prob, shift_mm)
            hits = hit_mask(log_prob, self.hit_head(h), z[:, self.latent_dim + N_CELLS:])
        logits = profile + self.cell_head(h) + noise * eps
        parts = []
        for i in range(N_LAYERS):
            sl = slice(OFF[i], OFF[i + 1])
            share = torch.softmax(logits[:, sl], 1) if hits is None else lit_softmax(logits[:, sl], hits[:, sl])
            cells = share * layer_e[:, i:i + 1]
            kept = cells * threshold_mask(cells, self.threshold[sl])
            # survivors carry the layer energy the event level chose (the readout loses nothing it records); a
            # layer with no survivor reads 0 and passes no gradient: dividing by a clamped empty sum scaled the
            # mask's surrogate gradient by ~1e9 (generator gradient norms of 1e15 in training)
            total = kept.sum(1, keepdim=True)
            some = total > 0
            scale = torch.where(some, layer_e[:, i:i + 1] / torch.where(some, total, torch.ones_like(total)), 0.0)
            parts.append(kept * scale)
        out = torch.cat(parts, 1)
        return {k: out[:, OFF[i]:OFF[i + 1]].reshape(-1, *LAYER_SHAPES[k]) for i, k in enumerate(CALO_LAYERS)}


class CaloMLPCritic(nn.Module):
    """D(x, E) -> (score (B,), total energy (B,) GeV) on a fixed embedding of the shower (see the module doc)."""

    def __init__(self, *, hidden: int = 512, layers: int = 3, stats: dict[str, Any] | None = None) -> None:
        super().__init__()
        dims = [N_CELLS + N_COND + N_FEATURES] + [hidden] * layers
        mods: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            mods += [nn.Linear(a, b), nn.LeakyReLU(0.2)]
        mods.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*mods)
        y, x = cell_coordinates()
        self.register_buffer("y", y)
        self.register_buffer("x", x)
        self.register_buffer("threshold", torch.full((N_CELLS,), 1e-9))
        self.feature_mean, self.feature_std = EnergyTable(N_FEATURES), EnergyTable(N_FEATURES)
        with torch.no_grad():
            self.feature_std.rows.fill_(1.0)
            if stats is not None:
                self.threshold.copy_(stats["threshold"])
                _set_table(self.feature_mean, stats["centres"], stats["feature_mean"])
                _set_table(self.feature_std, stats["centres"], stats["feature_std"])

    def embed(self, x: dict[str, torch.Tensor], energy: torch.Tensor) -> torch.Tensor:
        """The critic's input: per-cell log energies, conditioning, features standardised at the event's energy."""
        energy = energy.reshape(-1)
        cells = flat_cells(x)
        f = shower_features(cells, energy, self.threshold, self.y, self.x)
        # asinh: linear near the mean, logarithmic far out - never flat, so a far-off shower still gets a gradient
        f = torch.asinh((f - self.feature_mean(energy)) / self.feature_std(energy))
        u = torch.log1p(cells.clamp_min(0.0) / self.threshold) / 5.0
        return torch.cat([u, cond_features(energy), f], 1)

    def forward(self, x: dict[str, torch.Tensor] | None, energy: torch.Tensor,
                embedded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        energy = energy.reshape(-1)
        if embedded is None:
            assert x is not None
            embedded = self.embed(x, energy)
        # total energy (GeV) read back from the embedding's response feature, for the kind's auxiliary term
        i = N_CELLS + N_COND + N_FEATURES - 2
        resp = torch.sinh(embedded[:, i]) * self.feature_std(energy)[:, -2] + self.feature_mean(energy)[:, -2]
        return self.net(embedded).squeeze(1), resp * energy
