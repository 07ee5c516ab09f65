"""Deep verification of a production run: every committed chunk's decoded arrays against manifest checksums."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gansim.errors import GansimError
from gansim.produce.manifest import MANIFEST, load_manifest
from gansim.produce.plan import Plan
from gansim.produce.shards import CHUNK_DIR, DATASET, read_chunk_file
from gansim.produce.storage import checksum, keys_for, load_plugins_for


def deep_verify(dataset_path: Path) -> dict[str, Any]:
    """Recompute the sha256 of every chunk (dataset.h5 or its directory); GansimError on any mismatch."""
    dataset_path = Path(dataset_path)
    out = dataset_path if dataset_path.is_dir() else dataset_path.parent
    manifest = load_manifest(out)
    if manifest is None:
        raise GansimError(f"--deep: no {MANIFEST} next to {dataset_path} (only production runs carry checksums)")
    plan = Plan.from_dict(manifest["plan"])
    load_plugins_for(plan.compression)
    chunks = manifest["chunks"]
    missing = [k for k in range(plan.n_chunks) if str(k) not in chunks]
    if missing:
        raise GansimError(f"--deep: {len(missing)} of {plan.n_chunks} chunks not committed (first: {missing[0]}); "
                          "rerun the produce command to finish")
    events = 0
    for k in range(plan.n_chunks):
        info = chunks[str(k)]
        if plan.layout == "shards":
            path = out / CHUNK_DIR / Path(info["file"]).name
            try:
                arrays = read_chunk_file(path)
            except OSError as exc:
                raise GansimError(f"--deep: chunk {k}: cannot read {path} ({exc})") from None
        else:
            from gansim.produce.single import read_chunk

            arrays = read_chunk(out / DATASET, plan, k)
        arrays = {key: arrays[key] for key in keys_for(plan.kind) if key in arrays}
        n = len(next(iter(arrays.values())))
        if n != plan.chunk_events(k) or n != int(info["events"]):
            raise GansimError(f"--deep: chunk {k} holds {n} events, expected {plan.chunk_events(k)}")
        if checksum(arrays) != info["sha256"]:
            raise GansimError(f"--deep: chunk {k}: checksum mismatch (data differs from what was committed)")
        events += n
    if events != plan.events:
        raise GansimError(f"--deep: {events} events verified, the plan says {plan.events}")
    return {"chunks_verified": plan.n_chunks, "events_verified": events, "layout": plan.layout,
            "generator_sha256": manifest.get("generator", {}).get("sha256", "")}
