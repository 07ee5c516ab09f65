"""Real SLURM: sbatch slurm/train.sh, tune.sh, produce.sh (and an salloc Ray cluster) on a 2-node cluster."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.train.checkpoint import STATE_FILE, latest_checkpoint, load_state

from .conftest import run_cli
from .produce_helpers import chunk_sums, make_generator, read_all

ROOT = Path(__file__).resolve().parents[1]
REQUIRE = os.environ.get("GANSIM_REQUIRE_SLURM") == "1"
UP_HINT = "start the local 2-node cluster with: sudo bash cluster/slurm_local.sh up (then make test-slurm)"
USABLE = {"idle", "alloc", "mix", "comp"}
TWO_NODES = ["--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1", "--gpus-per-node=0", "--time=20"]

pytestmark = pytest.mark.slurm


def cluster_problem() -> str | None:
    """None when a SLURM controller answers with two usable nodes, else why not."""
    for cmd in ("sbatch", "salloc", "squeue", "sinfo", "scontrol", "scancel"):
        if shutil.which(cmd) is None:
            return f"no SLURM here ({cmd} not on PATH); {UP_HINT}"
    try:
        r = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return f"sinfo did not answer within 30 s; {UP_HINT}"
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or ["sinfo failed"])[-1]
        return f"no SLURM controller answers ({last}); {UP_HINT}"
    nodes = {line.split()[0] for line in r.stdout.splitlines()
             if len(line.split()) == 2 and line.split()[1].rstrip("*~#!%$@^-") in USABLE}
    if len(nodes) < 2:
        return f"the SLURM cluster needs 2 usable nodes, has {sorted(nodes) or 'none'}: {r.stdout.strip()!r}; {UP_HINT}"
    return None


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    problem = cluster_problem()
    if problem is None:
        return
    if REQUIRE:
        pytest.fail(f"GANSIM_REQUIRE_SLURM=1 but {problem}", pytrace=False)
    pytest.skip(problem)


# -- jobs -----------------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def job_env(**extra: str | Path) -> dict[str, str]:
    """The submitter's environment (sbatch exports it to the job): this venv, 1 thread, a free Ray port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_", "RAY_", "GANSIM_"))}
    env.update({"GANSIM_VENV": sys.prefix, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
                "RAY_PORT": str(_free_port())})
    if os.geteuid() == 0:  # Open MPI's mpiexec refuses root without these (CI runs as root)
        env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def sbatch(script: str, args: list[str], log: Path, env: dict[str, str], opts: list[str] = TWO_NODES) -> str:
    cmd = ["sbatch", "--parsable", f"--output={log}", *opts, script, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stderr}"
    return r.stdout.strip().split(";")[0]


def job_state(job: str) -> dict[str, str]:
    r = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, timeout=30)
    return dict(kv.split("=", 1) for kv in r.stdout.split() if "=" in kv) if r.returncode == 0 else {}


def running(job: str) -> bool:
    r = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True, timeout=30)
    return r.returncode == 0 and r.stdout.strip() != ""


def tail(log: Path, n: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return f"(no log at {log})"


def wait_job(job: str, log: Path, timeout: float) -> dict[str, str]:
    """Wait for the job to leave the queue; its final JobState/ExitCode. Cancels it on timeout."""
    deadline = time.monotonic() + timeout
    while running(job):
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job], timeout=30)
            pytest.fail(f"job {job} still running after {timeout:.0f} s (cancelled); log:\n{tail(log)}")
        time.sleep(1)
    return job_state(job)


def wait_for(cond: Callable[[], bool], job: str, log: Path, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if not running(job):
            pytest.fail(f"job {job} ended before {what}; log:\n{tail(log)}")
        if time.monotonic() > deadline:
            subprocess.run(["scancel", job], timeout=30)
            pytest.fail(f"no {what} after {timeout:.0f} s (job {job} cancelled); log:\n{tail(log)}")
        time.sleep(0.5)


def job_processes(job: str) -> list[int]:
    """Processes on this host that belong to the job (every one inherits SLURM_JOB_ID, Ray workers included)."""
    marker = f"SLURM_JOB_ID={job}\0".encode()
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if marker in (d / "environ").read_bytes():
                    found.append(int(d.name))
            except OSError:
                continue
    return found


def assert_job_left_nothing(job: str, out: Path | None = None) -> None:
    """No process of the job survives it (Ray included) and its Ray auth token is gone."""
    deadline = time.monotonic() + 30  # slurmstepd may still be reaping
    while (left := job_processes(job)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for pid in left:  # do not leak into the next test; the assertion below still fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"job {job} left processes behind: {left}"
    if out is not None:
        assert not list(out.glob(f".ray/{job}/auth_token")), "the per-job Ray token outlived the job"


@pytest.fixture
def jobs() -> Iterator[list[str]]:
    """Job ids a test submits: cancelled if still queued at the end, and their node-local Ray dirs removed."""
    ids: list[str] = []
    yield ids
    for job in ids:
        if running(job):
            subprocess.run(["scancel", job], timeout=30)
        for d in Path("/tmp").glob(f"ray-gansim-{job}-*"):
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def calo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "eplus.h5"
    r = run_cli("simulate", "calo", "--particle", "eplus", "--events", "2000", "--seed", "1", "--out", str(path))
    assert r.returncode == 0, r.stderr
    return path


# -- train ----------------------------------------------------------------------------------------------------------

def _epoch(run: Path) -> tuple[int, int]:
    ckpt = latest_checkpoint(run)
    if ckpt is None or not (ckpt / STATE_FILE).is_file():
        return 0, 0
    state = load_state(ckpt / STATE_FILE)
    return int(state["epoch"]), int(state["step"])


@pytest.mark.timeout(900)
def test_train_two_nodes_resubmit_and_scancel_resume(tmp_path: Path, calo_data: Path, jobs: list[str]) -> None:
    """train.sh on 2 nodes; resubmitted, the step count continues; scancelled mid-epoch and resubmitted, it resumes."""
    out = tmp_path / "run"
    run = out / "debug"  # run.name of configs/debug.yaml
    steps = 60  # per epoch: 1600 training events / (batch 8 x 2 workers) = 100 available
    args = ["configs/debug.yaml", "--data", str(calo_data), "--set", "train.batch_size=8",
            "--set", f"train.steps_per_epoch={steps}", "--set", "train.val_events=100"]
    env = job_env(GANSIM_OUT=out)

    log1 = tmp_path / "train-1.log"
    jobs.append(j1 := sbatch("slurm/train.sh", [*args, "--epochs", "1"], log1, env))
    info = wait_job(j1, log1, 420)
    text = log1.read_text()
    assert info.get("JobState") == "COMPLETED", tail(log1)
    assert re.search(r"job \d+, 2 node\(s\) \[\S+ \S+\]", text), text[:2000]
    assert "Ray cluster with 2 node(s) is up" in text
    assert "2 worker(s) x 0 GPU / 1 CPU" in text  # 1-CPU nodes: one DDP worker on each
    assert "2 worker(s) x batch 8 = global batch 16" in text
    assert f"gansim train: done: epoch 1, step {steps}" in text
    state = load_state(latest_checkpoint(run) / STATE_FILE)
    assert (state["epoch"], state["step"], state["config"]["train"]["workers"]) == (1, steps, 2)
    assert_job_left_nothing(j1, out)

    # Resubmitted with more epochs: it continues from the checkpoint. Cancel it in the middle of epoch 3.
    log2 = tmp_path / "train-2.log"
    jobs.append(j2 := sbatch("slurm/train.sh", [*args, "--epochs", "3"], log2, env))
    wait_for(lambda: _epoch(run)[0] >= 2, j2, log2, 420, "epoch-2 checkpoint")
    time.sleep(2)  # into epoch 3 (an epoch takes several seconds here)
    subprocess.run(["scancel", j2], check=True, timeout=30)
    info = wait_job(j2, log2, 120)
    text = log2.read_text()
    assert info.get("JobState") == "CANCELLED", tail(log2)
    assert f"found checkpoint at epoch 1 (step {steps})" in text and f"resuming from epoch 1, step {steps}" in text
    assert _epoch(run) == (2, 2 * steps), "scancel should have hit epoch 3, after the epoch-2 checkpoint"
    assert_job_left_nothing(j2, out)

    # The same command again: resumes from the last checkpoint (epoch 2) and finishes.
    log3 = tmp_path / "train-3.log"
    jobs.append(j3 := sbatch("slurm/train.sh", [*args, "--epochs", "3"], log3, env))
    info = wait_job(j3, log3, 420)
    text = log3.read_text()
    assert info.get("JobState") == "COMPLETED", tail(log3)
    assert f"resuming from epoch 2, step {2 * steps}" in text
    assert f"gansim train: done: epoch 3, step {3 * steps}" in text
    assert _epoch(run) == (3, 3 * steps)
    assert_job_left_nothing(j3, out)


# -- tune -----------------------------------------------------------------------------------------------------------

def _trial_results(out: Path) -> dict[str, list[dict]]:
    found = {}
    for f in (out / "ray" / "study").glob("trial_driver_*/result.json"):
        rows = []
        for line in f.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:  # a line being written right now
                break
        found[f.parent.name] = rows
    return found


def _finished(out: Path, max_epoch: int) -> list[str]:
    return [t for t, rows in _trial_results(out).items() if any(r.get("epoch") == max_epoch for r in rows)]


@pytest.mark.timeout(900)
def test_tune_two_nodes_interrupted_study_resumes(tmp_path: Path, calo_data: Path, jobs: list[str]) -> None:
    """tune.sh over a 2-node Ray cluster; TERM (what the time limit sends) mid-study, resubmit: the study resumes."""
    out = tmp_path / "study"
    trials, epochs = 3, 2  # configs/tune/debug.yaml fixes train.epochs = 2
    args = ["configs/debug.yaml", "configs/tune/debug.yaml", "--data", str(calo_data)]
    env = job_env(GANSIM_OUT=out, GANSIM_TRIALS=str(trials))

    log1 = tmp_path / "tune-1.log"
    jobs.append(j1 := sbatch("slurm/tune.sh", args, log1, env))
    wait_for(lambda: len(_finished(out, epochs)) >= 1, j1, log1, 480, "finished trial")
    # --signal=B:TERM@180 sends TERM to the batch shell only; so does this.
    subprocess.run(["scancel", "--batch", "--signal=TERM", j1], check=True, timeout=30)
    wait_job(j1, log1, 240)
    text = log1.read_text()
    assert "Ray cluster with 2 node(s) is up" in text
    assert "interrupting gansim tune" in text, tail(log1)
    assert_job_left_nothing(j1, out)
    done_before = _finished(out, epochs)
    assert 1 <= len(done_before) < trials, f"expected an unfinished study, finished: {done_before}"
    frozen = {t: (out / "ray" / "study" / t / "result.json").read_bytes() for t in done_before}

    log2 = tmp_path / "tune-2.log"
    jobs.append(j2 := sbatch("slurm/tune.sh", args, log2, env))
    info = wait_job(j2, log2, 480)
    text = log2.read_text()
    assert info.get("JobState") == "COMPLETED", tail(log2)
    assert re.search(rf"gansim tune: done: resumed; {trials} trials: \d+ complete, \d+ pruned, 0 failed", text), \
        tail(log2)
    assert (out / "best.yaml").is_file()
    results = _trial_results(out)
    assert len(results) == trials, sorted(results)
    for t, data in frozen.items():  # finished trials were not run again
        assert (out / "ray" / "study" / t / "result.json").read_bytes() == data, t
    for t, rows in results.items():  # no trial started over: its epochs only ever go up
        seen = [r["epoch"] for r in rows]
        assert seen == sorted(set(seen)) and seen, f"{t} reported epochs {seen}"
    journal = [json.loads(line) for line in (out / "optuna-journal.log").read_text().splitlines() if line.strip()]
    assert sum(1 for op in journal if op.get("op_code") == 4) == trials  # Optuna trials created: no reruns
    assert_job_left_nothing(j2, out)


# -- produce --------------------------------------------------------------------------------------------------------

EVENTS, CHUNK = 60_000, 1000
PLAN = ["--chunk-size", str(CHUNK), "--seed", "5"]


@pytest.fixture(scope="module")
def produce_ref(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A generator and the same plan produced locally by one process (1 thread, as the ranks)."""
    d = tmp_path_factory.mktemp("produce")
    gen = make_generator(d / "gen.pt")
    ref = d / "ref"
    r = subprocess.run([sys.executable, "-m", "gansim.cli", "produce", "-g", str(gen), "-n", str(EVENTS), *PLAN,
                        "--out", str(ref), "--no-progress"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    return gen, ref


def _assert_same_as(out: Path, ref: Path) -> None:
    assert chunk_sums(out) == chunk_sums(ref)
    a, b = read_all(out / "dataset.h5"), read_all(ref / "dataset.h5")
    assert a.keys() == b.keys()
    for k in a:
        assert np.array_equal(a[k], b[k]), k


@pytest.mark.timeout(600)
def test_produce_two_nodes_identical_to_local(tmp_path: Path, produce_ref: tuple[Path, Path],
                                              jobs: list[str]) -> None:
    """produce.sh, 2 nodes x 1 rank via srun --mpi=pmix on a CPU-only allocation: the local run's bytes."""
    gen, ref = produce_ref
    out, log = tmp_path / "prod", tmp_path / "produce.log"
    jobs.append(j := sbatch("slurm/produce.sh", [str(gen), str(EVENTS), str(out), *PLAN], log, job_env()))
    info = wait_job(j, log, 300)
    text = log.read_text()
    assert info.get("JobState") == "COMPLETED", tail(log)
    # --gpus-per-node=0 sets SLURM_GPUS_PER_NODE=0: that is a CPU allocation.
    assert "2 node(s), 2 rank(s), device cpu (0 GPU(s) per node), 1 thread(s) per rank" in text, text[:1000]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["plan"]["device_type"] == "cpu"
    assert {c["rank"] for c in manifest["chunks"].values()} == {0, 1}  # both ranks wrote
    _assert_same_as(out, ref)
    assert_job_left_nothing(j)


@pytest.mark.timeout(600)
def test_produce_scancel_then_resubmit_makes_only_missing_chunks(tmp_path: Path, produce_ref: tuple[Path, Path],
                                                                 jobs: list[str]) -> None:
    gen, ref = produce_ref
    out = tmp_path / "prod"
    chunks = out / "chunks"
    # 5x the reference's events: the tiny generator makes ~10^4 events/s per rank, so a 60-chunk job can end
    # before the test sees 5 chunks and cancels it. Chunk k depends on (seed, k) only: the reference is a prefix.
    events = 5 * EVENTS
    args = [str(gen), str(events), str(out), *PLAN]
    n_chunks = events // CHUNK

    log1 = tmp_path / "produce-1.log"
    jobs.append(j1 := sbatch("slurm/produce.sh", args, log1, job_env()))
    wait_for(lambda: len(list(chunks.rglob("chunk_*.h5"))) >= 5, j1, log1, 300, "5 committed chunks")
    subprocess.run(["scancel", j1], check=True, timeout=30)
    info = wait_job(j1, log1, 120)
    assert info.get("JobState") == "CANCELLED", tail(log1)
    assert_job_left_nothing(j1)
    # chunks/<dir>/chunk_*.h5 (files_per_dir): committed chunks are the renamed, final names
    before = {p.relative_to(chunks): (p.stat().st_ino, p.stat().st_mtime_ns) for p in chunks.rglob("chunk_*.h5")}
    assert 5 <= len(before) < n_chunks, f"{len(before)} of {n_chunks} chunks before the resubmission"

    log2 = tmp_path / "produce-2.log"
    jobs.append(j2 := sbatch("slurm/produce.sh", args, log2, job_env()))
    info = wait_job(j2, log2, 300)
    text = log2.read_text()
    assert info.get("JobState") == "COMPLETED", tail(log2)
    missing = events - len(before) * CHUNK
    assert f"({missing:,} made now by 2 rank(s)" in text, tail(log2)
    for name, stamp in before.items():  # committed chunks were neither rewritten nor replaced
        p = chunks / name
        assert (p.stat().st_ino, p.stat().st_mtime_ns) == stamp, name
    got, want = chunk_sums(out), chunk_sums(ref)
    assert len(got) == n_chunks and {k: got[k] for k in want} == want
    with h5py.File(out / "dataset.h5", "r") as f:
        b = read_all(ref / "dataset.h5")
        for k in b:
            assert f[k].shape[0] == events and np.array_equal(f[k][:EVENTS], b[k]), k
    assert_job_left_nothing(j2)


@pytest.mark.timeout(300)
def test_produce_mpiexec_fallback(tmp_path: Path, produce_ref: tuple[Path, Path], jobs: list[str]) -> None:
    """GANSIM_LAUNCHER=mpiexec (Open MPI's launcher inside the allocation): same bytes as the local run."""
    gen, ref = produce_ref
    events = 8 * CHUNK
    out, log = tmp_path / "prod", tmp_path / "produce.log"
    env = job_env(GANSIM_LAUNCHER="mpiexec")
    jobs.append(j := sbatch("slurm/produce.sh", [str(gen), str(events), str(out), *PLAN], log, env))
    info = wait_job(j, log, 240)
    text = log.read_text()
    assert info.get("JobState") == "COMPLETED", tail(log)
    assert "launcher mpiexec" in text and f"({events:,} made now by 2 rank(s)" in text, tail(log)
    a, b = read_all(out / "dataset.h5"), read_all(ref / "dataset.h5")
    for k in a:  # chunk k depends on (seed, k) only: the first 8 chunks of the reference
        assert np.array_equal(a[k], b[k][:events]), k
    assert_job_left_nothing(j)


# -- interactive allocation -----------------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_ray_cluster_in_salloc(tmp_path: Path) -> None:
    """source cluster/ray_cluster.sh in an salloc shell: one Ray node per SLURM node, token auth, clean stop."""
    state = tmp_path / "ray-state"
    script = r"""
opts_before=$-
source cluster/ray_cluster.sh && gansim_ray_start || exit 1
[ "$-" = "$opts_before" ] || { echo "shell options changed: $opts_before -> $-"; exit 1; }
echo "auth=$RAY_AUTH_MODE token_mode=$(stat -c %a "$RAY_AUTH_TOKEN_PATH")"
python - <<'EOF'
import os
import ray
ray.init(logging_level="error", log_to_driver=False)
print("nodes", sorted(n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]))
@ray.remote(num_cpus=1)
def where():
    import time
    time.sleep(1)
    return os.environ.get("SLURMD_NODENAME")
print("ran on", sorted(ray.get([where.remote(), where.remote()])))
EOF
gansim_ray_stop
echo "token left: $(ls "$GANSIM_RAY_STATE" | grep -c auth_token)"
echo "job $SLURM_JOB_ID"
"""
    env = job_env(GANSIM_RAY_STATE=state)
    r = subprocess.run(["salloc", "--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=1", "--time=10",
                        "bash", "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "Ray cluster with 2 node(s) is up" in r.stdout
    assert "auth=token token_mode=600" in r.stdout
    assert "nodes [1.0, 1.0]" in r.stdout
    nodes = re.search(r"ran on \['(\S+)', '(\S+)'\]", r.stdout)
    assert nodes and nodes[1] != nodes[2], r.stdout  # the two 1-CPU tasks ran on the two SLURM nodes
    assert "token left: 0" in r.stdout
    job = re.search(r"job (\d+)", r.stdout)
    assert job
    for d in Path("/tmp").glob(f"ray-gansim-{job[1]}-*"):
        shutil.rmtree(d, ignore_errors=True)
    assert_job_left_nothing(job[1])
