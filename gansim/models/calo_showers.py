"""Shower maths of calo-mlp shared by its generator, critic and fitted statistics: cell layout, conditioning,
the readout threshold's mask, event variables and the differentiable shower features (flat cells in GeV)."""

from __future__ import annotations

import math

import numpy as np
import torch

from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES

SIZES = [int(np.prod(LAYER_SHAPES[k])) for k in CALO_LAYERS]
OFF = np.concatenate([[0], np.cumsum(SIZES)]).tolist()
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


def cell_coordinates() -> tuple[torch.Tensor, torch.Tensor]:
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
    return torch.stack([cells[:, OFF[i]:OFF[i + 1]].sum(1) for i in range(N_LAYERS)], 1)


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
        sl = slice(OFF[i], OFF[i + 1])
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
