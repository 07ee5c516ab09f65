"""DIR/manifest.json: the plan, the committed chunks with checksums, generator hash and versions (atomic updates)."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

from gansim.atomic import atomic_path
from gansim.errors import GansimError
from gansim.produce.plan import Plan

MANIFEST = "manifest.json"
FORMAT = "gansim-production/2"  # /2: fan-out layout, block checksums, precision, environment


def versions() -> dict[str, str]:
    import h5py
    import numpy as np
    import torch

    from gansim import __version__

    return {"gansim": __version__, "torch": torch.__version__, "numpy": np.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "python": platform.python_version()}


def new_manifest(plan: Plan, generator: dict[str, Any], environment: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "plan": plan.to_dict(), "plan_id": plan.plan_id(), "generator": generator,
            "environment": environment, "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "complete": False, "chunks": {}}


def load_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest of DIR (None when there is none); one GansimError line for anything malformed."""
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    fix = "restore it, or pass --overwrite to start afresh"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GansimError(f"{path}: unreadable manifest ({str(exc).splitlines()[0]}); {fix}") from None
    if not isinstance(data, dict) or not str(data.get("format", "")).startswith("gansim-production/"):
        raise GansimError(f"{path}: not a gansim production manifest; {fix}")
    if data["format"] != FORMAT:
        raise GansimError(f"{path}: written in format {data['format']!r}, this gansim reads {FORMAT!r}; finish or read "
                          f"it with the gansim that wrote it, or {fix}")
    try:
        Plan.from_dict(data.get("plan"))
    except GansimError as exc:
        raise GansimError(f"{path}: {exc}; {fix}") from None
    problem = _check_fields(data)
    if problem:
        raise GansimError(f"{path}: {problem}; {fix}")
    return data


def _check_fields(data: dict[str, Any]) -> str | None:
    """What is wrong with the non-plan fields of a manifest (None when nothing)."""
    if not isinstance(data.get("environment"), dict):
        return "'environment' is missing or not a mapping"
    chunks = data.get("chunks")
    if not isinstance(chunks, dict):
        return "'chunks' is missing or not a mapping"
    types = {"events": int, "sha256": str, "bytes": int, "file": str, "rank": int}
    for key, info in chunks.items():
        if not key.isdigit() or not isinstance(info, dict):
            return f"chunk entry {key!r} is malformed"
        for field, tp in types.items():
            if not isinstance(info.get(field), tp) or isinstance(info.get(field), bool):
                return f"chunk {key}: '{field}' is missing or not a {tp.__name__}"
    return None


def save_manifest(out_dir: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file, fsync, rename: readers see the old or the new manifest, never half of one."""
    with atomic_path(out_dir / MANIFEST, fsync=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))


def committed_events(data: dict[str, Any]) -> int:
    return sum(int(c["events"]) for c in data["chunks"].values())
