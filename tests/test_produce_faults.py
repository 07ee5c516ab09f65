"""Production failures end loudly, quickly, and lose nothing: a failing MPI rank, a full disk (real tmpfs), a dying
writer, corrupted manifests and absurd sizes - each one clear line and a non-zero exit, committed chunks valid."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gansim.errors import GansimError
from gansim.produce import hooks
from gansim.produce.run import make_run, produce
from gansim.produce.verify import chunk_checksum, deep_verify
from tests.produce_helpers import (
    MPI_VARS,
    REPO,
    chunk_sums,
    clean_env,
    make_generator,
    mpi_fault_cmd,
    mpiexec,
)

N, C = 3000, 500


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_generator(tmp_path_factory.mktemp("gen") / "g.pt")


@pytest.fixture(scope="module")
def reference(gen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    produce(make_run(gen, out, events=N, chunk_size=C, batch_size=256, seed=2, progress=False))
    return out


def cli(gen: Path, out: Path, *extra: str) -> list[str]:
    return ["produce", "-g", str(gen), "--events", str(N), "--chunk-size", str(C), "--batch-size", "256", "--seed",
            "2", "--out", str(out), "--no-progress", *extra]


def gansim(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gansim.cli", *args], capture_output=True, text=True,
                          env=clean_env(OMP_NUM_THREADS="1"), cwd=REPO, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def main_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The CLI in this process (as fast as a function call): exit code 2 and exactly one line on stderr."""
    from gansim.cli import main

    capsys.readouterr()
    try:
        rc = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        rc = int(exc.code or 0)
    err = capsys.readouterr().err
    return one_line(subprocess.CompletedProcess(args, rc, "", err))


def committed_chunks_valid(out: Path) -> int:
    """Every committed chunk file (listed in the manifest, or renamed into place after its last save) re-reads
    with the checksum it was committed with; returns how many there are."""
    from gansim.produce.plan import Plan
    from gansim.produce.shards import chunk_attrs

    m = json.loads((out / "manifest.json").read_text())
    plan = Plan.from_dict(m["plan"])
    files = sorted(out.glob("chunks/*/chunk_*.h5"))
    for path in files:
        k = int(path.stem.split("_")[1])
        sha = m["chunks"][str(k)]["sha256"] if str(k) in m["chunks"] else chunk_attrs(path)["sha256"]
        assert chunk_checksum(out, plan, k) == (plan.chunk_events(k), sha)
    assert set(m["chunks"]) <= {str(int(p.stem.split("_")[1])) for p in files}
    return len(files)


# -- a failing MPI rank ends the whole job ------------------------------------------------------------------------

@pytest.mark.mpi
@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
@pytest.mark.parametrize(("spec", "message"), [
    ("raise:1:1", r"rank 1: chunk \d+: injected failure"),  # inside the chunk loop: agreed, clean stop
    pytest.param("crash:1", r"error on rank 1: injected crash.*aborting all ranks", marks=pytest.mark.slow),  # Abort
])
def test_one_failing_rank_ends_the_job(gen: Path, reference: Path, tmp_path: Path, spec: str, message: str) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(mpi_fault_cmd(2, spec, *cli(gen, out)), capture_output=True, text=True,
                          env=clean_env(OMP_NUM_THREADS="1", **MPI_VARS), cwd=REPO, timeout=120)
    assert proc.returncode != 0
    import re

    assert re.search(message, proc.stderr), proc.stderr[-3000:]
    assert committed_chunks_valid(out) >= 1
    # the same run (any rank count: here one, in this process) finishes with the reference bytes
    res = produce(make_run(gen, out, events=N, chunk_size=C, batch_size=256, seed=2, progress=False))
    assert res["made"] < N and chunk_sums(out) == chunk_sums(reference)  # committed chunks were kept


# -- full disk and a dying writer ------------------------------------------------------------------------------------

@pytest.fixture
def tiny_tmpfs(tmp_path: Path):  # type: ignore[no-untyped-def]
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not permitted'})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_ends_quickly_and_resumes(gen: Path, reference: Path, tiny_tmpfs: Path) -> None:
    out = tiny_tmpfs / "prod"
    proc = gansim(*cli(gen, out, "--compression", "none"), timeout=120)  # 3000 x 2 KB = 6 MB > 2 MB
    line = one_line(proc)
    assert "No space left on device" in line and "rerun the same command" in line, line
    assert 1 <= committed_chunks_valid(out) < N // C
    assert not list(out.glob("chunks/*/.*.tmp"))  # no half-written file left behind
    subprocess.run(["mount", "-o", "remount,size=64m", str(tiny_tmpfs)], check=True)
    proc = gansim(*cli(gen, out, "--compression", "none"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert deep_verify(out)["chunks_verified"] == N // C


@pytest.mark.parametrize("event", ["commit", "before_rename"])
def test_any_writer_exception_is_reported_not_hung(gen: Path, tmp_path: Path, event: str) -> None:
    """h5py raises RuntimeError (errno 28) when a file on a full disk is closed: the writer reports it as one line."""
    def hook(ev: str, **info: object) -> None:
        if ev == event and info["chunk"] == 2:
            raise RuntimeError("Can't decrement id ref count (unable to close file, errno = 28, error message = "
                               "'No space left on device')")

    hooks.HOOKS.append(hook)
    out = tmp_path / "run"
    try:
        with pytest.raises(GansimError, match=r"cannot write chunk 2 .*No space left on device.*chunks committed"):
            produce(make_run(gen, out, events=N, chunk_size=C, batch_size=256, seed=2, progress=False))
    finally:
        hooks.HOOKS.clear()
    assert committed_chunks_valid(out) == 2 and not list(out.glob("chunks/*/.*.tmp"))


# -- bad input: one clear line, quickly ----------------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["not json", "missing plan field", "chunk events a string", "plan not a mapping",
                                    "no environment", "old format"])
def test_corrupted_manifest_gives_one_line(gen: Path, reference: Path, tmp_path: Path, damage: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    m = json.loads((out / "manifest.json").read_text())
    if damage == "missing plan field":
        del m["plan"]["seed"]
    elif damage == "chunk events a string":
        m["chunks"]["1"]["events"] = "500"
    elif damage == "plan not a mapping":
        m["plan"] = [1, 2]
    elif damage == "no environment":
        del m["environment"]
    elif damage == "old format":
        m["format"] = "gansim-production/1"
    (out / "manifest.json").write_text("{not json" if damage == "not json" else json.dumps(m))
    before = sorted(p.name for p in out.rglob("*"))
    for args in (cli(gen, out), ["inspect", str(out / "dataset.h5"), "--deep"]):
        line = main_line(capsys, *args)
        assert "manifest.json" in line and "--overwrite" in line, line
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing touched


@pytest.mark.parametrize(("args", "message"), [
    (["-n", "1e99"], "above the maximum"),
    (["-n", "1e99", "--dry-run"], "above the maximum"),
    (["-n", "1e15", "--chunk-size", "1", "--dry-run"], "more than 100,000,000; raise --chunk-size"),
    (["-n", "1e6", "--chunk-size", "1e99"], "--chunk-size"),
    (["-n", "1e6", "--precision", "bits:40"], "--precision"),
    (["-n", "1e6", "--seed", "-1"], "seed"),
])
def test_absurd_sizes_give_one_line(gen: Path, tmp_path: Path, args: list[str], message: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x"
    line = main_line(capsys, "produce", "-g", str(gen), "-o", str(out), *args)
    assert message in line, line
    assert not out.exists()


def test_full_disk_is_named_even_where_hdf5_hides_the_errno(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HDF5 reports a disk that fills while it allocates metadata as 'file write failed', without errno 28:
    the error line still says the disk is full when little space is left, and nothing else otherwise."""
    from collections import namedtuple

    from gansim import resources
    from gansim.produce import writer

    usage = namedtuple("usage", "total used free")
    exc = OSError("Unable to create dataset (file write failed)")
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda p: usage(3 << 20, 3 << 20, 4096))
    assert writer.error_cause(exc, tmp_path).startswith("No space left on device (4 KiB free; HDF5 said: ")
    assert "No space left on device" in writer.describe_error(exc, tmp_path, 3)
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda p: usage(1 << 40, 0, 1 << 39))
    assert writer.error_cause(exc, tmp_path) == "Unable to create dataset (file write failed)"
    assert writer.error_cause(OSError(28, "No space left on device"), tmp_path) == "No space left on device"
    assert writer.error_cause(PermissionError(13, "Permission denied"), tmp_path) == "Permission denied"
