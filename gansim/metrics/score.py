"""The scalar fidelity score (lower is better) and a few named physics numbers for training and tuning.

Calorimeter showers::

    fidelity = mean_f S_f  +  | ⟨E_tot/E_inc⟩_gen / ⟨E_tot/E_inc⟩_ref − 1 |

where S_f is the separation power (gansim.metrics.distances) of feature f on shared binning, averaged over
every shower-shape feature of gansim.metrics.calo_features (per-layer energies, fractions, depth, lateral
centres and widths, sparsity, E_ratio). The first term lies in [0, 1]; the second penalises a wrong overall
energy scale, which histogram shapes can under-weight. Two independent samples of the same physics score
close to 0 (a small positive floor from finite statistics: ~0.01 for 2k vs 2k events).

Jet images::

    fidelity = mean over classes c, features f of S_f(c)  +  | ⟨pT⟩_gen / ⟨pT⟩_ref − 1 |

with features pt, mass, tau_21, n_pixels and log10 of the pixel-intensity spectrum, per class (signal /
background) when both samples carry ``signal`` labels.

A generated sample with NaN or inf, or a score above SCORE_CAP, scores SCORE_CAP, so tuning always sees a
finite number. Inputs are dicts of arrays in file units (CaloGAN keys, or ``image``/``signal``).
"""

from __future__ import annotations

import numpy as np

from gansim.errors import GansimError
from gansim.kinds import DataKind, get_kind
from gansim.metrics.calo_features import calo_features
from gansim.metrics.distances import separation_power
from gansim.metrics.jet_features import jet_features, pixel_intensities

SCORE_CAP = 10.0
JET_SCORE_FEATURES = ("pt", "mass", "tau_21", "n_pixels")


def _all_finite(data: dict[str, np.ndarray]) -> bool:
    return all(np.isfinite(np.asarray(v)).all() for v in data.values())


def _ratio(a: float, b: float) -> float:
    return float(a / b) if b != 0 else float("nan")


def calo_parts(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict[str, float]:
    fr, fg = calo_features(reference), calo_features(generated)
    sp = {name: separation_power(fr[name], fg[name]) for name in fr}
    out = {f"sep_{k}": v for k, v in sp.items()}
    out["separation_power_mean"] = float(np.mean(list(sp.values())))
    out["response_ratio"] = _ratio(fg["E_tot_over_E_inc"].mean(), fr["E_tot_over_E_inc"].mean())
    for k in range(3):
        out[f"E_{k}_ratio"] = _ratio(fg[f"E_{k}"].mean(), fr[f"E_{k}"].mean())
    out["sparsity_ratio"] = _ratio(np.mean([fg[f"sparsity_{k}"].mean() for k in range(3)]),
                                   np.mean([fr[f"sparsity_{k}"].mean() for k in range(3)]))
    return out


def jet_parts(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray]) -> dict[str, float]:
    ri, gi = np.asarray(reference["image"]), np.asarray(generated["image"])
    fr, fg = jet_features(ri), jet_features(gi)
    rsel: list[tuple[str, np.ndarray, np.ndarray]] = [("", np.ones(len(ri), bool), np.ones(len(gi), bool))]
    if "signal" in reference and "signal" in generated:
        rs, gs = np.asarray(reference["signal"]).ravel(), np.asarray(generated["signal"]).ravel()
        common = sorted(set(np.unique(rs).tolist()) & set(np.unique(gs).tolist()))
        if common:
            rsel = [(f"_{'signal' if c >= 0.5 else 'background'}", rs == c, gs == c) for c in common]
    seps: list[float] = []
    out: dict[str, float] = {}
    for tag, mr, mg in rsel:
        for name in JET_SCORE_FEATURES:
            out[f"sep_{name}{tag}"] = separation_power(fr[name][mr], fg[name][mg])
        out[f"sep_pixel_intensity{tag}"] = separation_power(np.log10(pixel_intensities(ri[mr])),
                                                            np.log10(pixel_intensities(gi[mg])))
        seps += [out[f"sep_{name}{tag}"] for name in (*JET_SCORE_FEATURES, "pixel_intensity")]
    out["separation_power_mean"] = float(np.mean(seps))
    out["pt_ratio"] = _ratio(fg["pt"].mean(), fr["pt"].mean())
    out["mass_ratio"] = _ratio(fg["mass"].mean(), fr["mass"].mean())
    out["tau_21_ratio"] = _ratio(fg["tau_21"].mean(), fr["tau_21"].mean())
    return out


def _parts(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray], kind: DataKind) -> dict[str, float]:
    if kind.n_events(reference) == 0 or kind.n_events(generated) == 0:
        raise GansimError("cannot score an empty sample")
    return kind.score_parts(reference, generated)


def _score_from(parts: dict[str, float], kind: DataKind) -> float:
    score = parts["separation_power_mean"] + abs(parts[kind.score_ratio] - 1.0)
    return float(min(score, SCORE_CAP)) if np.isfinite(score) else SCORE_CAP


def fidelity_score(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray],
                   kind: str | DataKind = "calo") -> float:
    """One scalar, lower is better (see the module docstring); SCORE_CAP for non-finite generated events."""
    kind = get_kind(kind)
    if not _all_finite(generated):
        return SCORE_CAP
    return _score_from(_parts(reference, generated, kind), kind)


def physics_summary(reference: dict[str, np.ndarray], generated: dict[str, np.ndarray],
                    kind: str | DataKind = "calo") -> dict[str, float]:
    """A few named numbers (gen/ref ratios of means, mean separation power, fidelity) for TensorBoard.

    calo: E_0_ratio, E_1_ratio, E_2_ratio, response_ratio, sparsity_ratio, separation_power_mean, fidelity.
    jets: pt_ratio, mass_ratio, tau_21_ratio, separation_power_mean, fidelity.
    """
    kind = get_kind(kind)
    if not _all_finite(generated):
        return {"fidelity": SCORE_CAP, "nonfinite_generated": 1.0}
    parts = _parts(reference, generated, kind)
    keep = {k: v for k, v in parts.items() if not k.startswith("sep_")}
    keep["fidelity"] = _score_from(parts, kind)
    return keep
