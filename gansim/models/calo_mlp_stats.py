"""Data statistics that initialise calo-mlp (energy-binned means, spreads, quantiles, copulas, occupancies,
profiles, noise scales, readout threshold), fitted once on the training set and stored as model buffers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from gansim.kinds.calo import CALO_LAYERS, N_CELLS
from gansim.models.calo_showers import (
    MEV,
    N_BINS,
    N_LAYERS,
    OFF,
    PER_LAYER,
    SIZES,
    cell_coordinates,
    event_variables,
    layer_energies,
    shower_features,
)

QUANTILE_KNOTS = torch.linspace(-3.5, 3.5, 57)  # Gaussian units, step 0.125: a gap between two modes is
# bridged by one segment, so a finer grid leaves fewer events between the modes
P_MIN = 1e-4  # hit probabilities are kept inside [P_MIN, 1 - P_MIN] (cells never lit in a bin stay possible)


def bin_index(energy: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Index of the log-energy bin (nearest centre) of each energy."""
    return torch.bucketize(torch.log(energy), (centres[1:] + centres[:-1]) / 2)


def _per_bin(values: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor, stat: Callable[[torch.Tensor],
             torch.Tensor], empty: torch.Tensor, min_rows: int) -> torch.Tensor:
    """stat(rows of values in the bin) for every log-energy bin, stacked; a bin with fewer than min_rows rows
    borrows the bin below (the first one keeps `empty`)."""
    idx = bin_index(energy, centres)
    out = empty.repeat(N_BINS, *([1] * empty.dim()))
    for b in range(N_BINS):
        rows = values[idx == b]
        if len(rows) >= min_rows:
            out[b] = stat(rows)
        elif b > 0:
            out[b] = out[b - 1]
    return out


def _binned(values: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of values (N, D) per log-energy bin around the centres (empty bins borrow)."""
    d = values.shape[1]
    both = _per_bin(values, energy, centres, lambda r: torch.stack([r.mean(0), r.std(0)]),
                    torch.stack([torch.zeros(d), torch.ones(d)]), 2)
    return both[:, 0], both[:, 1]


def fit_statistics(arrays: dict[str, np.ndarray], max_events: int = 50_000) -> dict[str, Any]:
    """Data statistics of a training set (model units) that initialise generator and critic (see module doc)."""
    n = min(len(arrays["energy"]), max_events)
    energy = torch.as_tensor(np.asarray(arrays["energy"][:n], np.float32).reshape(-1))
    cells = torch.cat([torch.as_tensor(np.asarray(arrays[k][:n], np.float32)).flatten(1) for k in CALO_LAYERS], 1)
    cells = cells * MEV
    thr = []
    for i in range(N_LAYERS):
        c = cells[:, OFF[i]:OFF[i + 1]]
        pos = c[c > 0]
        thr.append(float(pos.min()) * 0.999 if pos.numel() else 1e-9)  # zero suppression of the readout
    threshold = torch.cat([torch.full((s,), t) for s, t in zip(SIZES, thr, strict=True)])
    le = torch.log(energy)
    centres = torch.linspace(float(le.min()), float(le.max()), N_BINS + 1)
    centres = (centres[1:] + centres[:-1]) / 2
    u = event_variables(cells, energy)
    u_mu, u_sd = _binned(u, energy, centres)
    el = layer_energies(cells)
    shape = torch.cat([cells[:, OFF[i]:OFF[i + 1]] / el[:, i:i + 1].clamp_min(1e-12) for i in range(N_LAYERS)], 1)
    profile, _ = _binned(shape, energy, centres)
    y, x = cell_coordinates()
    feats = shower_features(cells, energy, threshold, y, x)
    f_mu, f_sd = _binned(feats, energy, centres)
    event_q, event_chol = _binned_quantiles(u, energy, centres), _binned_copula(u, energy, centres)
    lit = (cells > 0).to(cells.dtype)
    hit_prob, _ = _binned(lit, energy, centres)
    lit_profile = profile / hit_prob.clamp_min(P_MIN)  # mean share of a cell given that it is lit
    yx = [PER_LAYER * i + j for i in range(N_LAYERS) for j in (2, 1)]  # (cy, cx) of every layer, units of 100 mm
    _, centroid_sd = _binned(feats[:, yx], energy, centres)
    return {"shift_std": centroid_sd.clamp_min(1e-3) * 100.0,
            "threshold": threshold, "centres": centres, "event_mean": u_mu, "event_std": u_sd.clamp_min(1e-3),
            "profile": torch.log(profile.clamp_min(1e-7)), "lit_profile": torch.log(lit_profile.clamp_min(1e-7)),
            "event_quantiles": event_q, "event_copula": event_chol,
            "hit_prob": torch.log(hit_prob.clamp(P_MIN, 1 - P_MIN)),
            "feature_mean": f_mu, "feature_std": f_sd + 1e-3,
            "log_noise": _cell_noise(shape, energy, centres)}


def _binned_quantiles(values: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N_BINS, D * K) quantiles of values (N, D) at Phi(QUANTILE_KNOTS) per log-energy bin, made strictly
    increasing (a spike, e.g. empty layers, would otherwise have a flat quantile function and pass no gradient) by
    a slope of 1e-3 of the values' spread: an absolute slope of 1e-3 widened the e+ response (log spread 0.01 at
    high energy) by 12 %."""
    knots = QUANTILE_KNOTS.double()
    probs = torch.special.ndtr(knots)

    def quantiles(rows: torch.Tensor) -> torch.Tensor:
        rows = rows.double()
        return (torch.quantile(rows, probs, dim=0).T + 1e-3 * rows.std(0).unsqueeze(1) * knots).float()

    return _per_bin(values, energy, centres, quantiles, torch.zeros(values.shape[1], len(knots)), 20).flatten(1)


def _binned_copula(values: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N_BINS, D * D) Cholesky factors of the rank correlations of values (N, D) per log-energy bin (Gaussian
    copula): drawn through them, the event variables start with the data's correlations, not independent."""
    d = values.shape[1]

    def cholesky(rows: torch.Tensor) -> torch.Tensor:
        ranks = rows.argsort(0).argsort(0).double()
        corr = torch.corrcoef(torch.special.ndtri((ranks + 0.5) / len(rows)).T)
        return torch.linalg.cholesky(corr + 1e-4 * torch.eye(d, dtype=corr.dtype)).float()

    return _per_bin(values, energy, centres, cholesky, torch.eye(d), 20).flatten(1)


def _cell_noise(shape: torch.Tensor, energy: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """(N_BINS, N_CELLS) log of the typical spread of log(cell share) of lit cells, per layer and energy bin:
    the initial scale of the per-cell noise (sparse layers fluctuate more, high energies less)."""
    idx = bin_index(energy, centres)
    out = torch.zeros(N_BINS, N_CELLS)
    for b in range(N_BINS):
        rows = shape[idx == b]
        for i in range(N_LAYERS):
            logs = torch.log(rows[:, OFF[i]:OFF[i + 1]].clamp_min(1e-12))
            lit = rows[:, OFF[i]:OFF[i + 1]] > 0
            spreads = [logs[lit[:, c], c].std() for c in range(lit.shape[1]) if int(lit[:, c].sum()) > 20]
            out[b, OFF[i]:OFF[i + 1]] = torch.log(torch.stack(spreads).median()) if spreads else 0.0
    return out
