"""`gansim produce` under real mpiexec: byte-identical datasets for 1, 2, 3 ranks and after a killed rank."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from gansim.produce.run import make_run, produce
from tests.produce_helpers import REPO, chunk_sums, make_generator, mpi_cmd, mpi_env, mpi_fault_cmd, mpiexec, read_all

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")]


def args(gen: Path, out: Path, events: int, chunk: int) -> list[str]:
    return ["produce", "-g", str(gen), "--events", str(events), "--chunk-size", str(chunk), "--batch-size", "256",
            "--seed", "11", "--out", str(out), "--no-progress"]


def reference(gen: Path, out: Path, events: int, chunk: int) -> Path:
    produce(make_run(gen, out, events=events, chunk_size=chunk, batch_size=256, seed=11,
                           progress=False))
    return out


def same(a: Path, b: Path) -> bool:
    x, y = read_all(a / "dataset.h5"), read_all(b / "dataset.h5")
    return chunk_sums(a) == chunk_sums(b) and all(np.array_equal(x[k], y[k]) for k in y)


def run(n: int, *cli: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(mpi_cmd(n, *cli), capture_output=True, text=True, env=env or mpi_env(), timeout=240)


def test_three_ranks_equal_one_rank(tmp_path: Path) -> None:
    gen = make_generator(tmp_path / "g.pt")
    ref = reference(gen, tmp_path / "one", 5000, 700)
    proc = run(3, *args(gen, tmp_path / "three", 5000, 700))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert all(f"rank    {r}:" in proc.stdout for r in range(3)) and "total: 5,000 events in 8 chunks" in proc.stdout
    assert same(ref, tmp_path / "three")


def test_killed_rank_then_resume_with_two_ranks(tmp_path: Path) -> None:
    gen = make_generator(tmp_path / "g.pt")
    ref = reference(gen, tmp_path / "one", 5000, 700)
    out = tmp_path / "killed"
    # rank 1 SIGKILLs itself while committing its second chunk; the launcher then takes the job down
    proc = subprocess.run(mpi_fault_cmd(3, "kill:1:1", *args(gen, out, 5000, 700)), capture_output=True, text=True,
                          env={**mpi_env(), "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=240)
    assert proc.returncode != 0
    assert not (out / "dataset.h5").exists()
    left = sorted(int(p.stem.split("_")[1]) for p in (out / "chunks").glob("*/chunk_*.h5"))
    assert 1 <= len(left) < 8
    proc = run(2, *args(gen, out, 5000, 700))
    assert proc.returncode == 0, proc.stderr[-2000:]
    made = sum(int(line.split()[4].replace(",", "")) for line in proc.stdout.splitlines() if line.startswith("rank"))
    assert made == 5000 - sum(100 if k == 7 else 700 for k in left)  # only the missing chunks were made
    assert same(ref, out)


@pytest.mark.slow
def test_issue_done_criterion_100k_events_three_ranks(tmp_path: Path) -> None:
    gen = make_generator(tmp_path / "g.pt")
    ref = reference(gen, tmp_path / "one", 100_000, 30_000)
    proc = run(3, *args(gen, tmp_path / "three", 100_000, 30_000))
    assert proc.returncode == 0, proc.stderr[-2000:]
    import h5py

    with h5py.File(tmp_path / "three" / "dataset.h5", "r") as f:
        assert f["layer_0"].shape == (100_000, 3, 96) and f["energy"].shape == (100_000, 1)
    assert same(ref, tmp_path / "three")
