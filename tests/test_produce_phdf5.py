"""--layout single with real parallel HDF5 (run in .venv-phdf5: `make test-phdf5`), under system mpiexec."""

from __future__ import annotations

import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from gansim.produce.run import make_run, produce
from gansim.produce.verify import deep_verify
from tests.produce_helpers import REPO, chunk_sums, make_generator, mpi_cmd, mpi_env, mpi_fault_cmd, mpiexec, read_all

pytestmark = [pytest.mark.phdf5, pytest.mark.mpi,
              pytest.mark.skipif(not h5py.get_config().mpi, reason="h5py without MPI (bash cluster/setup_phdf5.sh)"),
              pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")]


def args(gen: Path, out: Path, *extra: str) -> list[str]:
    return ["produce", "-g", str(gen), "--events", "3100", "--chunk-size", "500", "--batch-size", "256",
            "--seed", "3", "--out", str(out), "--no-progress", *extra]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("phdf5")
    gen = make_generator(tmp / "g.pt")
    ref = tmp / "shards"
    produce(make_run(gen, ref, events=3100, chunk_size=500, batch_size=256, seed=3,
                           progress=False, compression="none"))
    return gen, read_all(ref / "dataset.h5")


@pytest.mark.parametrize(("ranks", "compression"), [(2, "gzip"), (3, "none")])
def test_single_file_parallel_hdf5_matches_shards(setup: tuple[Path, dict[str, np.ndarray]], tmp_path: Path,
                                                  ranks: int, compression: str) -> None:
    gen, ref = setup
    out = tmp_path / f"single{ranks}"
    proc = subprocess.run(mpi_cmd(ranks, *args(gen, out, "--layout", "single", "--compression", compression)),
                          capture_output=True, text=True, env=mpi_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert sum(line.startswith("rank") for line in proc.stdout.splitlines()) == ranks
    with h5py.File(out / "dataset.h5", "r") as f:
        assert not f["layer_0"].is_virtual and f["layer_0"].shape == (3100, 3, 96)
        assert f["layer_0"].compression == (None if compression == "none" else compression)
    data = read_all(out / "dataset.h5")
    assert all(np.array_equal(data[k], ref[k]) for k in ref)
    assert deep_verify(out / "dataset.h5")["chunks_verified"] == 7
    # the same command again finds every chunk committed and makes nothing
    again = subprocess.run(mpi_cmd(ranks, *args(gen, out, "--layout", "single", "--compression", compression)),
                           capture_output=True, text=True, env=mpi_env(), timeout=300)
    assert again.returncode == 0 and "(0 made now" in again.stdout, again.stderr[-2000:]


def test_single_file_killed_mid_run_resumes_and_verifies(setup: tuple[Path, dict[str, np.ndarray]],
                                                         tmp_path: Path) -> None:
    gen, ref = setup
    out = tmp_path / "killed"
    cli = args(gen, out, "--layout", "single", "--compression", "gzip")
    # rank 1 is SIGKILLed as it starts its third chunk: rounds 1 and 2 are flushed and committed
    proc = subprocess.run(mpi_fault_cmd(2, "killchunk:1:2", *cli), capture_output=True, text=True,
                          env={**mpi_env(), "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=300)
    assert proc.returncode != 0 and (out / "dataset.h5").exists()
    again = subprocess.run(mpi_cmd(2, *cli), capture_output=True, text=True, env=mpi_env(), timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    data = read_all(out / "dataset.h5")
    assert all(np.array_equal(data[k], ref[k]) for k in ref)
    assert deep_verify(out / "dataset.h5")["chunks_verified"] == 7


def test_single_file_full_disk_keeps_commits_and_says_how_to_resume(setup: tuple[Path, dict[str, np.ndarray]],
                                                                    tmp_path: Path) -> None:
    import json
    import uuid

    gen, ref = setup
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        out = mnt / "prod"
        cli = args(gen, out, "--layout", "single", "--compression", "none")  # 3100 x 2 KB = 6.3 MB > 3 MB
        proc = subprocess.run(mpi_cmd(2, *cli), capture_output=True, text=True, env=mpi_env(), timeout=300)
        assert proc.returncode != 0
        assert "No space left on device" in proc.stderr and "rerun the same command" in proc.stderr, proc.stderr
        m = json.loads((out / "manifest.json").read_text())
        assert not m["complete"]
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        again = subprocess.run(mpi_cmd(2, *cli), capture_output=True, text=True, env=mpi_env(), timeout=300)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
        assert deep_verify(out / "dataset.h5")["chunks_verified"] == 7
        data = read_all(out / "dataset.h5")
        assert all(np.array_equal(data[k], ref[k]) for k in ref)
        assert chunk_sums(out)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
