"""Orchestration of `gansim produce`: plan, directory checks, chunk loop per rank, commit log, final dataset."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gansim.config import ProduceConfig, validate_section
from gansim.errors import GansimError
from gansim.produce.comm import is_mpi, world
from gansim.produce.manifest import MANIFEST, committed_events, load_manifest, new_manifest, save_manifest
from gansim.produce.plan import Plan, assign_chunks, chunk_filename
from gansim.produce.progress import Progress
from gansim.produce.shards import CHUNK_DIR, DATASET, build_vds, chunk_attrs, cleanup_temporaries

SAVE_EVERY_S = 5.0  # rank 0 rewrites manifest.json at most this often (and at the end)


MAX_CHUNKS = 10**8  # chunk indices a plan may hold (manifest and directory sizes stay sane)


@dataclass
class Run:
    """One invocation: the produce section of the config plus what is not part of the plan."""

    cfg: ProduceConfig
    dry_run: bool = False
    overwrite: bool = False
    progress: bool = True
    extrapolate: bool = False  # allow conditions outside the generator's training range
    particle: str | None = None  # expected particle: refuse a generator trained on another one

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)


def make_run(generator: str | Path, out: str | Path, *, dry_run: bool = False, overwrite: bool = False,
             progress: bool = True, extrapolate: bool = False, particle: str | None = None, **keys: Any) -> Run:
    """A Run from keyword arguments (Python API, tests, benchmarks): produce-section keys + invocation flags."""
    plain = {k: str(v) if isinstance(v, Path) else v for k, v in keys.items()}
    cfg = validate_section(ProduceConfig(generator=str(generator), out=str(out), **plain), "produce")
    return Run(cfg, dry_run=dry_run, overwrite=overwrite, progress=progress, extrapolate=extrapolate,
               particle=particle)


def _set_threads(size: int) -> None:
    """Share the node's cores between the ranks on it unless the user pinned OMP_NUM_THREADS."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        return
    local = next((int(os.environ[v]) for v in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                               "SLURM_NTASKS_PER_NODE") if os.environ.get(v, "").isdigit()), size)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(local, 1)))


def condition_spec(run: Run, art: Any) -> Any:
    """The production's condition distribution, checked against the generator's training range."""
    c = run.cfg
    energy = c.energy or None
    trained = art.condition_range
    if energy is None and not c.energy_file and trained is not None and art.kind.name == "calo":
        energy = f"uniform:{trained[0]:g},{trained[1]:g}"  # default: the range the generator was trained on
    spec = art.kind.condition_spec(energy, Path(c.energy_file) if c.energy_file else None,
                                   c.signal_fraction if c.signal_fraction >= 0 else None)
    bounds = getattr(spec, "bounds", None)
    if trained is not None and bounds is not None and not run.extrapolate:
        lo, hi = bounds
        # float32 rounding of the recorded range: allow a relative 1e-6
        if lo < trained[0] * (1 - 1e-6) or hi > trained[1] * (1 + 1e-6):
            raise GansimError(f"conditions {spec.text} reach outside the range the generator was trained on "
                              f"({trained[0]:g} .. {trained[1]:g} GeV); pass --extrapolate to generate anyway")
    return spec


def build_plan(run: Run, art: Any) -> tuple[Plan, Any]:
    """Check the options against the generator and freeze them into a Plan."""
    c = run.cfg
    if c.events <= 0:
        raise GansimError("--events: give the number of events to produce")
    if run.particle and run.particle != art.config.data.particle:
        raise GansimError(f"--particle {run.particle} does not match the generator, which was trained on "
                          f"{art.config.data.particle} ({c.generator})")
    spec = condition_spec(run, art)
    chunk = min(c.chunk_size, c.events)
    if -(-c.events // chunk) > MAX_CHUNKS:
        raise GansimError(f"--events {c.events:.3g} in chunks of {chunk:,} would make more than {MAX_CHUNKS:.0e} "
                          "chunks; raise --chunk-size")
    if c.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise GansimError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    elif c.device not in ("cpu", "auto"):
        raise GansimError(f"--device {c.device!r}: use cpu, cuda or auto")
    plan = Plan(kind=art.kind.name, particle=art.config.data.particle, events=c.events, chunk_size=chunk,
                seed=c.seed, condition=spec.text, condition_sha256=spec.file_sha256, batch_size=c.batch_size,
                layout=c.layout, dtype=c.dtype, compression=c.compression, generator_sha256=art.sha256,
                device_type=str(art.device.type), amp=c.amp, compile=c.compile)
    return plan, spec


def file_attrs(plan: Plan, art: Any) -> dict[str, Any]:
    """Provenance attributes of dataset.h5 (and every chunk file)."""
    from gansim import __version__

    return {"generator": f"gansim produce ({art.config.model.name})", "version": __version__,
            "seed": plan.seed, "particle": plan.particle, "config_hash": art.config.hash(),
            "generator_sha256": art.sha256, "events": plan.events, "chunk_size": plan.chunk_size,
            "condition": plan.condition, "layout": plan.layout, "dtype": plan.dtype, "compression": plan.compression,
            "not_modelled": ",".join(art.kind.extra_keys)}


# -- directory preparation (rank 0) -------------------------------------------------------------------------------

def _remove_run(out: Path) -> None:
    """--overwrite: remove only what a production run writes."""
    for name in (MANIFEST, DATASET):
        (out / name).unlink(missing_ok=True)
    if (out / CHUNK_DIR).is_dir():
        shutil.rmtree(out / CHUNK_DIR)


def prepare_dir(run: Run, plan: Plan, art: Any) -> dict[str, Any]:
    """Create or check DIR, refuse a foreign or different run, adopt chunks committed after the last manifest save."""
    out = run.out
    if out.exists() and not out.is_dir():
        raise GansimError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GansimError(f"--out {out}: cannot create the output directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise GansimError(f"--out {out}: directory is not writable")
    manifest = load_manifest(out) if not run.overwrite else None
    if run.overwrite:
        _remove_run(out)
    elif manifest is not None:
        diffs = plan.differences(Plan.from_dict(manifest["plan"]))
        if diffs:
            raise GansimError(f"{out} holds a different production run ({'; '.join(diffs)}); rerun with the "
                              "original parameters to resume it, choose another --out, or pass --overwrite")
    elif (out / DATASET).exists() or (out / CHUNK_DIR).exists():
        raise GansimError(f"{out} has {DATASET} or {CHUNK_DIR}/ but no {MANIFEST}: not a resumable gansim run; "
                          "choose an empty directory or pass --overwrite")
    if manifest is None:
        manifest = new_manifest(plan, {"path": str(art.path), "sha256": art.sha256,
                                       "model": art.config.model.name, "config_hash": art.config.hash()})
    manifest["complete"] = False
    if plan.layout == "shards":
        _reconcile_shards(out, plan, manifest)
    elif manifest["chunks"] and not (out / DATASET).exists():
        manifest["chunks"] = {}  # the shared file is gone: nothing committed survives
    try:
        save_manifest(out, manifest)
    except OSError as exc:
        raise GansimError(f"--out {out}: cannot write {MANIFEST} ({exc.strerror or exc})") from None
    return manifest


def _reconcile_shards(out: Path, plan: Plan, manifest: dict[str, Any]) -> None:
    cdir = out / CHUNK_DIR
    try:
        cdir.mkdir(exist_ok=True)
    except OSError as exc:
        raise GansimError(f"--out {out}: cannot create {CHUNK_DIR}/ ({exc.strerror or exc})") from None
    cleanup_temporaries(out)
    chunks = manifest["chunks"]
    for key in list(chunks):  # listed but lost (deleted by hand): make it again
        if not (cdir / chunk_filename(int(key))).exists():
            del chunks[key]
    pid = plan.plan_id()
    for k in range(plan.n_chunks):
        path = cdir / chunk_filename(k)
        if str(k) in chunks or not path.exists():
            continue
        a = chunk_attrs(path)
        if a.get("plan_id") == pid and a.get("events") == plan.chunk_events(k) and a.get("sha256"):
            # committed (renamed into place) after the last manifest save: adopt it
            chunks[str(k)] = {"chunk": k, "events": a["events"], "sha256": a["sha256"], "bytes": path.stat().st_size,
                              "rank": -1, "file": f"{CHUNK_DIR}/{path.name}"}
        else:
            path.unlink()  # not ours or unreadable: make it again


# -- the run ------------------------------------------------------------------------------------------------------

def _device(requested: str, rank: int) -> str:
    """cpu, or the GPU this rank should use: auto picks CUDA when the rank sees one (a GPU allocation)."""
    import torch

    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return "cpu"
    if requested in ("cuda", "auto") and torch.cuda.device_count() > 1:
        local = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", os.environ.get("SLURM_LOCALID", rank)))
        return f"cuda:{local % torch.cuda.device_count()}"
    return "cuda" if requested == "auto" else requested


def produce(run: Run) -> dict[str, Any]:
    """Run (or resume) a production on this rank; every rank returns the same summary dict."""
    from gansim.models.artifact import load_generator
    from gansim.produce.sampler import ChunkSampler

    c = validate_section(run.cfg, "produce")
    if c.layout == "single":
        from gansim.produce.single import check_parallel_h5py

        check_parallel_h5py(c.compression)  # before MPI starts or any file is touched
    comm = world(require=c.layout == "single" and not run.dry_run)
    mpi, rank, size = is_mpi(comm), comm.Get_rank(), comm.Get_size()
    _set_threads(size)
    art = load_generator(c.generator, device=_device(c.device, rank))
    plan, spec = build_plan(run, art)
    sampler = ChunkSampler(art, plan, spec, amp=c.amp, compile=c.compile)
    if run.dry_run:
        from gansim.produce.dryrun import dry_run

        return dry_run(run, plan, sampler, comm)

    manifest, done = _prepare(run, plan, art, comm)
    todo = [k for k in range(plan.n_chunks) if k not in done]
    mine = assign_chunks(todo, rank, size)
    attrs = file_attrs(plan, art)

    last_save = [time.monotonic()]

    def record(info: dict[str, Any]) -> None:  # rank 0: a chunk is on disk
        manifest["chunks"][str(info["chunk"])] = info
        if time.monotonic() - last_save[0] > SAVE_EVERY_S:
            save_manifest(run.out, manifest)
            last_save[0] = time.monotonic()

    initial = committed_events(manifest) if rank == 0 else 0
    progress = Progress(comm, mpi, total=plan.events, initial=initial, on_commit=record, show=run.progress)
    t0 = time.perf_counter()
    if plan.layout == "shards":
        totals = _run_shards(run, plan, sampler, mine, progress, rank)
    else:
        totals = _run_single(run, plan, sampler, todo, mine, progress, comm, attrs, create=not done and rank == 0)
    totals["seconds"] = time.perf_counter() - t0
    all_totals = progress.finish(totals)

    result: dict[str, Any] = {}
    if rank == 0:
        result = _finish(run, plan, manifest, attrs, all_totals)
    result = comm.bcast(result, root=0)
    if result.get("error"):
        raise GansimError(result["error"])
    return result


def _prepare(run: Run, plan: Plan, art: Any, comm: Any) -> tuple[dict[str, Any], set[int]]:
    """Rank 0 prepares DIR; every rank learns the committed chunks (or rank 0's error)."""
    status: dict[str, Any] = {}
    manifest: dict[str, Any] = {}
    if comm.Get_rank() == 0:
        try:
            manifest = prepare_dir(run, plan, art)
            status = {"done": sorted(int(k) for k in manifest["chunks"])}
        except GansimError as exc:
            status = {"error": str(exc)}
    status = comm.bcast(status, root=0)
    if "error" in status:
        raise GansimError(status["error"])
    return manifest, set(status["done"])


def _run_shards(run: Run, plan: Plan, sampler: Any, mine: list[int], progress: Progress,
                rank: int) -> dict[str, Any]:
    from gansim.produce.writer import ChunkWriter

    writer = ChunkWriter(run.out, plan, rank, overlap=run.cfg.overlap)
    events = chunks = 0
    gen_s = 0.0
    for k in mine:
        if writer.error or progress.stop_reason:
            break
        t = time.perf_counter()
        arrays = sampler.generate(k, on_batch=progress.events)
        gen_s += time.perf_counter() - t
        writer.submit(k, arrays)
        for info in writer.drain():
            progress.commit(info)
            events, chunks = events + info["events"], chunks + 1
    for info in writer.close():
        progress.commit(info)
        events, chunks = events + info["events"], chunks + 1
    return {"rank": rank, "events": events, "chunks": chunks, "generate_s": gen_s, "write_s": writer.write_seconds,
            "error": writer.error}


def _run_single(run: Run, plan: Plan, sampler: Any, todo: list[int], mine: list[int],
                progress: Progress, comm: Any, attrs: dict[str, Any], create: bool) -> dict[str, Any]:
    from gansim.produce.single import SingleFile
    from gansim.produce.storage import checksum

    create = bool(comm.bcast(create, root=0))
    rank, size = comm.Get_rank(), comm.Get_size()
    f = SingleFile(run.out / DATASET, plan, comm, create=create, attrs=attrs)
    rounds = -(-len(todo) // size)
    events = chunks = 0
    gen_s = write_s = 0.0
    try:
        for i in range(rounds):
            k = mine[i] if i < len(mine) else None
            arrays = None
            t = time.perf_counter()
            if k is not None:
                arrays = sampler.generate(k, on_batch=progress.events)
            gen_s += time.perf_counter() - t
            t = time.perf_counter()
            f.write_round(k, arrays)
            write_s += time.perf_counter() - t
            info = None
            if k is not None and arrays is not None:
                start, stop = plan.chunk_range(k)
                info = {"chunk": k, "events": stop - start, "sha256": checksum(arrays), "rank": rank,
                        "bytes": 0, "file": DATASET}
                events, chunks = events + stop - start, chunks + 1
            # the flush in write_round made this round durable: commit it (gather is collective, like the write)
            for item in comm.gather(info, root=0) or []:
                if item is not None:
                    progress.commit(item)
    finally:
        f.close()
    return {"rank": rank, "events": events, "chunks": chunks, "generate_s": gen_s, "write_s": write_s, "error": None}


def _finish(run: Run, plan: Plan, manifest: dict[str, Any], attrs: dict[str, Any],
            all_totals: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank 0: save the manifest, build dataset.h5 when every chunk is committed, print per-rank totals."""
    save_manifest(run.out, manifest)
    errors = [t["error"] for t in all_totals if t.get("error")]
    n_done = len(manifest["chunks"])
    events_done = committed_events(manifest)
    for t in all_totals:
        rate = t["events"] / t["seconds"] if t["seconds"] > 0 else 0.0
        print(f"rank {t['rank']:>4}: {t['chunks']:>6} chunks {t['events']:>12,} events in {t['seconds']:8.1f} s "
              f"({rate:,.0f} ev/s; generate {t['generate_s']:.1f} s, write {t['write_s']:.1f} s)")
    if errors:
        return {"error": f"{errors[0]} ({n_done}/{plan.n_chunks} chunks committed)"}
    if n_done != plan.n_chunks or events_done != plan.events:
        return {"error": f"run incomplete: {n_done}/{plan.n_chunks} chunks, {events_done}/{plan.events} events "
                         "committed; rerun the same command to finish"}
    dataset = run.out / DATASET
    if plan.layout == "shards":
        build_vds(run.out, plan, attrs)
    manifest["complete"] = True
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save_manifest(run.out, manifest)
    seconds = max((t["seconds"] for t in all_totals), default=0.0)
    total_bytes = sum(int(c.get("bytes", 0)) for c in manifest["chunks"].values()) or dataset.stat().st_size
    made = sum(t["events"] for t in all_totals)
    print(f"total: {plan.events:,} events in {plan.n_chunks} chunks ({made:,} made now by {len(all_totals)} "
          f"rank(s) in {seconds:.1f} s, {made / seconds if seconds else 0:,.0f} ev/s), "
          f"{total_bytes / 1e6:.1f} MB on disk ({total_bytes / plan.events:.0f} B/event) -> {dataset}")
    return {"events": plan.events, "chunks": plan.n_chunks, "made": made, "seconds": seconds,
            "bytes": total_bytes, "dataset": str(dataset), "ranks": all_totals}
