"""Evaluation plots (matplotlib Figures, no display needed): hist + mplhep histograms with error bars and ratio
panels, response/resolution, shower and jet images on log colour scales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, TwoSlopeNorm
from matplotlib.figure import Figure  # Figure objects render with Agg without touching pyplot's global state

from gansim.kinds.base import extrapolates
from gansim.kinds.calo import CALO_LAYERS, CELL_SIZES_MM, LAYER_SHAPES

REF_STYLE = {"color": "black", "label": "reference"}
GEN_STYLE = {"color": "tab:red", "label": "generated"}
DPI = 110
BINS = 50
RATIO_RANGE = (0.5, 1.5)  # the ratio panel's y range; points beyond are drawn as arrows at its edge
LOG_Y_DECADES, LOG_Y_SHARE = 2.0, 0.2  # log y when >= 20 % of the filled bins lie 2 decades below the peak
OUTSIDE_NOTE = 0.005  # name the generated fraction outside the reference's bins when it exceeds the reference's

LABELS: dict[str, str] = {
    "E_tot": "E_tot [GeV]", "E_tot_over_E_inc": "E_tot / E_inc", "shower_depth": "shower depth s_d (layer)",
    "depth_width": "depth width σ_sd (layer)", "max_depth": "deepest layer hit",
    "pt": "jet pT [GeV]", "mass": "jet mass [GeV]", "tau_21": "τ21", "n_pixels": "lit pixels",
    "tau_1": "τ1", "tau_2": "τ2", "pixel_intensity": "log10(pixel pT / GeV)",
}
for _k in range(3):
    LABELS.update({f"E_{_k}": f"E_{_k} [GeV]", f"frac_{_k}": f"E_{_k} / E_tot",
                   f"centre_x_{_k}": f"layer {_k} <x> [mm]", f"centre_y_{_k}": f"layer {_k} <y> [mm]",
                   f"width_x_{_k}": f"layer {_k} σ_x [mm]", f"width_y_{_k}": f"layer {_k} σ_y [mm]",
                   f"sparsity_{_k}": f"layer {_k} empty-cell fraction", f"eratio_{_k}": f"layer {_k} E_ratio"})


@dataclass
class HistItem:
    """One panel: a feature's reference and generated values, optional separation power for the title."""

    name: str
    ref: np.ndarray
    gen: np.ndarray
    sep: float | None = None
    title: str | None = None


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    return path


def hep_style() -> dict[str, Any]:
    """mplhep's ROOT-like style (ticks on all sides, inward; sans fonts), sized for grids of small panels."""
    import mplhep

    style = {k: v for k, v in mplhep.style.ROOT.items() if not k.startswith("mathtext")}
    # TeX Gyre Heros (mplhep-data) when installed, else DejaVu Sans: no missing-font warnings in batch logs
    style["font.sans-serif"] = [*mplhep.style.ROOT["font.sans-serif"], "DejaVu Sans"]
    style.update({"mathtext.fontset": "dejavusans", "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8,
                  "xtick.labelsize": 7, "ytick.labelsize": 7, "legend.fontsize": 7, "figure.figsize": (4, 4),
                  "xaxis.labellocation": "right", "yaxis.labellocation": "top", "lines.linewidth": 1.2})
    return style


def reference_edges(reference: np.ndarray, bins: int = BINS, quantile: float = 0.001) -> np.ndarray:
    """Bin edges from the reference alone (the generated tail must not stretch them): one bin per value for a
    feature of few distinct values, else equal-width bins over the reference's [q, 1 - q] quantile range."""
    x = np.ravel(reference).astype(np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return np.array([0.0, 1.0])
    values = np.unique(x)
    if len(values) <= bins:
        if len(values) == 1:
            return np.array([values[0] - 0.5, values[0] + 0.5])
        mids = (values[1:] + values[:-1]) / 2
        return np.concatenate([[values[0] - (mids[0] - values[0])], mids, [values[-1] + (values[-1] - mids[-1])]])
    lo, hi = np.quantile(x, [quantile, 1.0 - quantile])
    if not hi > lo:
        lo, hi = float(x.min()), float(x.max()) + 1e-12
    return np.linspace(lo, hi, bins + 1)


@dataclass
class Histogram:
    """A sample histogrammed with `hist` on fixed edges: unit-area density, its Poisson error, the fraction of
    entries outside the edges (kept in hist's flow bins, not clipped into the edge bins)."""

    density: np.ndarray
    error: np.ndarray
    outside: float

    @classmethod
    def of(cls, x: np.ndarray, edges: np.ndarray) -> Histogram:
        import hist

        x = np.ravel(x).astype(np.float64)
        x = x[np.isfinite(x)]
        h = hist.Hist(hist.axis.Variable(edges, underflow=True, overflow=True))
        h.fill(x)
        counts, total = h.values(), max(x.size, 1)
        norm = total * np.diff(edges)  # unit area over all entries: what lies outside is missing area, not moved
        return cls(counts / norm, np.sqrt(counts) / norm, 1.0 - counts.sum() / total)


def _ratio_panel(axr: Any, edges: np.ndarray, ref: Histogram, gen: Histogram) -> None:
    """gen/ref per bin with propagated errors; points beyond RATIO_RANGE (or over an empty reference bin) are
    drawn as triangles at the panel's edge, so nothing off-scale passes unnoticed."""
    centres = (edges[1:] + edges[:-1]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = gen.density / ref.density
        err = ratio * np.hypot(gen.error / gen.density, ref.error / ref.density)
    lo, hi = RATIO_RANGE
    inside = np.isfinite(ratio) & (ratio >= lo) & (ratio <= hi)
    axr.errorbar(centres[inside], ratio[inside], yerr=np.nan_to_num(err[inside]), fmt="o", ms=2.5, lw=0.8,
                 color=GEN_STYLE["color"])
    above = (ratio > hi) | ((ref.density == 0) & (gen.density > 0))
    below = np.isfinite(ratio) & (ratio < lo) & (gen.density > 0) | ((gen.density == 0) & (ref.density > 0))
    pad = 0.04 * (hi - lo)
    axr.plot(centres[above], np.full(above.sum(), hi - pad), "^", ms=4, color=GEN_STYLE["color"], ls="none")
    axr.plot(centres[below], np.full(below.sum(), lo + pad), "v", ms=4, color=GEN_STYLE["color"], ls="none")
    axr.axhline(1.0, color="grey", lw=0.8)
    axr.set_ylim(lo, hi)
    axr.set_ylabel("gen / ref")


def _log_y(reference: Histogram) -> bool:
    """Log y when a good part of the reference (LOG_Y_SHARE of its filled bins) lies more than LOG_Y_DECADES below
    its peak: a falling spectrum, not a peak whose outermost bins happen to be sparse."""
    filled = reference.density[reference.density > 0]
    if filled.size < 2:
        return False
    return float(np.mean(filled < filled.max() * 10.0**-LOG_Y_DECADES)) >= LOG_Y_SHARE


def _hist_panel(ax: Any, axr: Any, it: HistItem, legend: bool) -> None:
    import mplhep

    edges = reference_edges(it.ref)
    ref, gen = Histogram.of(it.ref, edges), Histogram.of(it.gen, edges)
    mplhep.histplot(ref.density, edges, yerr=ref.error, ax=ax, histtype="step", **REF_STYLE)
    tail = gen.outside - ref.outside > OUTSIDE_NOTE  # the generated tail beyond the reference's bins, said in words
    gen_label = GEN_STYLE["label"] + (f" ({100 * gen.outside:.1f}% outside the range)" if tail else "")
    mplhep.histplot(gen.density, edges, yerr=gen.error, ax=ax, histtype="errorbar", markersize=2.5,
                    color=GEN_STYLE["color"], label=gen_label)
    if _log_y(ref):
        ax.set_yscale("log")
    ax.tick_params(labelbottom=False)
    ax.set_ylabel("normalised entries / bin width")
    head = f"{it.title}: {it.name}" if it.title else it.name
    ax.set_title(head + (f"   S = {it.sep:.3f}" if it.sep is not None else ""), loc="left")
    if legend or tail:
        ax.legend(loc="best", frameon=False)
    _ratio_panel(axr, edges, ref, gen)
    axr.set_xlabel(LABELS.get(it.name, it.name))


def histogram_grid(items: Sequence[HistItem], path: Path, title: str = "", ncols: int = 4) -> Path:
    """Reference vs generated histograms with error bars and gen/ref ratio panels (see histogram_figure)."""
    return _save(histogram_figure(items, title, ncols), path)


def histogram_figure(items: Sequence[HistItem], title: str = "", ncols: int = 4) -> Figure:
    """One panel per feature, in mplhep's style (hist histograms, Poisson error bars): bins from the reference,
    unit-area densities, log y where the contents span decades, a gen/ref ratio panel with off-scale arrows
    (also shown per epoch in TensorBoard)."""
    import matplotlib

    n = len(items)
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    with matplotlib.rc_context(hep_style()):
        fig = Figure(figsize=(3.8 * ncols, 3.9 * nrows))
        outer = fig.add_gridspec(nrows, ncols, hspace=0.45, wspace=0.42)
        for i, it in enumerate(items):
            inner = outer[divmod(i, ncols)].subgridspec(2, 1, height_ratios=[3, 1], hspace=0.06)
            ax = fig.add_subplot(inner[0])
            _hist_panel(ax, fig.add_subplot(inner[1], sharex=ax), it, legend=i == 0)
        if title:
            fig.suptitle(title, fontsize=10)
    return fig


def _layer_extent(layer: str) -> list[float]:
    (nr, nc), (sr, sc) = LAYER_SHAPES[layer], CELL_SIZES_MM[layer]
    return [-nc * sc / 2, nc * sc / 2, -nr * sr / 2, nr * sr / 2]


def _log_norm(*images: np.ndarray) -> LogNorm:
    vals = np.concatenate([np.ravel(x) for x in images])
    vmax = float(vals.max()) if vals.size and vals.max() > 0 else 1.0
    pos = vals[vals > 0]
    vmin = max(float(pos.min()) if pos.size else vmax * 1e-4, vmax * 1e-4)
    return LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * 10)


def _show_layer(fig: Figure, ax, img: np.ndarray, layer: str, norm: LogNorm, title: str, bar: bool = True) -> None:
    shown = np.where(img > 0, img, np.nan)  # empty cells blank rather than clipped to the colour floor
    im = ax.imshow(shown, origin="lower", extent=_layer_extent(layer), aspect="equal", norm=norm,
                   cmap="viridis", interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=6)
    if bar:
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)


def average_showers(ref: dict[str, np.ndarray], gen: dict[str, np.ndarray], path: Path) -> Path:
    """Mean cell energy per layer (MeV, log colour, shared scale per layer): reference top, generated below."""
    fig = Figure(figsize=(12, 7.5))
    axes = fig.subplots(2, 3)
    for j, layer in enumerate(CALO_LAYERS):
        a, b = ref[layer].mean(axis=0), gen[layer].mean(axis=0)
        norm = _log_norm(a, b)
        _show_layer(fig, axes[0, j], a, layer, norm, f"reference {layer} <E> [MeV]")
        _show_layer(fig, axes[1, j], b, layer, norm, f"generated {layer} <E> [MeV]")
        axes[1, j].set_xlabel("x [mm]", fontsize=7)
    for i in range(2):
        axes[i, 0].set_ylabel("y [mm]", fontsize=7)
    fig.suptitle("Average shower per layer (log colour scale)", fontsize=10)
    return _save(fig, path)


def single_showers(ref: dict[str, np.ndarray], gen: dict[str, np.ndarray], path: Path, n: int = 3,
                   seed: int = 0) -> Path:
    """n random reference and n random generated showers, one row each, three layers across."""
    rng = np.random.default_rng(seed)
    rows = [("reference", ref, int(i)) for i in rng.choice(len(ref["energy"]), min(n, len(ref["energy"])), False)]
    rows += [("generated", gen, int(i)) for i in rng.choice(len(gen["energy"]), min(n, len(gen["energy"])), False)]
    fig = Figure(figsize=(12, 2.7 * len(rows)))
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for r, (what, d, i) in enumerate(rows):
        e_inc = float(np.ravel(d["energy"])[i])
        for j, layer in enumerate(CALO_LAYERS):
            img = d[layer][i]
            _show_layer(fig, axes[r, j], img, layer, _log_norm(img), f"{what} #{i}, E_inc {e_inc:.1f} GeV, {layer}")
    fig.suptitle("Single showers (cell energy in MeV, log colour scale)", fontsize=10)
    return _save(fig, path)


def response_resolution(rr_ref: dict[str, list[float]], rr_gen: dict[str, list[float]], path: Path) -> Path:
    """Response <E_tot/E_inc> and resolution σ/mean per incident-energy bin, reference vs generated."""
    import matplotlib

    with matplotlib.rc_context(hep_style()):
        return _save(_response_figure(rr_ref, rr_gen), path)


def _response_figure(rr_ref: dict[str, list[float]], rr_gen: dict[str, list[float]]) -> Figure:
    fig = Figure(figsize=(10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for rr, style, m in ((rr_ref, REF_STYLE, "o"), (rr_gen, GEN_STYLE, "s")):
        x = np.array(rr["e_mean"], float)
        xerr = np.array([x - np.array(rr["e_lo"]), np.array(rr["e_hi"]) - x])
        ax1.errorbar(x, rr["response"], xerr=xerr, yerr=rr.get("response_err"), fmt=m, ms=4, capsize=2, **style)
        ax2.errorbar(x, rr["resolution"], xerr=xerr, yerr=rr.get("resolution_err"), fmt=m, ms=4, capsize=2, **style)
    ax1.set_ylabel("response <E_tot / E_inc>")
    ax2.set_ylabel("resolution σ(r) / <r>, r = E_tot/E_inc")
    for ax in (ax1, ax2):
        ax.set_xlabel("incident energy [GeV]")
        ax.set_xscale("log")  # the energy bins are log-spaced (metrics.distances.energy_bin_edges)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def conditioning(energies: Sequence[float], showers: dict[str, np.ndarray], path: Path,
                 train_range: tuple[float, float] | None = None) -> Path:
    """One latent vector, incident energy stepped across columns, the three layers as rows (log colour).

    Energies more than 5 % outside train_range are marked as extrapolated.
    """
    fig = Figure(figsize=(2.5 * len(energies) + 1.0, 8.4))
    axes = fig.subplots(3, len(energies), squeeze=False)
    fig.subplots_adjust(hspace=0.45, wspace=0.25)
    for i, layer in enumerate(CALO_LAYERS):
        norm = _log_norm(showers[layer])
        for j, e in enumerate(energies):
            inside = not extrapolates(e, e, train_range)
            head = f"{e:g} GeV{'' if inside else ' (extrap.)'}\nlayer sum {showers[layer][j].sum() / 1e3:.3g} GeV"
            _show_layer(fig, axes[i, j], showers[layer][j], layer, norm, head, bar=False)
        axes[i, 0].set_ylabel(f"{layer}\ny [mm]", fontsize=8)
        im = axes[i, -1].images[0]
        fig.colorbar(im, ax=list(axes[i]), fraction=0.015, pad=0.01).ax.tick_params(labelsize=6)
    rng = f" (training range {train_range[0]:.3g}-{train_range[1]:.3g} GeV)" if train_range else ""
    fig.suptitle(f"Conditioning: one latent vector, incident energy stepped{rng}; cells in MeV, log colour",
                 fontsize=10)
    return _save(fig, path)


def jet_images(ref: dict[str, np.ndarray], gen: dict[str, np.ndarray], path: Path) -> Path:
    """Average jet image per class: reference, generated (log colour) and their difference (diverging).

    Drawn in the convention of gansim.sim.jet_images: columns = x (rotated η) left to right, row 0 at the top
    (y = rotated φ grows upwards), so the second subjet of a W jet appears below the centre.
    """
    per_class = classes(ref, gen)
    fig = Figure(figsize=(12, 3.8 * len(per_class)))
    axes = fig.subplots(len(per_class), 3, squeeze=False)
    fig.subplots_adjust(wspace=0.45, hspace=0.3)
    ext = [-1.25, 1.25, -1.25, 1.25]
    for r, (name, mr, mg) in enumerate(per_class):
        a, b = ref["image"][mr].mean(axis=0), gen["image"][mg].mean(axis=0)
        norm = _log_norm(a, b)
        for c, (img, what) in enumerate(((a, "reference"), (b, "generated"))):
            im = axes[r, c].imshow(np.where(img > 0, img, np.nan), origin="upper", extent=ext, norm=norm,
                                   cmap="viridis", interpolation="nearest")
            axes[r, c].set_title(f"{what} {name} <pT> [GeV]", fontsize=8)
            fig.colorbar(im, ax=axes[r, c], fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
        d = b - a
        lim = float(np.abs(d).max()) or 1.0
        im = axes[r, 2].imshow(d, origin="upper", extent=ext, cmap="RdBu_r",
                               norm=TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim), interpolation="nearest")
        axes[r, 2].set_title(f"generated − reference, {name} [GeV]", fontsize=8)
        fig.colorbar(im, ax=axes[r, 2], fraction=0.046, pad=0.02).ax.tick_params(labelsize=7)
        for ax in axes[r]:
            ax.tick_params(labelsize=7)
            ax.set_xlabel("x (rotated η)", fontsize=8)
            ax.set_ylabel("y (rotated φ)", fontsize=8)
    return _save(fig, path)


def classes(ref: dict[str, np.ndarray], gen: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, reference mask, generated mask) per class present in both, or one 'all' class."""
    out = []
    if "signal" in ref and "signal" in gen:
        rs, gs = np.ravel(ref["signal"]), np.ravel(gen["signal"])
        for c, name in ((1.0, "signal"), (0.0, "background")):
            if (rs == c).any() and (gs == c).any():
                out.append((name, rs == c, gs == c))
    return out or [("all", np.ones(len(ref["image"]), bool), np.ones(len(gen["image"]), bool))]
