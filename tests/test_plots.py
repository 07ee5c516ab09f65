"""Physics-grade histograms: hist + mplhep, bins from the reference, error bars, log y, ratio panels with arrows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gansim.metrics import plots


def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_bins_come_from_the_reference_not_the_generated_tail() -> None:
    r = rng()
    ref, gen = r.normal(0, 1, 5000), np.concatenate([r.normal(0, 1, 4000), r.normal(50, 1, 1000)])
    edges = plots.reference_edges(ref)
    np.testing.assert_array_equal(edges, plots.reference_edges(ref[:5000]))
    assert edges[-1] < 5 and len(edges) == plots.BINS + 1
    h = plots.Histogram.of(gen, edges)
    assert abs(h.outside - 0.2) < 0.01  # the tail is counted, not clipped into the last bin
    assert abs(np.sum(h.density * np.diff(edges)) - (1 - h.outside)) < 1e-12  # unit area over all entries
    counts, _ = np.histogram(gen, edges)
    np.testing.assert_allclose(h.error, np.sqrt(counts) / (gen.size * np.diff(edges)))  # Poisson errors
    assert len(plots.reference_edges(np.array([0.0, 1.0, 2.0, 2.0]))) == 4  # one bin per value of a discrete feature


def test_figure_log_y_ratio_arrows(tmp_path: Path) -> None:
    r = rng()
    items = [plots.HistItem("E_tot", r.exponential(10, 5000), r.exponential(20, 5000), 0.05),
             plots.HistItem("shower_depth", r.normal(1, 0.2, 5000), r.normal(1.01, 0.2, 5000), 0.001)]
    fig = plots.histogram_figure(items, "t", ncols=2)
    main_axes = [ax for ax in fig.axes if ax.get_ylabel().startswith("normalised")]
    ratio_axes = [ax for ax in fig.axes if ax.get_ylabel() == "gen / ref"]
    assert [ax.get_yscale() for ax in main_axes] == ["log", "linear"]  # decades -> log y; a peak -> linear
    assert all(ax.get_ylim() == plots.RATIO_RANGE for ax in ratio_axes)
    markers = {line.get_marker() for line in ratio_axes[0].lines if len(line.get_xdata())}
    assert "^" in markers  # the harder generated tail leaves the ratio range: arrows at the edge
    assert any(c.__class__.__name__ == "ErrorbarContainer" for c in main_axes[0].containers)  # error bars
    assert "generated (" in main_axes[0].get_legend().get_texts()[1].get_text()  # tail named
    path = plots.histogram_grid(items, tmp_path / "h.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_response_resolution_on_log_energy_axis(tmp_path: Path) -> None:
    from gansim.metrics.distances import energy_bin_edges, response_resolution

    r = rng()
    e = r.uniform(1, 100, 4000)
    edges = energy_bin_edges(e, 8)
    assert np.allclose(np.diff(np.log(edges[:-1])), np.log(edges[1] / edges[0]))  # log-spaced bins
    rr = response_resolution(e, e * r.normal(1, 0.1, e.size), edges)
    path = plots.response_resolution(rr, rr, tmp_path / "rr.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
