"""Deep verification of a production run: every chunk re-read from its own file, block by block, against the
manifest's checksums; a missing or unreadable chunk file is named, never read as fill values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py

from gansim.errors import GansimError
from gansim.produce.layout import DATASET, chunk_relpath
from gansim.produce.manifest import MANIFEST, load_manifest
from gansim.produce.plan import Plan
from gansim.produce.storage import block_digest, combine, key_header, keys_for, load_plugins_for


def file_checksum(f: h5py.File, plan: Plan, start: int, stop: int) -> str:
    """The chunk checksum of rows [start, stop) of every key of an open file, read h5_rows at a time."""
    headers: dict[str, bytes] = {}
    digests: dict[str, list[bytes]] = {}
    for key in keys_for(plan.kind):
        ds = f[key]
        headers[key] = key_header(key, (ds.dtype.str, (stop - start, *ds.shape[1:])))
        digests[key] = [block_digest(ds[s:min(s + plan.h5_rows, stop)]) for s in range(start, stop, plan.h5_rows)]
    return combine(headers, digests)


def chunk_checksum(out: Path, plan: Plan, k: int) -> tuple[int, str]:
    """(events, checksum) of chunk k as stored; GansimError naming the file when it cannot be read."""
    if plan.layout == "shards":
        path, (start, stop) = out / chunk_relpath(plan, k), (0, plan.chunk_events(k))
    else:
        path, (start, stop) = out / DATASET, plan.chunk_range(k)
    try:
        with h5py.File(path, "r") as f:
            n = f[next(iter(keys_for(plan.kind)))].shape[0] if plan.layout == "shards" else stop - start
            return n, file_checksum(f, plan, start, start + n if plan.layout == "shards" else stop)
    except (OSError, RuntimeError, KeyError) as exc:
        raise GansimError(f"--deep: chunk {k}: cannot read {path} ({str(exc).splitlines()[0]})") from None


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
        n, sha = chunk_checksum(out, plan, k)
        if n != plan.chunk_events(k) or n != int(chunks[str(k)]["events"]):
            raise GansimError(f"--deep: chunk {k} holds {n} events, expected {plan.chunk_events(k)}")
        if sha != chunks[str(k)]["sha256"]:
            raise GansimError(f"--deep: chunk {k}: checksum mismatch (data differs from what was committed)")
        events += n
    if events != plan.events:
        raise GansimError(f"--deep: {events} events verified, the plan says {plan.events}")
    return {"chunks_verified": plan.n_chunks, "events_verified": events, "layout": plan.layout,
            "generator_sha256": manifest.get("generator", {}).get("sha256", "")}
