"""The data-kind registry: one object per kind of event; the only place that knows which kinds exist.

Adding a kind (another detector geometry) means one new module with a DataKind subclass, registered here.
"""

from __future__ import annotations

from gansim.errors import GansimError
from gansim.kinds.base import DataKind, Key
from gansim.kinds.calo import CALO
from gansim.kinds.jets import JETS

KINDS: dict[str, DataKind] = {k.name: k for k in (CALO, JETS)}
# Files are recognised by their dataset names, most specific first (a jet file has 'image' and nothing of calo).
_DETECT_ORDER: tuple[DataKind, ...] = (JETS, CALO)


def get_kind(name: str | DataKind) -> DataKind:
    """The registered kind called `name` (a DataKind passes through)."""
    if isinstance(name, DataKind):
        return name
    try:
        return KINDS[name]
    except KeyError:
        raise GansimError(f"unknown data kind {name!r} (known: {', '.join(KINDS)})") from None


def detect_kind(names: set[str] | list[str]) -> DataKind | None:
    """The kind whose datasets a file with these top-level names holds (None when none matches)."""
    names = set(names)
    for kind in _DETECT_ORDER:
        if kind.detect(names):
            return kind
    return None


def all_particles() -> tuple[str, ...]:
    """Every particle name any kind accepts (data.particle choices)."""
    return tuple(p for k in KINDS.values() for p in k.particles)


__all__ = ["KINDS", "DataKind", "Key", "all_particles", "detect_kind", "get_kind"]
