"""Orchestration of `gansim produce`: plan, directory checks, chunk loop per rank, commit log, final dataset."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gansim.errors import GansimError
from gansim.produce.comm import is_mpi, world
from gansim.produce.conditioning import DEFAULT_ENERGY, EnergySpec, load_energy_file, parse_energy
from gansim.produce.manifest import MANIFEST, committed_events, load_manifest, new_manifest, save_manifest
from gansim.produce.plan import DEFAULT_CHUNK, Plan, assign_chunks, chunk_filename
from gansim.produce.progress import Progress
from gansim.produce.shards import CHUNK_DIR, DATASET, build_vds, chunk_attrs, cleanup_temporaries

SAVE_EVERY_S = 5.0  # rank 0 rewrites manifest.json at most this often (and at the end)


@dataclass
class ProduceOptions:
    generator: Path
    events: int
    out: Path
    particle: str | None = None
    energy: str | None = None
    energy_file: Path | None = None
    seed: int = 0
    chunk_size: int = DEFAULT_CHUNK
    batch_size: int = 1024
    layout: str = "shards"
    dtype: str = "float32"
    compression: str = "gzip"
    device: str = "cpu"
    dry_run: bool = False
    compile: bool = False
    amp: bool = False
    overwrite: bool = False
    signal_fraction: float = 0.5
    overlap: bool = True
    progress: bool = True


def _set_threads(size: int) -> None:
    """Share the node's cores between the ranks on it unless the user pinned OMP_NUM_THREADS."""
    import torch

    if "OMP_NUM_THREADS" in os.environ:
        return
    local = next((int(os.environ[v]) for v in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                               "SLURM_NTASKS_PER_NODE") if os.environ.get(v, "").isdigit()), size)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(local, 1)))


def build_plan(opts: ProduceOptions, art: Any) -> tuple[Plan, EnergySpec | None]:
    """Check the options against the generator and freeze them into a Plan."""
    cfg_particle = art.config.data.particle
    if art.kind == "calo":
        if opts.particle and opts.particle != cfg_particle:
            raise GansimError(f"--particle {opts.particle} does not match the generator, which was trained on "
                              f"{cfg_particle} ({opts.generator})")
        if opts.energy and opts.energy_file:
            raise GansimError("give either --energy or --energy-file, not both")
        energy = load_energy_file(opts.energy_file) if opts.energy_file else parse_energy(opts.energy or DEFAULT_ENERGY)
    else:
        if opts.particle and opts.particle != "jets":
            raise GansimError(f"--particle {opts.particle}: {opts.generator} is a jet-image (LAGAN) generator")
        if opts.energy or opts.energy_file:
            raise GansimError("--energy/--energy-file apply to calorimeter generators; jet generators take "
                              "--signal-fraction")
        energy = None
    if opts.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise GansimError("--device cuda: no CUDA device is available here (use --device cpu)")
    elif opts.device != "cpu":
        raise GansimError(f"--device {opts.device!r}: use cpu or cuda")
    plan = Plan(kind=art.kind, particle=cfg_particle if art.kind == "calo" else "jets", events=opts.events,
                chunk_size=min(opts.chunk_size, opts.events), seed=opts.seed,
                energy=energy.text if energy else "", energy_file_sha256=energy.file_sha256 if energy else "",
                signal_fraction=opts.signal_fraction if art.kind == "jets" else 0.0, batch_size=opts.batch_size,
                layout=opts.layout, dtype=opts.dtype, compression=opts.compression, generator_sha256=art.sha256,
                device_type=opts.device.split(":")[0], amp=opts.amp, compile=opts.compile)
    return plan, energy


def file_attrs(plan: Plan, art: Any) -> dict[str, Any]:
    """Provenance attributes of dataset.h5 (and every chunk file)."""
    from gansim import __version__

    return {"generator": f"gansim produce ({art.config.model.name})", "version": __version__,
            "seed": plan.seed, "particle": plan.particle, "config_hash": art.config.hash(),
            "generator_sha256": art.sha256, "events": plan.events, "chunk_size": plan.chunk_size,
            "energy": plan.energy, "layout": plan.layout, "dtype": plan.dtype, "compression": plan.compression}


# -- directory preparation (rank 0) -------------------------------------------------------------------------------

def _remove_run(out: Path) -> None:
    """--overwrite: remove only what a production run writes."""
    for name in (MANIFEST, DATASET):
        (out / name).unlink(missing_ok=True)
    if (out / CHUNK_DIR).is_dir():
        shutil.rmtree(out / CHUNK_DIR)


def prepare_dir(opts: ProduceOptions, plan: Plan, art: Any) -> dict[str, Any]:
    """Create or check DIR, refuse a foreign or different run, adopt chunks committed after the last manifest save."""
    out = opts.out
    if out.exists() and not out.is_dir():
        raise GansimError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GansimError(f"--out {out}: cannot create the output directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise GansimError(f"--out {out}: directory is not writable")
    manifest = load_manifest(out) if not opts.overwrite else None
    if opts.overwrite:
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
        manifest = new_manifest(plan, {"path": str(opts.generator), "sha256": art.sha256,
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

def produce(opts: ProduceOptions) -> dict[str, Any]:
    """Run (or resume) a production on this rank; every rank returns the same summary dict."""
    import torch

    from gansim.models.artifact import load_generator
    from gansim.produce.sampler import ChunkSampler

    if opts.layout == "single":
        from gansim.produce.single import check_parallel_h5py

        check_parallel_h5py(opts.compression)  # before MPI starts or any file is touched
    comm = world(require=opts.layout == "single" and not opts.dry_run)
    mpi, rank, size = is_mpi(comm), comm.Get_rank(), comm.Get_size()
    _set_threads(size)
    if opts.device.startswith("cuda") and torch.cuda.is_available() and torch.cuda.device_count() > 1:
        local = int(os.environ.get("OMPI_COMM_WORLD_LOCAL_RANK", os.environ.get("SLURM_LOCALID", rank)))
        opts.device = f"cuda:{local % torch.cuda.device_count()}"
    art = load_generator(opts.generator, device=opts.device)
    plan, energy = build_plan(opts, art)
    sampler = ChunkSampler(art, plan, energy, device=opts.device, amp=opts.amp, compile=opts.compile)
    if opts.dry_run:
        from gansim.produce.dryrun import dry_run

        return dry_run(opts, plan, sampler, comm)

    status: dict[str, Any]
    manifest: dict[str, Any] = {}
    if rank == 0:
        try:
            manifest = prepare_dir(opts, plan, art)
            status = {"done": sorted(int(k) for k in manifest["chunks"])}
        except GansimError as exc:
            status = {"error": str(exc)}
    else:
        status = {}
    status = comm.bcast(status, root=0)
    if "error" in status:
        raise GansimError(status["error"])
    done = set(status["done"])
    todo = [k for k in range(plan.n_chunks) if k not in done]
    mine = assign_chunks(todo, rank, size)
    attrs = file_attrs(plan, art)

    last_save = [time.monotonic()]

    def record(info: dict[str, Any]) -> None:  # rank 0: a chunk is on disk
        manifest["chunks"][str(info["chunk"])] = info
        if time.monotonic() - last_save[0] > SAVE_EVERY_S:
            save_manifest(opts.out, manifest)
            last_save[0] = time.monotonic()

    initial = committed_events(manifest) if rank == 0 else 0
    progress = Progress(comm, mpi, total=plan.events, initial=initial, on_commit=record, show=opts.progress)
    t0 = time.perf_counter()
    if plan.layout == "shards":
        totals = _run_shards(opts, plan, sampler, mine, progress, rank)
    else:
        totals = _run_single(opts, plan, sampler, todo, mine, progress, comm, attrs, create=not done and rank == 0)
    totals["seconds"] = time.perf_counter() - t0
    all_totals = progress.finish(totals)

    result: dict[str, Any] = {}
    if rank == 0:
        result = _finish(opts, plan, manifest, attrs, all_totals)
    result = comm.bcast(result, root=0)
    if result.get("error"):
        raise GansimError(result["error"])
    return result


def _run_shards(opts: ProduceOptions, plan: Plan, sampler: Any, mine: list[int], progress: Progress,
                rank: int) -> dict[str, Any]:
    from gansim.produce.writer import ChunkWriter

    writer = ChunkWriter(opts.out, plan, rank, overlap=opts.overlap)
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


def _run_single(opts: ProduceOptions, plan: Plan, sampler: Any, todo: list[int], mine: list[int],
                progress: Progress, comm: Any, attrs: dict[str, Any], create: bool) -> dict[str, Any]:
    from gansim.produce.single import SingleFile
    from gansim.produce.storage import checksum

    create = bool(comm.bcast(create, root=0))
    rank, size = comm.Get_rank(), comm.Get_size()
    f = SingleFile(opts.out / DATASET, plan, comm, create=create, attrs=attrs)
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


def _finish(opts: ProduceOptions, plan: Plan, manifest: dict[str, Any], attrs: dict[str, Any],
            all_totals: list[dict[str, Any]]) -> dict[str, Any]:
    """Rank 0: save the manifest, build dataset.h5 when every chunk is committed, print per-rank totals."""
    save_manifest(opts.out, manifest)
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
    dataset = opts.out / DATASET
    if plan.layout == "shards":
        build_vds(opts.out, plan, attrs)
    manifest["complete"] = True
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    save_manifest(opts.out, manifest)
    seconds = max((t["seconds"] for t in all_totals), default=0.0)
    total_bytes = sum(int(c.get("bytes", 0)) for c in manifest["chunks"].values()) or dataset.stat().st_size
    made = sum(t["events"] for t in all_totals)
    print(f"total: {plan.events:,} events in {plan.n_chunks} chunks ({made:,} made now by {len(all_totals)} "
          f"rank(s) in {seconds:.1f} s, {made / seconds if seconds else 0:,.0f} ev/s), "
          f"{total_bytes / 1e6:.1f} MB on disk ({total_bytes / plan.events:.0f} B/event) -> {dataset}")
    return {"events": plan.events, "chunks": plan.n_chunks, "made": made, "seconds": seconds,
            "bytes": total_bytes, "dataset": str(dataset), "ranks": all_totals}
