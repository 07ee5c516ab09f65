"""The calorimeter part of an evaluation report: shower-shape distances, response/resolution, plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.metrics import plots
from gansim.metrics.calo_features import feature_names
from gansim.metrics.distances import energy_bin_edges, feature_distances, response_resolution

CONDITIONING_ENERGIES_GEV = (1.0, 10.0, 50.0, 100.0, 200.0, 500.0)
CALO_GROUPS: dict[str, list[str]] = {
    "energies": ["E_0", "E_1", "E_2", "E_tot", "E_tot_over_E_inc", "frac_0", "frac_1", "frac_2"],
    "depth": ["shower_depth", "depth_width", "max_depth"],
    **{f"layer_{k}": [f"{n}_{k}" for n in ("centre_x", "centre_y", "width_x", "width_y", "sparsity", "eratio")]
       for k in range(3)},
}


def evaluate_calo(ref: Any, gen: Any, out: Path, s: Any, report: dict[str, Any], artifact: Any,
                  stages: Any) -> None:
    """Features, distances, response/resolution and plots into `report`; features kept for the classifiers."""
    stages.start("features")
    fr, fg = ref.features(), gen.features()
    stages.done()
    stages.start("distances")
    report["features"] = feature_distances(fr, fg)
    edges = energy_bin_edges(ref.data["energy"], s.energy_bins)
    report["response_resolution"] = {
        "reference": response_resolution(ref.data["energy"], fr["E_tot"], edges),
        "generated": response_resolution(gen.data["energy"], fg["E_tot"], edges)}
    stages.done()
    stages.start("plots")
    p = report["plots"]
    for group, feats in CALO_GROUPS.items():
        items = [plots.HistItem(n, fr[n], fg[n], report["features"][n]["separation_power"]) for n in feats]
        p[f"features_{group}"] = plots.histogram_grid(items, out / f"features_{group}.png",
                                                      f"Shower features: {group}").name
    p["average_showers"] = plots.average_showers(ref.data, gen.data, out / "average_showers.png").name
    p["single_showers"] = plots.single_showers(ref.data, gen.data, out / "single_showers.png", seed=s.seed).name
    p["response_resolution"] = plots.response_resolution(report["response_resolution"]["reference"],
                                                         report["response_resolution"]["generated"],
                                                         out / "response_resolution.png").name
    if artifact is not None:
        e = ref.data["energy"]
        p["conditioning"] = conditioning_figure(artifact, out / "conditioning.png", s.seed,
                                                (float(e.min()), float(e.max()))).name
    stages.done()
    report["feature_order"] = feature_names()


def conditioning_figure(artifact: Any, path: Path, seed: int, train_range: tuple[float, float] | None) -> Path:
    """One latent vector at each of CONDITIONING_ENERGIES_GEV: the three layers per energy."""
    from gansim.seeding import Purpose

    z = artifact.sampler.latents(seed, Purpose.GENERATE, 0, 1).cpu().numpy()
    energies = np.array(CONDITIONING_ENERGIES_GEV, np.float32)
    showers = artifact.generate(energies, seed=seed, z=np.repeat(z, len(energies), axis=0))
    rng = artifact.condition_range or train_range
    return plots.conditioning(list(CONDITIONING_ENERGIES_GEV), showers, path, rng)
