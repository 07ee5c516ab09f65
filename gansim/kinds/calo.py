"""Calorimeter showers in the CaloGAN format: geometry, file contract, model units, conditions and physics hooks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gansim.kinds.base import DataKind, Key

if TYPE_CHECKING:
    import torch

# CaloGAN (Mendeley Data 10.17632/pvn3xc3wy5.1). Arrays are (rows, columns); cell sizes (row height, column
# width) in mm; readout depths in mm.
CALO_LAYERS: tuple[str, ...] = ("layer_0", "layer_1", "layer_2")
LAYER_SHAPES: dict[str, tuple[int, int]] = {"layer_0": (3, 96), "layer_1": (12, 12), "layer_2": (12, 6)}
CELL_SIZES_MM: dict[str, tuple[float, float]] = {
    "layer_0": (160.0, 5.0),  # 3 rows of 160 mm, 96 columns of 5 mm
    "layer_1": (40.0, 40.0),
    "layer_2": (40.0, 80.0),  # 12 rows of 40 mm, 6 columns of 80 mm
}
LAYER_DEPTHS_MM: tuple[float, float, float] = (90.0, 347.0, 43.0)
N_CELLS: int = sum(h * w for h, w in LAYER_SHAPES.values())  # 504
CALO_KEYS: tuple[Key, ...] = (
    Key("energy", (1,), "float32", "GeV", "incident particle energy"),
    Key("layer_0", (3, 96), "float32", "MeV", "cell energies, pre-sampler-like layer (3 x 96 cells)"),
    Key("layer_1", (12, 12), "float32", "MeV", "cell energies, middle layer (12 x 12 cells)"),
    Key("layer_2", (12, 6), "float32", "MeV", "cell energies, back layer (12 x 6 cells)"),
    Key("overflow", (3,), "float32", "MeV", "energy deposited outside each layer's readout"),
)
PARTICLES: tuple[str, ...] = ("eplus", "gamma", "piplus")


class CaloKind(DataKind):
    """Showers in three sampling layers, conditioned on the incident energy (GeV); cells in MeV."""

    name = "calo"
    title = "calorimeter showers"
    format_name = "CaloGAN shower"
    keys = CALO_KEYS
    cond_key = "energy"
    event_keys = CALO_LAYERS
    extra_keys = ("overflow",)
    particles = PARTICLES
    scale = 1e-3  # MeV -> GeV
    summary_unit = "MeV"
    range_unit = "GeV (incident)"
    score_ratio = "response_ratio"

    def detect(self, names: set[str]) -> bool:
        return bool(names & {"energy", *CALO_LAYERS})

    def value_error(self, key: str, block: np.ndarray, first: int) -> str | None:
        flat = block.reshape(len(block), -1)
        bad = (flat <= 0) if key == "energy" else (flat < 0)
        if not bad.any():
            return None
        event = first + int(bad.any(axis=1).argmax())
        if key == "energy":
            return f"negative or zero incident energy in 'energy' at event {event}"
        return f"negative cell energy in '{key}' at event {event}"

    def summary(self, f: Any, n: int) -> tuple[tuple[float, float], dict[str, float], dict[str, float]]:
        sample = slice(0, min(n, 20000))
        e = np.asarray(f["energy"][sample]).reshape(-1)
        whole = np.asarray(f["energy"][:]).reshape(-1) if n <= 10**6 else e
        means, empty = {}, {}
        for layer in CALO_LAYERS:
            x = np.asarray(f[layer][sample], dtype=np.float64)
            means[layer] = float(x.reshape(len(x), -1).sum(axis=1).mean())
            empty[layer] = float((x == 0).mean())
        return (float(whole.min()), float(whole.max())), means, empty

    def aux_loss(self, aux: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        from gansim.losses import energy_aux_loss

        return energy_aux_loss(aux, cond)

    def aux_weight(self, loss_cfg: Any) -> float:
        return float(loss_cfg.lambda_e)

    def conditions(self, spec: Any, rng: np.random.Generator, n: int) -> np.ndarray:
        return spec.sample(rng, n)

    def condition_spec(self, energy: str | None, energy_file: Path | None, signal_fraction: float | None) -> Any:
        """The incident-energy distribution of a production (--energy or --energy-file)."""
        from gansim.errors import GansimError
        from gansim.produce.conditioning import DEFAULT_ENERGY, load_energy_file, parse_energy

        if signal_fraction is not None:
            raise GansimError("--signal-fraction applies to jet-image generators; calorimeter generators take "
                              "--energy or --energy-file")
        if energy and energy_file:
            raise GansimError("give either --energy or --energy-file, not both")
        return load_energy_file(energy_file) if energy_file else parse_energy(energy or DEFAULT_ENERGY)

    def features(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from gansim.metrics.calo_features import calo_features

        return calo_features(data)

    def score_parts(self, reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict[str, float]:
        from gansim.metrics.score import calo_parts

        return calo_parts(reference, generated)

    def classifier_inputs(self, data: dict[str, np.ndarray], features: dict[str, np.ndarray],
                          with_label: bool) -> dict[str, np.ndarray]:
        from gansim.metrics.inputs import calo_high_level, calo_low_level

        return {"high_level": calo_high_level(data, features), "low_level": calo_low_level(data)}

    def evaluate(self, ref: Any, gen: Any, out: Path, settings: Any, report: dict[str, Any], artifact: Any,
                 stages: Any) -> None:
        from gansim.metrics.calo_eval import evaluate_calo

        evaluate_calo(ref, gen, out, settings, report, artifact, stages)


CALO = CaloKind()
