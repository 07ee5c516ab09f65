"""Per-event calorimeter shower-shape features (vectorised numpy), after CaloGAN's analysis variables.

Input: a dict of arrays in file units (CaloGAN keys): ``energy`` (N,) or (N, 1) in GeV and ``layer_0``,
``layer_1``, ``layer_2`` in MeV. Output: a dict of float64 arrays of shape (N,), one per feature. Energies in
the output are in GeV. Notation, for layer k with cells c of energy e_c (GeV) at cell centre (x_c, y_c) in mm:

=====================  ===============================================================================
feature                definition
=====================  ===============================================================================
``E_k``                E_k = Σ_c e_c, the energy deposited in layer k (GeV), k = 0, 1, 2
``E_tot``              E_tot = E_0 + E_1 + E_2 (GeV)
``E_tot_over_E_inc``   E_tot / E_inc, the response (E_inc = incident energy, GeV)
``frac_k``             f_k = E_k / E_tot (0 when E_tot = 0)
``shower_depth``       s_d = Σ_k k · E_k / E_tot (layer index as depth; 0 when E_tot = 0)
``depth_width``        σ_sd = sqrt(Σ_k k² · E_k / E_tot − s_d²)
``max_depth``          deepest layer k with E_k > 0; −1 for an empty shower
``centre_x_k``         ⟨x⟩_k = Σ_c e_c x_c / E_k, energy-weighted centre across columns (mm; 0 when E_k = 0)
``centre_y_k``         ⟨y⟩_k = Σ_c e_c y_c / E_k, energy-weighted centre across rows (mm; 0 when E_k = 0)
``width_x_k``          σ_x,k = sqrt(Σ_c e_c x_c² / E_k − ⟨x⟩_k²)  (mm; 0 when E_k = 0)
``width_y_k``          σ_y,k = sqrt(Σ_c e_c y_c² / E_k − ⟨y⟩_k²)  (mm; 0 when E_k = 0)
``sparsity_k``         fraction of the layer's cells with e_c ≤ CELL_THRESHOLD_MEV (1 = empty layer)
``eratio_k``           (e_(1) − e_(2)) / (e_(1) + e_(2)) of the two hottest cells (0 when both are 0)
=====================  ===============================================================================

Geometry: the array axes are (rows, columns); cell sizes come from ``gansim.kinds.calo.CELL_SIZES_MM``
as (row height, column width). The grid is centred on the beam: for n cells of size s the centres are
(j + ½ − n/2)·s, j = 0..n−1, so layer 0 rows sit at −160, 0, +160 mm. "y" runs along rows (axis 1), "x"
along columns (axis 2), which is also how the images are drawn.
"""

from __future__ import annotations

import numpy as np

from gansim.errors import GansimError
from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES

MEV_TO_GEV = 1e-3
# A cell counts as hit above 1 keV: below any physical deposit, but it keeps a generator's tiny positive
# outputs (softplus tails, float noise) from counting as hits in the sparsity.
CELL_THRESHOLD_MEV = 1e-3


def cell_centres(layer: str) -> tuple[np.ndarray, np.ndarray]:
    """(y centres of the rows, x centres of the columns) in mm for a layer, centred on the beam."""
    (nr, nc), (sr, sc) = LAYER_SHAPES[layer], CELL_SIZES_MM[layer]
    return (np.arange(nr) + 0.5 - nr / 2) * sr, (np.arange(nc) + 0.5 - nc / 2) * sc


def feature_names() -> list[str]:
    """Every feature calo_features returns, in a stable order (reports and plots use it)."""
    names = [f"E_{k}" for k in range(3)] + ["E_tot", "E_tot_over_E_inc"] + [f"frac_{k}" for k in range(3)]
    names += ["shower_depth", "depth_width", "max_depth"]
    for k in range(3):
        names += [f"centre_x_{k}", f"centre_y_{k}", f"width_x_{k}", f"width_y_{k}", f"sparsity_{k}", f"eratio_{k}"]
    return names


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float64)
    np.divide(a, b, out=out, where=b > 0)
    return out


def incident_energy(data: dict[str, np.ndarray]) -> np.ndarray:
    """The incident energy as a float64 (N,) array in GeV."""
    if "energy" not in data:
        raise GansimError("calorimeter data has no 'energy' (incident energy) array")
    return np.asarray(data["energy"], dtype=np.float64).reshape(-1)


def layer_features(cells_mev: np.ndarray, layer: str) -> dict[str, np.ndarray]:
    """Energy, lateral centres/widths, sparsity and E_ratio of one layer; cells (N, rows, cols) in MeV."""
    e = np.asarray(cells_mev, dtype=np.float64) * MEV_TO_GEV
    if e.shape[1:] != LAYER_SHAPES[layer]:
        raise GansimError(f"'{layer}' has per-event shape {e.shape[1:]}, expected {LAYER_SHAPES[layer]}")
    y, x = cell_centres(layer)
    energy = e.sum(axis=(1, 2))
    row_sum, col_sum = e.sum(axis=2), e.sum(axis=1)  # projections onto y and x
    cy, cx = _safe_div(row_sum @ y, energy), _safe_div(col_sum @ x, energy)
    wy = np.sqrt(np.clip(_safe_div(row_sum @ (y * y), energy) - cy * cy, 0.0, None))
    wx = np.sqrt(np.clip(_safe_div(col_sum @ (x * x), energy) - cx * cx, 0.0, None))
    flat = e.reshape(len(e), -1)
    sparsity = (flat <= CELL_THRESHOLD_MEV * MEV_TO_GEV).mean(axis=1) if flat.shape[0] else np.zeros(0)
    if flat.shape[1] >= 2 and len(flat):
        top2 = -np.partition(-flat, 1, axis=1)[:, :2]  # two largest, descending
        eratio = _safe_div(top2[:, 0] - top2[:, 1], top2[:, 0] + top2[:, 1])
    else:
        eratio = np.zeros(len(flat))
    return {"E": energy, "centre_x": cx, "centre_y": cy, "width_x": wx, "width_y": wy,
            "sparsity": sparsity.astype(np.float64), "eratio": eratio}


def calo_features(data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """All shower-shape features of the module docstring, as float64 (N,) arrays keyed by feature_names()."""
    missing = [k for k in CALO_LAYERS if k not in data]
    if missing:
        raise GansimError(f"calorimeter data lacks {', '.join(missing)}")
    e_inc = incident_energy(data)
    per = [layer_features(data[layer], layer) for layer in CALO_LAYERS]
    if any(len(p["E"]) != len(e_inc) for p in per):
        raise GansimError("calorimeter arrays have different numbers of events")
    el = np.stack([p["E"] for p in per], axis=1)  # (N, 3)
    e_tot = el.sum(axis=1)
    depth = np.arange(3, dtype=np.float64)
    sd = _safe_div(el @ depth, e_tot)
    sd_width = np.sqrt(np.clip(_safe_div(el @ (depth * depth), e_tot) - sd * sd, 0.0, None))
    hit = el > 0
    max_depth = np.where(hit.any(axis=1), 2 - np.argmax(hit[:, ::-1], axis=1), -1).astype(np.float64)
    out: dict[str, np.ndarray] = {f"E_{k}": el[:, k] for k in range(3)}
    out["E_tot"] = e_tot
    out["E_tot_over_E_inc"] = _safe_div(e_tot, e_inc)
    for k in range(3):
        out[f"frac_{k}"] = _safe_div(el[:, k], e_tot)
    out["shower_depth"], out["depth_width"], out["max_depth"] = sd, sd_width, max_depth
    for k, p in enumerate(per):
        for name in ("centre_x", "centre_y", "width_x", "width_y", "sparsity", "eratio"):
            out[f"{name}_{k}"] = p[name]
    return {name: out[name] for name in feature_names()}
