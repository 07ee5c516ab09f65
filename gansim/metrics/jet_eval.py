"""The jet-image part of an evaluation report: per-class jet observables, pixel spectrum, average images."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.metrics import plots
from gansim.metrics.distances import feature_distances, separation_power
from gansim.metrics.jet_features import mass_peak, mean_image_difference, pixel_intensities

PLOTTED = ("pt", "mass", "tau_21", "n_pixels")


def evaluate_jets(ref: Any, gen: Any, out: Path, s: Any, report: dict[str, Any], stages: Any) -> None:
    """Per-class distances, mean-image differences and plots into `report`."""
    stages.start("features")
    fr, fg = ref.features(), gen.features()
    stages.done()
    stages.start("distances")
    classes = plots.classes(ref.data, gen.data)
    feats: dict[str, dict[str, float]] = {}
    report["mean_image_difference"] = {}
    report["mass_peak"] = {}  # GeV, kernel mode in 40-130 GeV: the W' peak for the signal class
    spectra = {}
    for name, mr, mg in classes:
        d = feature_distances({k: v[mr] for k, v in fr.items()}, {k: v[mg] for k, v in fg.items()})
        feats.update({f"{k}_{name}": v for k, v in d.items()})
        lr, lg = np.log10(pixel_intensities(ref.data["image"][mr])), np.log10(pixel_intensities(gen.data["image"][mg]))
        spectra[name] = (lr, lg)
        feats[f"pixel_intensity_{name}"] = {"separation_power": separation_power(lr, lg),
                                            "mean_ref": float(lr.mean()), "mean_gen": float(lg.mean())}
        _, rel = mean_image_difference(ref.data["image"][mr], gen.data["image"][mg])
        report["mean_image_difference"][name] = {"relative_l1": rel}
        peak_r, peak_g = mass_peak(fr["mass"][mr]), mass_peak(fg["mass"][mg])
        report["mass_peak"][name] = {"ref": peak_r, "gen": peak_g, "shift": peak_g - peak_r}
    report["features"] = feats
    report["classes"] = [c[0] for c in classes]
    stages.done()
    stages.start("plots")
    items = []
    for name, mr, mg in classes:
        for k in PLOTTED:
            items.append(plots.HistItem(k, fr[k][mr], fg[k][mg], feats[f"{k}_{name}"]["separation_power"], name))
        items.append(plots.HistItem("pixel_intensity", *spectra[name],
                                    feats[f"pixel_intensity_{name}"]["separation_power"], name))
    report["plots"]["jet_features"] = plots.histogram_grid(items, out / "jet_features.png",
                                                           "Jet observables per class", ncols=5).name
    report["plots"]["jet_images"] = plots.jet_images(ref.data, gen.data, out / "jet_images.png").name
    stages.done()
