"""The evaluation pipeline behind `gansim evaluate`: the kind's features and plots, the score, classifier tests."""

from __future__ import annotations

import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from gansim.config import EvalConfig
from gansim.kinds import get_kind
from gansim.metrics.classifier import boosted_two_sample_test, two_sample_test
from gansim.metrics.io import Sample
from gansim.metrics.report import write_report
from gansim.metrics.score import physics_summary


def versions() -> dict[str, str]:
    import h5py
    import matplotlib
    import scipy
    import torch

    from gansim import __version__
    return {"gansim": __version__, "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "torch": torch.__version__, "h5py": h5py.__version__,
            "matplotlib": matplotlib.__version__}


class Stages:
    """A progress reporter over named stages that also records each stage's wall time."""

    def __init__(self, names: list[str], progress: bool) -> None:
        from gansim.progress import bar

        self.bar = bar(total=len(names), desc="evaluate", unit="step", enabled=progress)
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


def stage_names(s: EvalConfig) -> list[str]:
    names = ["features", "distances", "plots", "score"]
    if s.classifier:
        names += ["classifier high", "classifier low"] + (["boosted trees"] if s.boosted_trees else [])
    return names


def classifier_tests(ref: Sample, gen: Sample, s: EvalConfig, stages: Stages, progress: bool) -> dict[str, Any]:
    """DNN two-sample tests on the kind's high- and low-level inputs (+ boosted trees on the high level)."""
    kind = get_kind(ref.kind)
    xr = kind.classifier_inputs(ref.data, ref.features(), True)
    xg = kind.classifier_inputs(gen.data, gen.features(), True)
    out: dict[str, Any] = {}
    for name in ("high_level", "low_level"):
        stages.start(f"classifier {name.split('_')[0]}")
        out[name] = two_sample_test(xr[name], xg[name], seed=s.seed, max_epochs=s.classifier_epochs,
                                    patience=s.classifier_patience, progress=progress,
                                    desc=f"classifier {name}").to_dict()
        stages.done()
    if s.boosted_trees:
        stages.start("boosted trees")
        out["high_level_trees"] = boosted_two_sample_test(xr["high_level"], xg["high_level"], seed=s.seed).to_dict()
        stages.done()
    return out


def evaluate(reference: Sample, generated: Sample, out_dir: str | Path, settings: EvalConfig | None = None,
             generated_info: dict[str, Any] | None = None, artifact: Any = None, progress: bool = True,
             warnings: list[str] | None = None) -> dict:
    """Run every check on two samples of the same kind, write report.json, PNGs and index.md/html to out_dir."""
    s = settings or EvalConfig()
    kind = get_kind(reference.kind)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    report: dict[str, Any] = {
        "kind": kind.name, "title": kind.title, "settings": asdict(s), "versions": versions(),
        "reference": {"source": reference.source, "n_events": reference.n, "n_events_in_file": reference.n_total,
                      "particle": reference.particle, "attrs": reference.attrs},
        "generated": {"source": generated.source, "n_events": generated.n, "n_events_in_file": generated.n_total,
                      "particle": generated.particle, "attrs": generated.attrs, **(generated_info or {})},
        "classifier": {}, "plots": {}, "warnings": list(warnings or []),
    }
    stages = Stages(stage_names(s), progress)
    try:
        kind.evaluate(reference, generated, out, s, report, artifact, stages)
        stages.start("score")
        report["physics_summary"] = physics_summary(reference.data, generated.data, kind)
        report["fidelity_score"] = report["physics_summary"]["fidelity"]
        stages.done()
        if s.classifier:
            report["classifier"] = classifier_tests(reference, generated, s, stages, progress)
    finally:
        stages.close()
    report["stage_seconds"] = stages.times
    report["wall_seconds"] = round(time.perf_counter() - t0, 2)
    write_report(report, out)
    return report
