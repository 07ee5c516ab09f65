"""The data-kind interface: everything that differs between calorimeter showers and jet images, in one object."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Key:
    """One dataset of a format: per-event shape (without N), dtype written, unit, meaning."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    unit: str
    doc: str


class DataKind:
    """One kind of event. Subclasses fill in the class attributes and the hooks below.

    Units: "file units" are what the HDF5 contract holds (MeV cells, GeV pixels); "model units" are file units
    times `scale` (GeV cells, 100-GeV pixels), what generators emit and discriminators read. `to_model` and
    `from_model` are exact inverses (up to float32 rounding of the scale).
    """

    name: str = ""
    title: str = ""  # "calorimeter showers"
    format_name: str = ""  # "CaloGAN shower"
    keys: tuple[Key, ...] = ()  # required datasets, in file order
    optional_keys: tuple[Key, ...] = ()
    cond_key: str = ""  # the per-event condition: incident energy or class label
    event_keys: tuple[str, ...] = ()  # what a generator makes, in model order
    extra_keys: tuple[str, ...] = ()  # required datasets a generator does not model (written as zeros, flagged)
    particles: tuple[str, ...] = ()  # valid data.particle values
    scale: float = 1.0
    summary_unit: str = ""  # unit of the per-key sums `gansim inspect` prints
    range_unit: str = ""

    # -- the file contract ----------------------------------------------------------------------------------
    def detect(self, names: set[str]) -> bool:
        """True when a file with these top-level names holds this kind."""
        raise NotImplementedError

    def value_error(self, key: str, block: np.ndarray, first: int) -> str | None:
        """The first contract violation (beyond NaN/inf) in a block of `key` starting at event `first`, or None."""
        return None

    def summary(self, f: Any, n: int) -> tuple[tuple[float, float], dict[str, float], dict[str, float]]:
        """(condition/energy range, mean per-event sum per key, fraction of empty cells per key) for inspect."""
        raise NotImplementedError

    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-event shape of every required dataset, in file order."""
        return {k.name: k.shape for k in self.keys}

    def read_keys(self) -> tuple[str, ...]:
        """What training and evaluation read from a file: the condition then the modelled keys."""
        return (self.cond_key, *self.event_keys)

    def n_events(self, data: dict[str, np.ndarray]) -> int:
        return len(data[self.cond_key])

    def condition(self, data: dict[str, np.ndarray]) -> np.ndarray:
        """The per-event condition as float32 (N,)."""
        return np.asarray(data[self.cond_key], np.float32).reshape(-1)

    # -- model units ----------------------------------------------------------------------------------------
    def to_model(self, batch: dict[str, torch.Tensor], device: torch.device
                 ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """File units -> (x: event key -> model-unit tensor, cond (B,) float32), on `device`."""
        x = {k: batch[k].to(device, non_blocking=True).float() * self.scale for k in self.event_keys}
        return x, batch[self.cond_key].to(device, non_blocking=True).float().reshape(-1)

    def from_model(self, x: dict[str, torch.Tensor], cond: np.ndarray) -> dict[str, np.ndarray]:
        """Model units -> every required dataset in file units (float32, contiguous); inverse of to_model."""
        n = len(cond)
        out: dict[str, np.ndarray] = {}
        for key in self.keys:
            if key.name == self.cond_key:
                out[key.name] = np.asarray(cond, np.float32).reshape(n, *key.shape)
            elif key.name in x:
                out[key.name] = np.ascontiguousarray((x[key.name].float() / self.scale).cpu().numpy(), np.float32)
            else:  # not modelled (e.g. calorimeter overflow): zeros, flagged in the file attributes by writers
                out[key.name] = np.zeros((n, *key.shape), np.float32)
        return out

    @staticmethod
    def flatten(x: dict[str, torch.Tensor], keys: tuple[str, ...]) -> torch.Tensor:
        import torch

        return torch.cat([x[k].flatten(1) for k in keys], dim=1)

    def unflatten(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Inverse of flatten over event_keys (views)."""
        out, start = {}, 0
        shapes = self.shapes()
        for k in self.event_keys:
            n = int(np.prod(shapes[k]))
            out[k] = flat[:, start:start + n].reshape(-1, *shapes[k])
            start += n
        return out

    def aux_loss(self, aux: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The auxiliary term that ties the discriminator's second output to the condition."""
        raise NotImplementedError

    def aux_weight(self, loss_cfg: Any) -> float:
        raise NotImplementedError

    # -- conditions for production --------------------------------------------------------------------------
    def conditions(self, spec: Any, rng: np.random.Generator, n: int) -> np.ndarray:
        """n conditions (float32) drawn from rng according to the production's condition spec."""
        raise NotImplementedError

    # -- physics ----------------------------------------------------------------------------------------------
    def features(self, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def score_parts(self, reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict[str, float]:
        """Named physics numbers incl. separation_power_mean and the ratio used by the fidelity score."""
        raise NotImplementedError

    score_ratio: str = ""  # the gen/ref mean ratio the fidelity score penalises

    def classifier_inputs(self, data: dict[str, np.ndarray], features: dict[str, np.ndarray],
                          with_label: bool) -> dict[str, np.ndarray]:
        """{"high_level": (N, d), "low_level": (N, d')} inputs of the two-sample classifier tests."""
        raise NotImplementedError

    def evaluate(self, ref: Any, gen: Any, out: Path, settings: Any, report: dict[str, Any], artifact: Any,
                 stages: Any) -> None:
        """Fill the kind-specific parts of an evaluation report (features, distances, plots)."""
        raise NotImplementedError

    def image_keys(self) -> tuple[str, ...]:
        """What TensorBoard shows as images."""
        return self.event_keys


EXTRAPOLATION_MARGIN = 0.05  # two samples of one distribution never share their extremes exactly


def extrapolates(lo: float, hi: float, trained: tuple[float, float] | None) -> bool:
    """True when conditions lo..hi reach more than 5 % beyond a generator's training range (None: unknown)."""
    if trained is None:
        return False
    return lo < (1 - EXTRAPOLATION_MARGIN) * trained[0] or hi > (1 + EXTRAPOLATION_MARGIN) * trained[1]
