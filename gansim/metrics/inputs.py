"""Classifier input matrices: low-level (cells / pixels) and high-level (features) per event.

Calorimeter, low level:  [log(E_inc / GeV), e_c / E_inc for the 3·96 + 12·12 + 12·6 = 504 cells] (CaloChallenge's
"cells normalised to the incident energy"); high level: [log E_inc, every calo_features feature].
Jets, low level: [label, pixel pT / 100 GeV for the 625 pixels]; high level: [label, jet_features features].
The label column is present only when asked (both samples carry 'signal'); the classifier standardises inputs.
"""

from __future__ import annotations

import numpy as np

from gansim.kinds.calo import CALO_LAYERS
from gansim.metrics.calo_features import calo_features, incident_energy
from gansim.metrics.jet_features import FEATURES as JET_FEATURES
from gansim.metrics.jet_features import jet_features


def calo_low_level(data: dict[str, np.ndarray]) -> np.ndarray:
    e_inc = incident_energy(data)
    cells = np.concatenate([np.asarray(data[k], np.float64).reshape(len(e_inc), -1) for k in CALO_LAYERS], axis=1)
    return np.concatenate([np.log(e_inc)[:, None], cells * 1e-3 / e_inc[:, None]], axis=1).astype(np.float32)


def calo_high_level(data: dict[str, np.ndarray], features: dict[str, np.ndarray] | None = None) -> np.ndarray:
    f = calo_features(data) if features is None else features
    cols = [np.log(incident_energy(data))] + [f[k] for k in f]
    return np.stack(cols, axis=1).astype(np.float32)


def _label(data: dict[str, np.ndarray], n: int) -> np.ndarray:
    return np.asarray(data["signal"], np.float32).reshape(n, 1)


def jet_low_level(data: dict[str, np.ndarray], with_label: bool = False) -> np.ndarray:
    img = np.asarray(data["image"], np.float32)
    x = img.reshape(len(img), -1) * 1e-2
    return np.concatenate([_label(data, len(img)), x], axis=1) if with_label else x


def jet_high_level(data: dict[str, np.ndarray], with_label: bool = False,
                   features: dict[str, np.ndarray] | None = None) -> np.ndarray:
    f = jet_features(data) if features is None else features
    x = np.stack([f[k] for k in JET_FEATURES], axis=1).astype(np.float32)
    return np.concatenate([_label(data, len(x)), x], axis=1) if with_label else x
