"""Load reference / generated samples for evaluation, with the consistency checks evaluate needs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.data.schema import read_rows, validate
from gansim.errors import GansimError
from gansim.kinds import get_kind

MIN_EVENTS = 100  # per sample: fewer make every histogram and the classifier meaningless
# Evaluation holds both samples, their features and the classifiers' standardised copies: peak memory grew by
# 7.8 KB per event of either sample for CaloGAN showers (2.0 KB in the file) between 5k and 20k events, so about
# four copies of every event.
EVAL_COPIES = 4
_PARTICLE_ALIASES = {"e+": "eplus", "positron": "eplus", "electron": "eplus", "photon": "gamma", "pi+": "piplus",
                     "pion": "piplus"}


@dataclass
class Sample:
    """Events of one file (or generated in memory) in file units, plus where they came from."""

    kind: str
    data: dict[str, np.ndarray]
    source: str
    n_total: int
    attrs: dict[str, Any] = field(default_factory=dict)

    _features: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return get_kind(self.kind).n_events(self.data)

    def features(self) -> dict[str, np.ndarray]:
        """The kind's per-event features (computed once)."""
        if self._features is None:
            self._features = get_kind(self.kind).features(self.data)
        return self._features

    @property
    def particle(self) -> str | None:
        p = self.attrs.get("particle")
        return canonical_particle(p) if p not in (None, "") else None


def canonical_particle(p: Any) -> str:
    s = p.decode() if isinstance(p, bytes) else str(p)
    s = s.strip().lower()
    return _PARTICLE_ALIASES.get(s, s)


def load_sample(path: str | Path, max_events: int = 0) -> Sample:
    """Read the first max_events (0 = all) events of a CaloGAN or jet-image file; GansimError if unusable."""
    summary = validate(path, scan=True)
    n = summary.n_events if max_events <= 0 else min(summary.n_events, max_events)
    kind = get_kind(summary.format)
    with h5py.File(path, "r") as f:
        data = {k: np.asarray(read_rows(f[k], slice(0, n), path), np.float32) for k in kind.read_keys()}
    data[kind.cond_key] = data[kind.cond_key].reshape(-1)
    return Sample(kind.name, data, str(path), summary.n_events, summary.attrs)


def check_memory_for(kind_name: str, n_reference: int, n_generated: int) -> None:
    """GansimError (saying the bound) when the two samples cannot be evaluated in this machine's memory."""
    from gansim.resources import check_memory, count_text

    kind = get_kind(kind_name)
    per_event = EVAL_COPIES * 4 * sum(int(np.prod(k.shape)) for k in kind.keys)
    check_memory(n_reference + n_generated, per_event,
                 f"evaluating {count_text(n_reference)} reference and {count_text(n_generated)} generated events",
                 "lower --events, or --max-events for the files")


def check_pair(reference: Sample, generated: Sample, min_events: int = MIN_EVENTS) -> None:
    """Same format, same particle (when both files say), enough events; else a GansimError naming it."""
    if reference.kind != generated.kind:
        raise GansimError(f"format mismatch: reference {reference.source} holds {reference.kind} events, "
                          f"generated {generated.source} holds {generated.kind} events")
    rp, gp = reference.particle, generated.particle
    if rp and gp and rp != gp:
        raise GansimError(f"particle mismatch: reference {reference.source} is {rp}, generated {generated.source} "
                          f"is {gp}")
    for s, what in ((reference, "reference"), (generated, "generated")):
        if s.n < min_events:
            raise GansimError(f"too few events: {what} {s.source} has {s.n}, evaluation needs at least {min_events}")
