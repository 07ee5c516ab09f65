"""The evaluation pipeline behind `gansim evaluate`: features, distances, classifier tests, plots, report."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gansim.metrics import plots
from gansim.metrics.calo_features import calo_features, feature_names
from gansim.metrics.classifier import two_sample_test
from gansim.metrics.distances import energy_bin_edges, feature_distances, response_resolution, separation_power
from gansim.metrics.inputs import calo_high_level, calo_low_level, jet_high_level, jet_low_level
from gansim.metrics.io import Sample
from gansim.metrics.jet_features import jet_features, mean_image_difference, pixel_intensities
from gansim.metrics.report import write_report
from gansim.metrics.score import physics_summary

CONDITIONING_ENERGIES_GEV = (1.0, 10.0, 50.0, 100.0, 200.0, 500.0)
CALO_GROUPS: dict[str, list[str]] = {
    "energies": ["E_0", "E_1", "E_2", "E_tot", "E_tot_over_E_inc", "frac_0", "frac_1", "frac_2"],
    "depth": ["shower_depth", "depth_width", "max_depth"],
    **{f"layer_{k}": [f"{n}_{k}" for n in ("centre_x", "centre_y", "width_x", "width_y", "sparsity", "eratio")]
       for k in range(3)},
}


@dataclass
class Settings:
    """Everything that changes the numbers of a report (recorded in report.json)."""

    seed: int = 0
    classifier: bool = True
    classifier_epochs: int = 30
    classifier_patience: int = 5
    energy_bins: int = 8


def versions() -> dict[str, str]:
    import h5py
    import matplotlib
    import scipy
    import torch

    from gansim import __version__
    return {"gansim": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__, "h5py": h5py.__version__,
            "matplotlib": matplotlib.__version__}


class _Stages:
    """A tqdm bar over named stages that also records each stage's wall time."""

    def __init__(self, names: list[str], progress: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=len(names), desc="evaluate", unit="step", disable=not progress)
        self.times: dict[str, float] = {}
        self._name, self._t = "", 0.0

    def start(self, name: str) -> None:
        self.bar.set_postfix_str(name)
        self._name, self._t = name, time.perf_counter()

    def done(self) -> None:
        self.times[self._name] = round(time.perf_counter() - self._t, 3)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _classifier(report: dict[str, Any], name: str, xr: np.ndarray, xg: np.ndarray, s: Settings, progress: bool) -> None:
    res = two_sample_test(xr, xg, seed=s.seed, max_epochs=s.classifier_epochs, patience=s.classifier_patience,
                          progress=progress, desc=f"classifier {name}")
    report["classifier"][name] = res.to_dict()


def evaluate(reference: Sample, generated: Sample, out_dir: str | Path, settings: Settings | None = None,
             generated_info: dict[str, Any] | None = None, artifact: Any = None, progress: bool = True,
             warnings: list[str] | None = None) -> dict:
    """Run every check on two samples of the same kind, write report.json, PNGs and index.md/html to out_dir."""
    s = settings or Settings()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "kind": reference.kind, "settings": asdict(s), "versions": versions(),
        "reference": {"source": reference.source, "n_events": reference.n, "n_events_in_file": reference.n_total,
                      "particle": reference.particle, "attrs": reference.attrs},
        "generated": {"source": generated.source, "n_events": generated.n, "n_events_in_file": generated.n_total,
                      "particle": generated.particle, "attrs": generated.attrs, **(generated_info or {})},
        "classifier": {}, "plots": {}, "warnings": list(warnings or []),
    }
    if reference.kind == "calo":
        _evaluate_calo(reference, generated, out, s, report, artifact, progress)
    else:
        _evaluate_jets(reference, generated, out, s, report, progress)
    report["wall_seconds"] = round(time.perf_counter() - t0, 2)
    write_report(report, out)
    return report


def _evaluate_calo(ref: Sample, gen: Sample, out: Path, s: Settings, report: dict[str, Any], artifact: Any,
                   progress: bool) -> None:
    names = ["features", "distances", "score", "plots"] + (["classifier high", "classifier low"] if s.classifier
                                                          else []) + (["conditioning"] if artifact is not None else [])
    st = _Stages(names, progress)
    st.start("features")
    fr, fg = calo_features(ref.data), calo_features(gen.data)
    st.done()
    st.start("distances")
    report["features"] = feature_distances(fr, fg)
    edges = energy_bin_edges(ref.data["energy"], s.energy_bins)
    report["response_resolution"] = {
        "reference": response_resolution(ref.data["energy"], fr["E_tot"], edges),
        "generated": response_resolution(gen.data["energy"], fg["E_tot"], edges)}
    st.done()
    st.start("score")
    summary = physics_summary(ref.data, gen.data, "calo")
    report["physics_summary"] = summary
    report["fidelity_score"] = summary["fidelity"]
    st.done()
    st.start("plots")
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
    st.done()
    if s.classifier:
        st.start("classifier high")
        _classifier(report, "high_level", calo_high_level(ref.data, fr), calo_high_level(gen.data, fg), s, progress)
        st.done()
        st.start("classifier low")
        _classifier(report, "low_level", calo_low_level(ref.data), calo_low_level(gen.data), s, progress)
        st.done()
    if artifact is not None:
        st.start("conditioning")
        e = ref.data["energy"]
        train_range = (float(e.min()), float(e.max()))
        p["conditioning"] = conditioning_figure(artifact, out / "conditioning.png", s.seed, train_range).name
        st.done()
    st.close()
    report["feature_order"] = feature_names()
    report["stage_seconds"] = st.times


def conditioning_figure(artifact: Any, path: Path, seed: int, train_range: tuple[float, float] | None) -> Path:
    """Generate one latent vector at each of CONDITIONING_ENERGIES_GEV and plot the three layers."""
    from gansim.models.artifact import draw_latent

    z = draw_latent(seed, 0, 1, artifact.latent_dim).numpy()
    energies = np.array(CONDITIONING_ENERGIES_GEV, np.float32)
    showers = artifact.generate(energies, seed=seed, z=np.repeat(z, len(energies), axis=0))
    return plots.conditioning(list(CONDITIONING_ENERGIES_GEV), showers, path, train_range)


def _evaluate_jets(ref: Sample, gen: Sample, out: Path, s: Settings, report: dict[str, Any], progress: bool) -> None:
    names = ["features", "distances", "score", "plots"] + (["classifier high", "classifier low"] if s.classifier
                                                          else [])
    st = _Stages(names, progress)
    st.start("features")
    fr, fg = jet_features(ref.data), jet_features(gen.data)
    st.done()
    st.start("distances")
    classes = plots.classes(ref.data, gen.data)
    feats: dict[str, dict[str, float]] = {}
    report["mean_image_difference"] = {}
    for name, mr, mg in classes:
        d = feature_distances({k: v[mr] for k, v in fr.items()}, {k: v[mg] for k, v in fg.items()})
        feats.update({f"{k}_{name}": v for k, v in d.items()})
        lr, lg = np.log10(pixel_intensities(ref.data["image"][mr])), np.log10(pixel_intensities(gen.data["image"][mg]))
        feats[f"pixel_intensity_{name}"] = {"separation_power": separation_power(lr, lg),
                                            "mean_ref": float(lr.mean()), "mean_gen": float(lg.mean())}
        _, rel = mean_image_difference(ref.data["image"][mr], gen.data["image"][mg])
        report["mean_image_difference"][name] = {"relative_l1": rel}
    report["features"] = feats
    report["classes"] = [c[0] for c in classes]
    st.done()
    st.start("score")
    summary = physics_summary(ref.data, gen.data, "jets")
    report["physics_summary"] = summary
    report["fidelity_score"] = summary["fidelity"]
    st.done()
    st.start("plots")
    items = []
    for name, mr, mg in classes:
        for k in ("pt", "mass", "tau_21", "n_pixels"):
            items.append(plots.HistItem(k, fr[k][mr], fg[k][mg], feats[f"{k}_{name}"]["separation_power"], name))
        items.append(plots.HistItem("pixel_intensity", np.log10(pixel_intensities(ref.data["image"][mr])),
                                    np.log10(pixel_intensities(gen.data["image"][mg])),
                                    feats[f"pixel_intensity_{name}"]["separation_power"], name))
    report["plots"]["jet_features"] = plots.histogram_grid(items, out / "jet_features.png",
                                                           "Jet observables per class", ncols=5).name
    report["plots"]["jet_images"] = plots.jet_images(ref.data, gen.data, out / "jet_images.png").name
    st.done()
    if s.classifier:
        lab = "signal" in ref.data and "signal" in gen.data
        st.start("classifier high")
        _classifier(report, "high_level", jet_high_level(ref.data, lab, fr), jet_high_level(gen.data, lab, fg), s,
                    progress)
        st.done()
        st.start("classifier low")
        _classifier(report, "low_level", jet_low_level(ref.data, lab), jet_low_level(gen.data, lab), s, progress)
        st.done()
    st.close()
    report["stage_seconds"] = st.times
