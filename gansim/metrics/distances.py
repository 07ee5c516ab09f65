"""One-dimensional distances between a reference and a generated feature distribution.

* Separation power (CaloChallenge): with both samples histogrammed on the same bins and each histogram
  normalised to unit sum, S = ½ Σ_b (h1_b − h2_b)² / (h1_b + h2_b) (bins with h1_b + h2_b = 0 skipped).
  S = 0 for identical histograms, S = 1 for non-overlapping ones. Values outside the shared range are
  clipped into the edge bins, so a generated sample that lies far off the reference still scores 1.
* Wasserstein-1 (earth mover's) distance W1 = ∫ |F1(t) − F2(t)| dt (scipy.stats.wasserstein_distance), in
  the feature's units, and W1 / σ_ref normalised by the reference's standard deviation (unitless, comparable
  across features).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

DEFAULT_BINS = 50


def shared_edges(reference: np.ndarray, generated: np.ndarray, bins: int = DEFAULT_BINS,
                 quantile: float = 0.001) -> np.ndarray:
    """Bin edges shared by both samples: evenly spaced over the pooled [q, 1 − q] quantile range.

    A feature that takes few distinct values (layer index, sparsity of a small layer) gets one bin per value
    so that neighbouring values never share a bin by accident of the grid.
    """
    pooled = np.concatenate([np.ravel(reference), np.ravel(generated)]).astype(np.float64)
    pooled = pooled[np.isfinite(pooled)]
    if pooled.size == 0:
        return np.array([0.0, 1.0])
    values = np.unique(pooled) if pooled.size <= 200_000 else np.unique(pooled[:: pooled.size // 200_000 + 1])
    if len(values) <= bins:
        if len(values) == 1:
            return np.array([values[0] - 0.5, values[0] + 0.5])
        mids = (values[1:] + values[:-1]) / 2
        return np.concatenate([[values[0] - (mids[0] - values[0])], mids, [values[-1] + (values[-1] - mids[-1])]])
    lo, hi = np.quantile(pooled, [quantile, 1.0 - quantile])
    if not hi > lo:
        lo, hi = pooled.min(), pooled.max()
    return np.linspace(lo, hi, bins + 1)


def normalised_hist(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Histogram of x on edges (out-of-range values clipped into the edge bins), normalised to unit sum."""
    x = np.ravel(x).astype(np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.zeros(len(edges) - 1)
    h, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges)
    return h / h.sum()


def separation_power(reference: np.ndarray, generated: np.ndarray, bins: int | np.ndarray = DEFAULT_BINS) -> float:
    """½ Σ (h1 − h2)² / (h1 + h2) on shared binning; 0 = same histogram, 1 = disjoint."""
    edges = np.asarray(bins) if np.ndim(bins) else shared_edges(reference, generated, int(bins))
    h1, h2 = normalised_hist(reference, edges), normalised_hist(generated, edges)
    s = h1 + h2
    nz = s > 0
    # in [0, 1] by construction; the clip removes float rounding of disjoint histograms (1.0000000000000002)
    return float(np.clip(0.5 * np.sum((h1[nz] - h2[nz]) ** 2 / s[nz]), 0.0, 1.0))


def wasserstein(reference: np.ndarray, generated: np.ndarray) -> tuple[float, float]:
    """(W1, W1 / std(reference)); the normalised value is W1 itself when the reference has no spread."""
    a = np.ravel(reference).astype(np.float64)
    b = np.ravel(generated).astype(np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    w = float(wasserstein_distance(a, b))
    sd = float(a.std())
    return w, (w / sd if sd > 0 else w)


def feature_distances(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray],
                      bins: int = DEFAULT_BINS, wasserstein_too: bool = True) -> dict[str, dict[str, float]]:
    """Per feature present in both: separation power, W1, W1/σ_ref, and the two means and standard deviations."""
    out: dict[str, dict[str, float]] = {}
    for name in reference:
        if name not in generated:
            continue
        r, g = np.asarray(reference[name], np.float64), np.asarray(generated[name], np.float64)
        row = {"separation_power": separation_power(r, g, bins),
               "mean_ref": float(r.mean()) if r.size else float("nan"),
               "mean_gen": float(g.mean()) if g.size else float("nan"),
               "std_ref": float(r.std()) if r.size else float("nan"),
               "std_gen": float(g.std()) if g.size else float("nan")}
        if wasserstein_too:
            row["wasserstein"], row["wasserstein_norm"] = wasserstein(r, g)
        out[name] = row
    return out


def energy_bin_edges(e_ref: np.ndarray, n_bins: int = 8, spacing: str = "log") -> np.ndarray:
    """Incident-energy bin edges for response/resolution: log-spaced over the reference's range (so 1-13 GeV
    is not one point), or "quantile" for bins of equal reference population (e.g. deciles)."""
    e = np.ravel(e_ref).astype(np.float64)
    lo, hi = float(e.min()), float(e.max())
    if spacing == "log" and lo > 0 and hi > lo:
        edges = np.geomspace(lo, hi, n_bins + 1)
    else:
        edges = np.unique(np.quantile(e, np.linspace(0, 1, n_bins + 1)))
    if len(edges) < 2:
        edges = np.array([e.min() - 0.5, e.max() + 0.5])
    edges[-1] = np.nextafter(edges[-1], np.inf)  # include the maximum
    return edges


def response_resolution(e_inc: np.ndarray, e_tot: np.ndarray, edges: np.ndarray) -> dict[str, list[float]]:
    """Per incident-energy bin: ⟨E_inc⟩, count, response ⟨r⟩, resolution σ(r)/⟨r⟩ (r = E_tot/E_inc), errors.

    Using the ratio r rather than E_tot keeps the width of the energy bin itself out of the resolution.
    """
    e_inc, e_tot = np.ravel(e_inc).astype(np.float64), np.ravel(e_tot).astype(np.float64)
    idx = np.digitize(e_inc, edges) - 1
    rows: dict[str, list[float]] = {"e_lo": [], "e_hi": [], "e_mean": [], "count": [], "response": [],
                                    "response_err": [], "resolution": [], "resolution_err": []}
    for b in range(len(edges) - 1):
        sel = idx == b
        n = int(sel.sum())
        rows["e_lo"].append(float(edges[b]))
        rows["e_hi"].append(float(edges[b + 1]))
        rows["count"].append(n)
        if n == 0:
            for k in ("e_mean", "response", "response_err", "resolution", "resolution_err"):
                rows[k].append(float("nan"))
            continue
        r = e_tot[sel] / e_inc[sel]
        m = float(r.mean())
        rows["e_mean"].append(float(e_inc[sel].mean()))
        res = float(r.std() / m) if m > 0 else float("nan")
        rows["response"].append(m)
        rows["response_err"].append(float(r.std() / np.sqrt(n)))  # standard error of the mean
        rows["resolution"].append(res)
        rows["resolution_err"].append(res / np.sqrt(2 * max(n - 1, 1)))  # Gaussian approximation
    return rows
