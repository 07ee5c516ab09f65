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
FORMAT = "gansim-production/1"


def versions() -> dict[str, str]:
    import h5py
    import numpy as np
    import torch

    from gansim import __version__

    return {"gansim": __version__, "torch": torch.__version__, "numpy": np.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "python": platform.python_version()}


def new_manifest(plan: Plan, generator: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "plan": plan.to_dict(), "plan_id": plan.plan_id(), "generator": generator,
            "versions": versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "complete": False,
            "chunks": {}}


def load_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GansimError(f"{path}: unreadable manifest ({exc}); use --overwrite to start afresh") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "plan" not in data:
        raise GansimError(f"{path}: not a gansim production manifest; use --overwrite to start afresh")
    data.setdefault("chunks", {})
    return data


def save_manifest(out_dir: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file, fsync, rename: readers see the old or the new manifest, never half of one."""
    with atomic_path(out_dir / MANIFEST, fsync=True) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))


def committed_events(data: dict[str, Any]) -> int:
    return sum(int(c["events"]) for c in data["chunks"].values())
