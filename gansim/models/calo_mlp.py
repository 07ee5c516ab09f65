"""calo-mlp: a conditional MLP GAN for CaloGAN showers that builds each shower the way the physics does.

Generator: z (global latent) and the incident energy E (GeV) feed an MLP whose heads give
  * the response E_tot/E_inc and the three layer shares (softmax): layer energies are explicit outputs;
  * per-layer cell logits plus per-cell noise: cell energies = layer energy x softmax(logits + s * eps), where
    eps ~ N(0, 1) per cell is part of the latent vector and the scales s are learnt per cell and event. The
    noise gives every cell its own fluctuation, as the sampling fluctuations of a real shower do; a plain
    latent of a few dozen dimensions cannot (the classifier sees it at once);
  * zero suppression: cells below the readout threshold (the smallest non-zero cell of the training data,
    per layer) read exactly 0, like the reference; a straight-through estimator keeps the gradient.
Output biases start at the training data's mean layer shares and mean cell profile, so training starts
from the average shower rather than from noise.

Critic: an MLP on a fixed embedding of the shower - log(1 + e/threshold) per cell, the conditioning, and
standardised high-level features (layer energies, lateral centres and widths, lit-cell fractions, E_ratio,
response, shower depth) computed differentiably from the cells. It is penalised in this embedding
(GanLoss uses `embed`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES, N_CELLS

_SIZES = [int(np.prod(LAYER_SHAPES[k])) for k in CALO_LAYERS]
_OFF = np.concatenate([[0], np.cumsum(_SIZES)]).tolist()
N_FEATURES = 7 * len(CALO_LAYERS) + 2
N_COND = 3
TAU = 0.3  # softness (in log cell energy) of the threshold's surrogate gradient
MEV = 1e-3  # file units (MeV) -> model units (GeV)


def cond_features(energy: torch.Tensor) -> torch.Tensor:
    """(B,) incident energy in GeV -> (B, 3) smooth conditioning inputs of order 1."""
    le = torch.log(energy.clamp_min(1e-3)) / math.log(100.0)
    return torch.stack([le, le * le, torch.sqrt(energy.clamp_min(0.0)) / 10.0], 1)


def threshold_mask(cells: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """1 where cells > threshold (per cell), else 0; the backward pass sees a sigmoid in log energy."""
    hard = (cells > threshold).to(cells.dtype)
    soft = torch.sigmoid((torch.log(cells.clamp_min(1e-12)) - torch.log(threshold)) / TAU)
    return hard + soft - soft.detach()


def _cell_coordinates() -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = [], []
    for k in CALO_LAYERS:
        (nr, nc), (sr, sc) = LAYER_SHAPES[k], CELL_SIZES_MM[k]
        y = (np.arange(nr) + 0.5 - nr / 2) * sr / 100.0
        x = (np.arange(nc) + 0.5 - nc / 2) * sc / 100.0
        yy, xx = np.meshgrid(y, x, indexing="ij")
        ys.append(yy.ravel())
        xs.append(xx.ravel())
    return torch.tensor(np.concatenate(ys), dtype=torch.float32), torch.tensor(np.concatenate(xs), dtype=torch.float32)


def flat_cells(x: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([x[k].flatten(1) for k in CALO_LAYERS], 1)


def shower_features(cells: torch.Tensor, energy: torch.Tensor, threshold: torch.Tensor, y: torch.Tensor,
                    x: torch.Tensor) -> torch.Tensor:
    """Differentiable high-level features (B, N_FEATURES) of flat cells (B, 504) in GeV."""
    lit = threshold_mask(cells, 0.5 * threshold)
    out, layer_e = [], []
    for i in range(len(CALO_LAYERS)):
        sl = slice(_OFF[i], _OFF[i + 1])
        c = cells[:, sl]
        e = c.sum(1)
        layer_e.append(e)
        w = c / (e[:, None] + 1e-6)
        cy, cx = (w * y[sl]).sum(1), (w * x[sl]).sum(1)
        wy = ((w * y[sl] ** 2).sum(1) - cy ** 2).clamp_min(0).add(1e-8).sqrt()
        wx = ((w * x[sl] ** 2).sum(1) - cx ** 2).clamp_min(0).add(1e-8).sqrt()
        top2 = torch.topk(c, 2, dim=1).values
        eratio = (top2[:, 0] - top2[:, 1]) / (top2[:, 0] + top2[:, 1] + 1e-6)
        out += [torch.log(e / energy + 1e-4), cx, cy, wx, wy, lit[:, sl].mean(1), eratio]
    total = layer_e[0] + layer_e[1] + layer_e[2]
    out += [total / energy, (layer_e[1] + 2 * layer_e[2]) / (total + 1e-6)]
    return torch.stack(out, 1)


def fit_statistics(arrays: dict[str, np.ndarray], max_events: int = 50_000) -> dict[str, Any]:
    """Data statistics of a training set (model units): thresholds, mean shares and profiles, feature scales."""
    n = min(len(arrays["energy"]), max_events)
    energy = torch.as_tensor(np.asarray(arrays["energy"][:n], np.float32).reshape(-1))
    cells = torch.cat([torch.as_tensor(np.asarray(arrays[k][:n], np.float32)).flatten(1) for k in CALO_LAYERS], 1)
    cells = cells * MEV
    thr = []
    for i in range(len(CALO_LAYERS)):
        c = cells[:, _OFF[i]:_OFF[i + 1]]
        pos = c[c > 0]
        thr.append(float(pos.min()) * 0.999 if pos.numel() else 1e-9)  # zero suppression of the readout
    threshold = torch.cat([torch.full((s,), t) for s, t in zip(_SIZES, thr, strict=True)])
    layer_e = torch.stack([cells[:, _OFF[i]:_OFF[i + 1]].sum(1) for i in range(len(CALO_LAYERS))], 1)
    share = (layer_e / layer_e.sum(1, keepdim=True).clamp_min(1e-12)).mean(0)
    profile = torch.cat([(cells[:, _OFF[i]:_OFF[i + 1]] / layer_e[:, i:i + 1].clamp_min(1e-12)).mean(0)
                         for i in range(len(CALO_LAYERS))])
    y, x = _cell_coordinates()
    f = shower_features(cells, energy, threshold, y, x)
    return {"threshold": threshold, "share": share.clamp_min(1e-6), "profile": profile.clamp_min(1e-7),
            "feature_mean": f.mean(0), "feature_std": f.std(0) + 1e-3}


class CaloMLPGenerator(nn.Module):
    """G(z, E) -> {"layer_k": cells in GeV}; z = (latent_dim global values, then one noise value per cell)."""

    def __init__(self, *, latent_dim: int, hidden: int = 512, layers: int = 3,
                 stats: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.latent_dim, self.noise_dim = latent_dim, N_CELLS
        self.body = nn.ModuleList()
        n_in = latent_dim
        for _ in range(layers):
            self.body.append(nn.Linear(n_in + N_COND, hidden))
            n_in = hidden
        self.act = nn.LeakyReLU(0.2)
        self.energy_head = nn.Linear(hidden + N_COND, 1 + len(CALO_LAYERS))  # log response, share logits
        self.cell_head = nn.Linear(hidden + N_COND, N_CELLS)  # cell logits
        self.noise_head = nn.Linear(hidden + N_COND, N_CELLS)  # log scale of the per-cell logit noise
        self.register_buffer("threshold", torch.full((N_CELLS,), 1e-9))
        if stats is not None:
            self.initialise(stats)

    @torch.no_grad()
    def initialise(self, stats: dict[str, Any]) -> None:
        """Start from the average shower: output biases from the data, small output weights."""
        self.threshold.copy_(stats["threshold"])
        for head in (self.energy_head, self.cell_head, self.noise_head):
            head.weight.mul_(0.1)
        self.energy_head.bias.zero_()
        self.energy_head.bias[1:] = torch.log(stats["share"])
        for i in range(len(CALO_LAYERS)):
            sl = slice(_OFF[i], _OFF[i + 1])
            self.cell_head.bias[sl] = torch.log(stats["profile"][sl])
        self.noise_head.bias.fill_(-1.0)

    @property
    def latent_size(self) -> int:
        return self.latent_dim + self.noise_dim

    def forward(self, z: torch.Tensor, energy: torch.Tensor) -> dict[str, torch.Tensor]:
        energy = energy.reshape(-1)
        c = cond_features(energy)
        h, eps = z[:, :self.latent_dim], z[:, self.latent_dim:]
        for lin in self.body:
            h = self.act(lin(torch.cat([h, c], 1)))
        h = torch.cat([h, c], 1)
        e_out = self.energy_head(h)
        layer_e = torch.softmax(e_out[:, 1:], 1) * (torch.exp(0.1 * e_out[:, :1]) * energy[:, None])
        logits = self.cell_head(h) + torch.exp(self.noise_head(h)) * eps
        cells = torch.cat([torch.softmax(logits[:, _OFF[i]:_OFF[i + 1]], 1) * layer_e[:, i:i + 1]
                           for i in range(len(CALO_LAYERS))], 1)
        cells = cells * threshold_mask(cells, self.threshold)
        return {k: cells[:, _OFF[i]:_OFF[i + 1]].reshape(-1, *LAYER_SHAPES[k]) for i, k in enumerate(CALO_LAYERS)}


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
        y, x = _cell_coordinates()
        self.register_buffer("y", y)
        self.register_buffer("x", x)
        self.register_buffer("threshold", torch.full((N_CELLS,), 1e-9))
        self.register_buffer("feature_mean", torch.zeros(N_FEATURES))
        self.register_buffer("feature_std", torch.ones(N_FEATURES))
        if stats is not None:
            with torch.no_grad():
                self.threshold.copy_(stats["threshold"])
                self.feature_mean.copy_(stats["feature_mean"])
                self.feature_std.copy_(stats["feature_std"])

    def embed(self, x: dict[str, torch.Tensor], energy: torch.Tensor) -> torch.Tensor:
        """The critic's input: per-cell log energies, conditioning, standardised shower features."""
        energy = energy.reshape(-1)
        cells = flat_cells(x)
        f = shower_features(cells, energy, self.threshold, self.y, self.x)
        f = ((f - self.feature_mean) / self.feature_std).clamp(-20.0, 20.0)
        u = torch.log1p(cells.clamp_min(0.0) / self.threshold) / 5.0
        return torch.cat([u, cond_features(energy), f], 1)

    def forward(self, x: dict[str, torch.Tensor] | None, energy: torch.Tensor,
                embedded: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if embedded is None:
            assert x is not None
            embedded = self.embed(x, energy)
        # total energy (GeV) from the embedding's response feature, for the kind's auxiliary energy term
        i = N_CELLS + N_COND + N_FEATURES - 2
        total = (embedded[:, i] * self.feature_std[-2] + self.feature_mean[-2]) * energy.reshape(-1)
        return self.net(embedded).squeeze(1), total
