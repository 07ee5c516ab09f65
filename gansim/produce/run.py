"""Orchestration of `gansim produce`: plan, directory checks, chunk loop per rank, commit log, final dataset.

Failure rule under MPI: a rank's error inside its chunk loop is reported to rank 0 and ends every rank cleanly
(committed chunks stay valid); the set-up steps agree on errors collectively; anything else on any rank aborts
the whole communicator at once, so a job never hangs on a dead rank.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gansim.config import ProduceConfig, validate_section
from gansim.errors import GansimError
from gansim.produce import hooks
from gansim.produce.comm import is_mpi, world
from gansim.produce.environment import differences, environment, refusal
from gansim.produce.layout import CHUNK_DIR, DATASET, auto_chunk_size, build_index, chunk_relpath
from gansim.produce.manifest import MANIFEST, committed_events, load_manifest, new_manifest, save_manifest
from gansim.produce.plan import Plan, assign_chunks
from gansim.produce.progress import Progress
from gansim.produce.shards import chunk_attrs, cleanup_temporaries
from gansim.produce.storage import H5_CHUNK_EVENTS

SAVE_EVERY_S = 5.0  # rank 0 rewrites manifest.json at most this often (and at the end)
SAMPLE_EVENTS = 4096  # events compressed to measure bytes/event (auto chunk size, dry run)


class AgreedError(GansimError):
    """An error every rank raises together after a collective decision; only rank 0 prints it."""

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.quiet = rank != 0


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


def local_ranks(size: int) -> int:
    """Ranks sharing this node (launcher variables), else all of them."""
    return next((int(os.environ[v]) for v in ("OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                              "SLURM_NTASKS_PER_NODE") if os.environ.get(v, "").isdigit()), size)


def condition_spec(run: Run, art: Any) -> Any:
    """The production's condition distribution, checked against the generator's training range."""
    c = run.cfg
    energy = c.energy or None
    trained = art.condition_range
    if energy is None and not c.energy_file and trained is not None and art.kind.name == "calo":
        energy = f"uniform:{trained[0]!r},{trained[1]!r}"  # default: the training range (full precision)
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


def _check_device(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise GansimError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    elif device not in ("cpu", "auto"):
        raise GansimError(f"--device {device!r}: use cpu, cuda or auto")


def build_plan(run: Run, art: Any, chunk_size: int | None = None) -> tuple[Plan, Any]:
    """Check the options against the generator and freeze them into a Plan (chunk_size: the resolved one, when
    --chunk-size is auto; a provisional one-chunk plan otherwise)."""
    from gansim.produce.precision import parse_precision

    c = run.cfg
    if c.events <= 0:
        raise GansimError("--events: give the number of events to produce")
    if run.particle and run.particle != art.config.data.particle:
        raise GansimError(f"--particle {run.particle} does not match the generator, which was trained on "
                          f"{art.config.data.particle} ({c.generator})")
    spec = condition_spec(run, art)
    _check_device(c.device)
    chunk = min(c.chunk_size or chunk_size or c.events, c.events)
    plan = Plan(kind=art.kind.name, particle=art.config.data.particle, events=c.events, chunk_size=chunk,
                seed=c.seed, condition=spec.text, condition_sha256=spec.file_sha256, batch_size=c.batch_size,
                layout=c.layout, dtype=c.dtype, precision=parse_precision(c.precision).text,
                compression=c.compression, h5_rows=H5_CHUNK_EVENTS, files_per_dir=c.files_per_dir,
                generator_sha256=art.sha256, device_type=str(art.device.type), amp=c.amp, compile=c.compile)
    return plan, spec


def measure_bytes(sampler: Any, n: int) -> float:
    """Stored bytes/event of the run's first n events with the plan's codec (deterministic: no timing)."""
    from gansim.produce.codec import encoder
    from gansim.produce.storage import filter_kwargs

    arrays = sampler.generate(0, n=n)
    encode = encoder(sampler.plan.compression)
    rows = min(sampler.plan.h5_rows, n)
    if encode is not None:  # whole blocks only, as stored
        return sum(len(encode(a[s:s + rows])) for a in arrays.values() for s in range(0, n - rows + 1, rows)) \
            / (n // rows * rows)
    import h5py

    kw = filter_kwargs(sampler.plan.compression)
    with h5py.File(f"measure-{id(arrays)}.h5", "w", driver="core", backing_store=False) as f:
        for key, a in arrays.items():
            f.create_dataset(key, data=a, chunks=(rows, *a.shape[1:]), **kw)
        f.flush()
        return f.id.get_filesize() / n


def file_attrs(plan: Plan, art: Any) -> dict[str, Any]:
    """Provenance attributes of dataset.h5."""
    from gansim import __version__

    return {"generator": f"gansim produce ({art.config.model.name})", "version": __version__,
            "seed": plan.seed, "particle": plan.particle, "config_hash": art.config.hash(),
            "generator_sha256": art.sha256, "events": plan.events, "chunk_size": plan.chunk_size,
            "condition": plan.condition, "layout": plan.layout, "dtype": plan.dtype, "precision": plan.precision,
            "compression": plan.compression, "not_modelled": ",".join(art.kind.extra_keys)}


# -- directory preparation (rank 0) -------------------------------------------------------------------------------

def _remove_run(out: Path) -> None:
    """--overwrite: remove only what a production run writes."""
    for name in (MANIFEST, DATASET):
        (out / name).unlink(missing_ok=True)
    if (out / CHUNK_DIR).is_dir():
        shutil.rmtree(out / CHUNK_DIR)


def open_dir(run: Run) -> dict[str, Any] | None:
    """Create or check DIR (rank 0); the manifest of the run in it, if any (None with --overwrite)."""
    out = run.out
    if out.exists() and not out.is_dir():
        raise GansimError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GansimError(f"--out {out}: cannot create the output directory ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise GansimError(f"--out {out}: directory is not writable")
    if run.overwrite:
        _remove_run(out)
        return None
    manifest = load_manifest(out)
    if manifest is None and ((out / DATASET).exists() or (out / CHUNK_DIR).exists()):
        raise GansimError(f"{out} has {DATASET} or {CHUNK_DIR}/ but no {MANIFEST}: not a resumable gansim run; "
                          "choose an empty directory or pass --overwrite")
    return manifest


def prepare_dir(run: Run, plan: Plan, art: Any, manifest: dict[str, Any] | None,
                env: dict[str, Any]) -> dict[str, Any]:
    """Refuse a different run or environment, adopt chunks committed after the last manifest save, save."""
    out = run.out
    if manifest is not None:
        diffs = plan.differences(Plan.from_dict(manifest["plan"]))
        if diffs:
            raise GansimError(f"{out} holds a different production run ({'; '.join(diffs)}); rerun with the "
                              "original parameters to resume it, choose another --out, or pass --overwrite")
        env_diffs = differences(manifest["environment"], env)
        if env_diffs and manifest["chunks"]:
            raise GansimError(refusal(f"resuming {out} here", env_diffs))
    if manifest is None or not manifest["chunks"]:
        manifest = new_manifest(plan, {"path": str(art.path), "sha256": art.sha256,
                                       "model": art.config.model.name, "config_hash": art.config.hash()}, env)
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
        if not (out / chunk_relpath(plan, int(key))).exists():
            del chunks[key]
    pid = plan.plan_id()
    for path in sorted(cdir.glob("*/chunk_*.h5")):  # files on disk, not 0..n_chunks: cheap for 10^8 chunks
        k = int(path.stem.split("_")[1])
        if str(k) in chunks:
            continue
        a = chunk_attrs(path)
        if (k < plan.n_chunks and path == out / chunk_relpath(plan, k) and a.get("plan_id") == pid
                and a.get("events") == plan.chunk_events(k) and a.get("sha256")):
            # committed (renamed into place) after the last manifest save: adopt it
            chunks[str(k)] = {"chunk": k, "events": a["events"], "sha256": a["sha256"], "bytes": path.stat().st_size,
                              "rank": -1, "file": chunk_relpath(plan, k)}
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


def agree(comm: Any, error: str | None) -> None:
    """Collective: every rank raises AgreedError with the first rank's error when any rank has one."""
    errors = comm.allgather(error)
    first = next(((r, e) for r, e in enumerate(errors) if e), None)
    if first is not None:
        r, e = first
        raise AgreedError(e if comm.Get_size() == 1 else f"rank {r}: {e}", comm.Get_rank())


def produce(run: Run) -> dict[str, Any]:
    """Run (or resume) a production on this rank; every rank returns the same summary dict."""
    c = validate_section(run.cfg, "produce")
    if c.layout == "single":
        from gansim.produce.single import check_parallel_h5py

        check_parallel_h5py(c.compression)  # before MPI starts or any file is touched
    comm = world(require=c.layout == "single" and not run.dry_run)
    try:
        return _produce(run, comm)
    except AgreedError:
        raise
    except BaseException as exc:
        if is_mpi(comm) and comm.Get_size() > 1:
            # an error outside the agreed paths: nobody may wait for this rank, so end the whole job now
            from gansim.produce.writer import error_cause

            text = error_cause(exc, run.out)
            print(f"gansim produce: error on rank {comm.Get_rank()}: {text}; aborting all ranks (committed chunks "
                  "stay valid: rerun the same command to resume)", file=sys.stderr, flush=True)
            comm.Abort(2)
        raise


def _setup(run: Run, comm: Any) -> tuple[Any, Plan, Any, dict[str, Any] | None, dict[str, Any]]:
    """Every rank: generator, sampler, plan (auto chunk size from rank 0), environment; rank 0: the manifest."""
    from gansim.models.artifact import load_generator
    from gansim.produce.sampler import ChunkSampler, pool_threads

    c, rank, size = run.cfg, comm.Get_rank(), comm.Get_size()
    error, manifest, resolved = None, None, None
    art = plan = spec = sampler = env = None
    try:
        art = load_generator(c.generator, device=_device(c.device, rank))
        plan, spec = build_plan(run, art)
        if rank == 0 and not run.dry_run:
            manifest = open_dir(run)
        if c.chunk_size == 0 and rank == 0:
            resolved = manifest["plan"]["chunk_size"] if manifest else None  # a resume keeps its chunk size
            if resolved is None:
                probe = ChunkSampler(art, plan, spec, amp=c.amp, threads=pool_threads(c.threads, local_ranks(size)))
                bpe = measure_bytes(probe, min(SAMPLE_EVENTS, plan.events))
                probe.close()
                resolved = auto_chunk_size(bpe, plan.events, int(c.target_file_gb * 1e9))
        env = environment(art.device)
    except GansimError as exc:
        error = str(exc)
    agree(comm, error)
    if c.chunk_size == 0:
        plan, spec = build_plan(run, art, comm.bcast(resolved, root=0))
    sampler = ChunkSampler(art, plan, spec, amp=c.amp, compile=c.compile,
                           threads=pool_threads(c.threads, local_ranks(size)))
    return art, plan, sampler, manifest, env


def _produce(run: Run, comm: Any) -> dict[str, Any]:
    mpi, rank, size = is_mpi(comm), comm.Get_rank(), comm.Get_size()
    art, plan, sampler, manifest, env = _setup(run, comm)
    try:
        if run.dry_run:
            from gansim.produce.dryrun import dry_run

            return dry_run(run, plan, sampler, comm)
        manifest, done = _prepare(run, plan, art, comm, manifest, env)
        todo = [k for k in range(plan.n_chunks) if k not in done]
        mine = assign_chunks(todo, rank, size)
        due = [time.monotonic() + SAVE_EVERY_S]

        def record(info: dict[str, Any]) -> None:  # rank 0: a chunk is on disk
            manifest["chunks"][str(info["chunk"])] = info
            if time.monotonic() > due[0]:
                t = time.monotonic()
                save_manifest(run.out, manifest)
                # a manifest of 10^6 chunks takes ~1 s to write: never spend more than ~5 % of rank 0 on it
                due[0] = time.monotonic() + max(SAVE_EVERY_S, 20 * (time.monotonic() - t))

        initial = committed_events(manifest) if rank == 0 else 0
        progress = Progress(comm, mpi, total=plan.events, initial=initial, on_commit=record, show=run.progress)
        t0 = time.perf_counter()
        if plan.layout == "shards":
            totals = _run_shards(run, plan, sampler, mine, progress, rank)
        else:
            totals = _run_single(run, plan, sampler, todo, mine, progress, comm, file_attrs(plan, art),
                                 create=not done and rank == 0)
        totals["seconds"] = time.perf_counter() - t0
        hooks.fire("finish", rank=rank, totals=totals)
        all_totals = progress.finish(totals)
    finally:
        sampler.close()
    result: dict[str, Any] = {}
    if rank == 0:
        result = _finish(run, plan, manifest, file_attrs(plan, art), all_totals)
    result = comm.bcast(result, root=0)
    if result.get("error"):
        raise AgreedError(result["error"], rank)
    return result


def _prepare(run: Run, plan: Plan, art: Any, comm: Any, manifest: dict[str, Any] | None,
             env: dict[str, Any]) -> tuple[dict[str, Any], set[int]]:
    """Rank 0 prepares DIR; every rank checks its environment against the run's and learns the committed chunks."""
    status: dict[str, Any] = {}
    if comm.Get_rank() == 0:
        try:
            manifest = prepare_dir(run, plan, art, manifest, env)
            status = {"done": sorted(int(k) for k in manifest["chunks"]), "env": manifest["environment"]}
        except GansimError as exc:
            status = {"error": str(exc)}
    status = comm.bcast(status, root=0)
    if "error" in status:
        raise AgreedError(status["error"], comm.Get_rank())
    import platform

    diffs = differences(status["env"], env)
    agree(comm, refusal(f"this rank (host {platform.node()})", diffs) if diffs else None)
    return manifest or {}, set(status["done"])


def _run_shards(run: Run, plan: Plan, sampler: Any, mine: list[int], progress: Progress,
                rank: int) -> dict[str, Any]:
    """This rank's chunks: generate + compress on the pool, append and commit on the writer thread."""
    from gansim.produce.writer import ChunkWriter

    writer = ChunkWriter(run.out, plan, rank, overlap=run.cfg.overlap)
    events = chunks = 0
    error, k = None, None
    t_gen = time.perf_counter()
    try:
        for k in mine:
            if writer.error or progress.stop_reason:
                break
            hooks.fire("chunk", rank=rank, chunk=k)
            writer.put(("begin", k))
            for row, block in sampler.blocks(k, on_batch=progress.events):
                writer.put(("block", k, row, block))
                if writer.error:
                    break
            writer.put(("end", k))
            for info in writer.drain():
                progress.commit(info)
                events, chunks = events + info["events"], chunks + 1
    except Exception as exc:  # noqa: BLE001 - reported to rank 0 as this rank's error: every rank stops cleanly
        error = f"chunk {k}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
    finally:
        gen_s = time.perf_counter() - t_gen
        for info in writer.close():
            progress.commit(info)
            events, chunks = events + info["events"], chunks + 1
    return {"rank": rank, "events": events, "chunks": chunks, "generate_s": gen_s, "write_s": writer.write_seconds,
            "error": writer.error or error}


def _run_single(run: Run, plan: Plan, sampler: Any, todo: list[int], mine: list[int],
                progress: Progress, comm: Any, attrs: dict[str, Any], create: bool) -> dict[str, Any]:
    """Rounds of one chunk per rank, written collectively into the shared file and committed after each flush."""
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
                hooks.fire("chunk", rank=rank, chunk=k)
                arrays = sampler.generate(k, on_batch=progress.events)
            gen_s += time.perf_counter() - t
            t = time.perf_counter()
            f.write_round(k, arrays)
            write_s += time.perf_counter() - t
            info = None
            if k is not None and arrays is not None:
                start, stop = plan.chunk_range(k)
                info = {"chunk": k, "events": stop - start, "sha256": checksum(arrays, plan.h5_rows), "rank": rank,
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
    """Rank 0: save the manifest, build the index when every chunk is committed, print per-rank totals."""
    try:
        save_manifest(run.out, manifest)
    except OSError as exc:
        return {"error": f"cannot save {run.out / MANIFEST} ({exc.strerror or exc}); the chunk files are valid - "
                         "free space, then rerun the same command to resume"}
    errors = [f"rank {t['rank']}: {t['error']}" if len(all_totals) > 1 else t["error"]
              for t in all_totals if t.get("error")]
    n_done = len(manifest["chunks"])
    events_done = committed_events(manifest)
    for t in all_totals:
        rate = t["events"] / t["seconds"] if t["seconds"] > 0 else 0.0
        print(f"rank {t['rank']:>4}: {t['chunks']:>6} chunks {t['events']:>12,} events in {t['seconds']:8.1f} s "
              f"({rate:,.0f} ev/s; generate {t['generate_s']:.1f} s, write {t['write_s']:.1f} s)")
    if errors:
        return {"error": f"{errors[0]} ({n_done}/{plan.n_chunks} chunks committed; rerun the same command to "
                         "resume)"}
    if n_done != plan.n_chunks or events_done != plan.events:
        return {"error": f"run incomplete: {n_done}/{plan.n_chunks} chunks, {events_done}/{plan.events} events "
                         "committed; rerun the same command to finish"}
    dataset = run.out / DATASET
    try:
        if plan.layout == "shards":
            build_index(run.out, plan, attrs)
        manifest["complete"] = True
        manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        save_manifest(run.out, manifest)
    except (OSError, RuntimeError) as exc:
        return {"error": f"cannot write {dataset} ({str(exc).splitlines()[0]}); every chunk is committed - free "
                         "space, then rerun the same command to write the index"}
    seconds = max((t["seconds"] for t in all_totals), default=0.0)
    total_bytes = sum(int(c.get("bytes", 0)) for c in manifest["chunks"].values()) or dataset.stat().st_size
    made = sum(t["events"] for t in all_totals)
    print(f"total: {plan.events:,} events in {plan.n_chunks} chunks ({made:,} made now by {len(all_totals)} "
          f"rank(s) in {seconds:.1f} s, {made / seconds if seconds else 0:,.0f} ev/s), "
          f"{total_bytes / 1e6:.1f} MB on disk ({total_bytes / plan.events:.0f} B/event) -> {dataset}")
    return {"events": plan.events, "chunks": plan.n_chunks, "made": made, "seconds": seconds,
            "bytes": total_bytes, "dataset": str(dataset), "ranks": all_totals}
