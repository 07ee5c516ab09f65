"""Jet images in the LAGAN format: file contract, model units, class-label conditions and physics hooks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gansim.kinds.base import DataKind, Key

if TYPE_CHECKING:
    import torch

# 25 x 25 pixels over eta, phi in [-1.25, 1.25], pixel = pT in GeV.
JET_IMAGE_SHAPE: tuple[int, int] = (25, 25)
JET_KEYS: tuple[Key, ...] = (
    Key("image", JET_IMAGE_SHAPE, "float32", "GeV", "jet image, pixel = pT"),
    Key("signal", (), "float32", "", "1 = W' -> WZ signal, 0 = QCD background"),
)
JET_OPTIONAL_KEYS: tuple[Key, ...] = (
    Key("pt", (), "float32", "GeV", "trimmed jet pT"),
    Key("eta", (), "float32", "", "jet pseudorapidity"),
    Key("phi", (), "float32", "rad", "jet azimuth"),
    Key("mass", (), "float32", "GeV", "trimmed jet mass"),
    Key("tau_21", (), "float32", "", "N-subjettiness ratio tau2/tau1"),
)
DEFAULT_SIGNAL_FRACTION = 0.5


@dataclass(frozen=True)
class LabelSpec:
    """Class labels of a production: each event is signal (1) with probability `fraction`."""

    fraction: float

    @property
    def text(self) -> str:
        return f"signal-fraction:{self.fraction:g}"

    file_sha256: str = ""

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.random(n) < self.fraction).astype(np.float32)


class JetKind(DataKind):
    """Jet images conditioned on the class label (1 = W' -> WZ signal, 0 = QCD)."""

    name = "jets"
    title = "jet images"
    format_name = "LAGAN jet image"
    keys = JET_KEYS
    optional_keys = JET_OPTIONAL_KEYS
    cond_key = "signal"
    event_keys = ("image",)
    particles = ("jets",)
    scale = 1e-2  # GeV -> 100 GeV
    summary_unit = "GeV"
    range_unit = "GeV (image sum pT)"
    score_ratio = "pt_ratio"

    def detect(self, names: set[str]) -> bool:
        return "image" in names

    def value_error(self, key: str, block: np.ndarray, first: int) -> str | None:
        if key == "image" and (block < 0).any():
            return "negative pixel pT in 'image'"
        return None

    def summary(self, f: Any, n: int) -> tuple[tuple[float, float], dict[str, float], dict[str, float]]:
        img = np.asarray(f["image"][: min(n, 20000)], dtype=np.float64)
        pt = img.reshape(len(img), -1).sum(axis=1)
        return (float(pt.min()), float(pt.max())), {"image": float(pt.mean())}, {"image": float((img == 0).mean())}

    def aux_loss(self, aux: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        from gansim.losses import class_aux_loss

        return class_aux_loss(aux, cond)

    def aux_weight(self, loss_cfg: Any) -> float:
        return float(loss_cfg.lambda_class)

    def conditions(self, spec: Any, rng: np.random.Generator, n: int) -> np.ndarray:
        return spec.sample(rng, n)

    def condition_spec(self, energy: str | None, energy_file: Path | None, signal_fraction: float | None) -> LabelSpec:
        from gansim.errors import GansimError

        if energy or energy_file:
            raise GansimError("--energy/--energy-file apply to calorimeter generators; jet generators take "
                              "--signal-fraction")
        frac = DEFAULT_SIGNAL_FRACTION if signal_fraction is None else float(signal_fraction)
        if not (math.isfinite(frac) and 0.0 <= frac <= 1.0):
            raise GansimError(f"--signal-fraction must be in [0, 1], got {signal_fraction}")
        return LabelSpec(frac)

    def features(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from gansim.metrics.jet_features import jet_features

        return jet_features(data)

    def score_parts(self, reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict[str, float]:
        from gansim.metrics.score import jet_parts

        return jet_parts(reference, generated)

    def classifier_inputs(self, data: dict[str, np.ndarray], features: dict[str, np.ndarray],
                          with_label: bool) -> dict[str, np.ndarray]:
        from gansim.metrics.inputs import jet_high_level, jet_low_level

        return {"high_level": jet_high_level(data, with_label, features),
                "low_level": jet_low_level(data, with_label)}

    def evaluate(self, ref: Any, gen: Any, out: Path, settings: Any, report: dict[str, Any], artifact: Any,
                 stages: Any) -> None:
        from gansim.metrics.jet_eval import evaluate_jets

        evaluate_jets(ref, gen, out, settings, report, stages)


JETS = JetKind()
