"""calo-mlp: a conditional MLP GAN for CaloGAN showers that builds each shower the way the physics does.

Preprocessing fitted on the training set (`fit_statistics`, stored as buffers, so it travels with every
checkpoint and artefact) is energy dependent: in bins of log E_inc it holds the mean and spread of the
event-level variables u = (log E_tot/E_inc, log E_k/E_tot), the mean cell profile of every layer, the mean and
spread of the critic's shower features, and the readout threshold (the smallest non-zero cell of each layer).

Generator, from z = (global latent, per-cell noise) and E_inc:
  * event level: u = mu(E) + sigma(E) * (z_0..3 + head(h)): with the head at zero the response and the layer
    shares already have the data's mean and spread at every energy; the network learns their shape and
    correlations;
  * shift (model.shift): one transverse offset (dy, dx) per event moves the mean profile of every layer
    (bilinear resampling), scaled per layer: the shower axis wanders coherently through the layers (in the
    reference the layer-0 and layer-1 centroids are 0.9 correlated), which independent per-cell noise cannot
    produce, and wanders further the deeper the layer. Layer k moves by std_k(E) * (noise + head_k(h)), std_k
    starting at the data's spread of that layer's centroid at the event's energy;
  * cells: softmax per layer of (log mean profile(E) + head(h) + s * eps), eps ~ N(0, 1) per cell from the
    latent vector, times the layer energy; s starts at the data's spread of log cell shares per layer and energy
    and the network adjusts it per event. The per-cell noise gives every cell its own fluctuation, as sampling
    fluctuations do; a few dozen latent values cannot;
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

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES, N_CELLS

_SIZES = [int(np.prod(LAYER_SHAPES[k])) for k in CALO_LAYERS]
_OFF = np.concatenate([[0], np.cumsum(_SIZES)]).tolist()
N_LAYERS = len(CALO_LAYERS)
N_EVENT = 1 + N_LAYERS  # log response, log layer shares
PER_LAYER = 7  # shower features per layer: log energy, centre x, centre y, width x, width y, lit fraction, E_ratio
N_FEATURES = PER_LAYER * N_LAYERS + 2
N_COND = 3
N_BINS = 10  # log-energy bins of the fitted statistics
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


def layer_energies(cells: torch.Tensor) -> torch.Tensor:
    return torch.stack([cells[:, _OFF[i]:_OFF[i + 1]].sum(1) for i in range(N_LAYERS)], 1)


def event_variables(cells: torch.Tensor, energy: torch.Tensor) -> torch.Tensor:
    """(B, 4): log(E_tot / E_inc) and log(E_k / E_tot + 1e-5) of flat cells (GeV)."""
    el = layer_energies(cells)
    total = el.sum(1).clamp_min(1e-9)
    return torch.cat([torch.log(total / energy).unsqueeze(1), torch.log(el / total[:, None] + 1e-5)], 1)


def shower_features(cells: torch.Tensor, energy: torch.Tensor, threshold: torch.Tensor, y: torch.Tensor,
                    x: torch.Tensor) -> torch.Tensor:
    """Differentiable high-level features (B, N_FEATURES) of flat cells (B, 504) in GeV."""
    lit = threshold_mask(cells, 0.5 * threshold)
    out, layer_e = [], []
    for i in range(N_LAYERS):
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


def _binned(values: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of values (N, D) per log-energy bin around the centres (empty bins borrow)."""
    le = torch.log(energy)
    edges = (centres[1:] + centres[:-1]) / 2
    idx = torch.bucketize(le, edges)
    mu = torch.zeros(N_BINS, values.shape[1])
    sd = torch.ones(N_BINS, values.shape[1])
    for b in range(N_BINS):
        sel = idx == b
        if int(sel.sum()) >= 2:
            mu[b], sd[b] = values[sel].mean(0), values[sel].std(0)
        elif b > 0:
            mu[b], sd[b] = mu[b - 1], sd[b - 1]
    return mu, sd


def fit_statistics(arrays: dict[str, np.ndarray], max_events: int = 50_000) -> dict[str, Any]:
    """Data statistics of a training set (model units) that initialise generator and critic (see module doc)."""
    n = min(len(arrays["energy"]), max_events)
    energy = torch.as_tensor(np.asarray(arrays["energy"][:n], np.float32).reshape(-1))
    cells = torch.cat([torch.as_tensor(np.asarray(arrays[k][:n], np.float32)).flatten(1) for k in CALO_LAYERS], 1)
    cells = cells * MEV
    thr = []
    for i in range(N_LAYERS):
        c = cells[:, _OFF[i]:_OFF[i + 1]]
        pos = c[c > 0]
        thr.append(float(pos.min()) * 0.999 if pos.numel() else 1e-9)  # zero suppression of the readout
    threshold = torch.cat([torch.full((s,), t) for s, t in zip(_SIZES, thr, strict=True)])
    le = torch.log(energy)
    centres = torch.linspace(float(le.min()), float(le.max()), N_BINS + 1)
    centres = (centres[1:] + centres[:-1]) / 2
    u_mu, u_sd = _binned(event_variables(cells, energy), energy, centres)
    el = layer_energies(cells)
    shape = torch.cat([cells[:, _OFF[i]:_OFF[i + 1]] / el[:, i:i + 1].clamp_min(1e-12) for i in range(N_LAYERS)], 1)
    profile, _ = _binned(shape, energy, centres)
    y, x = _cell_coordinates()
    feats = shower_features(cells, energy, threshold, y, x)
    f_mu, f_sd = _binned(feats, energy, centres)
    yx = [PER_LAYER * i + j for i in range(N_LAYERS) for j in (2, 1)]  # (cy, cx) of every layer, units of 100 mm
    _, centroid_sd = _binned(feats[:, yx], energy, centres)
    return {"shift_std": centroid_sd.clamp_min(1e-3) * 100.0,
            "threshold": threshold, "centres": centres, "event_mean": u_mu, "event_std": u_sd.clamp_min(1e-3),
            "profile": torch.log(profile.clamp_min(1e-7)), "feature_mean": f_mu, "feature_std": f_sd + 1e-3,
            "log_noise": _cell_noise(shape, energy, centres)}


def _cell_noise(shape: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N_BINS, N_CELLS) log of the typical spread of log(cell share) of lit cells, per layer and energy bin:
    the initial scale of the per-cell noise (sparse layers fluctuate more, high energies less)."""
    idx = torch.bucketize(torch.log(energy), (centres[1:] + centres[:-1]) / 2)
    out = torch.zeros(N_BINS, N_CELLS)
    for b in range(N_BINS):
        rows = shape[idx == b]
        for i in range(N_LAYERS):
            logs = torch.log(rows[:, _OFF[i]:_OFF[i + 1]].clamp_min(1e-12))
            lit = rows[:, _OFF[i]:_OFF[i + 1]] > 0
            spreads = [logs[lit[:, c], c].std() for c in range(lit.shape[1]) if int(lit[:, c].sum()) > 20]
            out[b, _OFF[i]:_OFF[i + 1]] = torch.log(torch.stack(spreads).median()) if spreads else 0.0
    return out


def shifted_profile(log_profile: torch.Tensor, shift_mm: torch.Tensor) -> torch.Tensor:
    """Log mean profiles (B, N_CELLS) moved, bilinearly, by (dy, dx) mm per event and layer (B, 2 * N_LAYERS)."""
    parts = []
    for i, k in enumerate(CALO_LAYERS):
        (nr, nc), (sr, sc) = LAYER_SHAPES[k], CELL_SIZES_MM[k]
        img = torch.exp(log_profile[:, _OFF[i]:_OFF[i + 1]]).reshape(-1, 1, nr, nc)
        theta = torch.zeros(img.shape[0], 2, 3, dtype=img.dtype, device=img.device)
        theta[:, 0, 0] = theta[:, 1, 1] = 1.0
        # the grid samples the source at (output - shift): normalised units are half the layer's extent
        theta[:, 0, 2] = -2.0 * shift_mm[:, 2 * i + 1] / (nc * sc)
        theta[:, 1, 2] = -2.0 * shift_mm[:, 2 * i] / (nr * sr)
        grid = F.affine_grid(theta, list(img.shape), align_corners=False)
        moved = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
        parts.append(torch.log(moved.flatten(1).clamp_min(1e-7)))
    return torch.cat(parts, 1)


def _set_table(table: EnergyTable, centres: torch.Tensor, rows: torch.Tensor) -> None:
    table.centres.copy_(centres)
    table.rows.copy_(rows)


class CaloMLPGenerator(nn.Module):
    """G(z, E) -> {"layer_k": cells in GeV}; z = (latent_dim global values, then one noise value per cell)."""

    def __init__(self, *, latent_dim: int, hidden: int = 512, layers: int = 3, shift: bool = False,
                 stats: dict[str, Any] | None = None) -> None:
        super().__init__()
        n_event_noise = N_EVENT + (2 if shift else 0)
        if latent_dim < n_event_noise:
            raise ValueError(f"calo-mlp needs model.latent_dim >= {n_event_noise} (event-level noise), "
                             f"got {latent_dim}")
        self.latent_dim, self.noise_dim = latent_dim, N_CELLS
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
        if stats is not None:
            self.initialise(stats)

    @torch.no_grad()
    def initialise(self, stats: dict[str, Any]) -> None:
        """Start from the data's energy-dependent averages: statistics into buffers, heads near zero."""
        self.threshold.copy_(stats["threshold"])
        c = stats["centres"]
        _set_table(self.event_mean, c, stats["event_mean"])
        _set_table(self.event_std, c, stats["event_std"])
        _set_table(self.profile, c, stats["profile"])
        _set_table(self.log_noise, c, stats["log_noise"])
        heads = [self.event_head, self.cell_head, self.noise_head]
        if self.shift_head is not None and self.shift_std is not None:
            _set_table(self.shift_std, c, stats["shift_std"])
            heads.append(self.shift_head)
        for head in heads:
            head.weight.mul_(0.1)
            head.bias.zero_()

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
        u = self.event_mean(energy) + self.event_std(energy) * (z[:, :N_EVENT] + self.event_head(h))
        layer_e = torch.softmax(u[:, 1:], 1) * (torch.exp(u[:, :1]) * energy[:, None])
        noise = torch.exp(self.log_noise(energy) + self.noise_head(h))
        profile = self.profile(energy)
        if self.shift_head is not None and self.shift_std is not None:
            common = z[:, N_EVENT:N_EVENT + 2].repeat(1, N_LAYERS)  # one direction, shared by the layers
            shift_mm = self.shift_std(energy) * (common + self.shift_head(h))
            profile = shifted_profile(profile, shift_mm)
        logits = profile + self.cell_head(h) + noise * eps
        parts = []
        for i in range(N_LAYERS):
            sl = slice(_OFF[i], _OFF[i + 1])
            cells = torch.softmax(logits[:, sl], 1) * layer_e[:, i:i + 1]
            kept = cells * threshold_mask(cells, self.threshold[sl])
            # survivors carry the layer energy the event level chose (the readout loses nothing it records); a
            # layer with no survivor reads 0 and passes no gradient: dividing by a clamped empty sum scaled the
            # mask's surrogate gradient by ~1e9 (generator gradient norms of 1e15 in training)
            total = kept.sum(1, keepdim=True)
            some = total > 0
            scale = torch.where(some, layer_e[:, i:i + 1] / torch.where(some, total, torch.ones_like(total)), 0.0)
            parts.append(kept * scale)
        out = torch.cat(parts, 1)
        return {k: out[:, _OFF[i]:_OFF[i + 1]].reshape(-1, *LAYER_SHAPES[k]) for i, k in enumerate(CALO_LAYERS)}


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
