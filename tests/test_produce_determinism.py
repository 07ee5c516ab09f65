"""Bytes are a function of the plan alone: default thread counts, 1 vs 2 vs 3 MPI ranks, other --threads on resume,
and a resume in an environment that would change the bytes is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gansim.errors import GansimError
from gansim.produce.run import make_run, produce
from tests.produce_helpers import (
    MPI_VARS,
    REPO,
    chunk_sums,
    clean_env,
    fault_cmd,
    mpiexec,
    read_all,
)

EVENTS, CHUNK = 10007, 1000


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The debug CaloGAN (attention, locally connected layers) at batch 1024: on 2 cores its outputs differ in
    the last bits between 1 and 2 intra-op threads, which is what the old code mixed."""
    import torch

    from gansim.config import load_config
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    cfg = load_config(REPO / "configs" / "debug.yaml")
    torch.manual_seed(3)
    return save_generator(tmp_path_factory.mktemp("gen") / "debug.pt", build_generator(cfg), cfg)


def cli(gen: Path, out: Path, *extra: str) -> list[str]:
    return ["produce", "-g", str(gen), "--events", str(EVENTS), "--chunk-size", str(CHUNK), "--batch-size", "1024",
            "--seed", "7", "--out", str(out), "--no-progress", *extra]


def run_default_threads(n_ranks: int, gen: Path, out: Path, *extra: str) -> None:
    """One process (torch's default: all cores) or mpiexec -n N, OMP_NUM_THREADS/MKL_NUM_THREADS unset."""
    base = [sys.executable, "-m", "gansim.cli", *cli(gen, out, *extra)]
    cmd = base if n_ranks == 1 else [str(mpiexec()), "--oversubscribe", "-n", str(n_ranks), *base]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=clean_env(**MPI_VARS), cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-2500:]


@pytest.fixture(scope="module")
def one_rank(gen: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("one") / "run"
    run_default_threads(1, gen, out)
    return out


def same(a: Path, b: Path) -> bool:
    x, y = read_all(a / "dataset.h5"), read_all(b / "dataset.h5")
    return chunk_sums(a) == chunk_sums(b) and all(np.array_equal(x[k], y[k]) for k in y)


@pytest.mark.mpi
@pytest.mark.skipif(mpiexec() is None, reason="no mpiexec")
@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_with_default_threads_give_identical_bytes(one_rank: Path, gen: Path, tmp_path: Path,
                                                         ranks: int) -> None:
    run_default_threads(ranks, gen, tmp_path / "many")
    assert same(one_rank, tmp_path / "many")


def test_manifest_records_the_environment(one_rank: Path) -> None:
    import torch

    m = json.loads((one_rank / "manifest.json").read_text())
    env = m["environment"]
    assert env["torch"] == torch.__version__ and env["device_type"] == "cpu" and env["intra_op_threads"] == 1
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert m["plan"]["batch_size"] == 1024 and m["format"] == "gansim-production/2"


def test_resume_with_other_thread_count_is_identical(one_rank: Path, gen: Path, tmp_path: Path) -> None:
    out = tmp_path / "resumed"
    proc = subprocess.run(fault_cmd("kill:0:3", *cli(gen, out, "--threads", "1")), capture_output=True, text=True,
                          env=clean_env(), cwd=REPO, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    run_default_threads(1, gen, out, "--threads", "3")
    assert same(one_rank, out)


def test_resume_in_a_byte_changing_environment_is_refused(one_rank: Path, gen: Path, tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "moved"
    shutil.copytree(one_rank, out)
    m = json.loads((out / "manifest.json").read_text())
    del m["chunks"]["10"]  # unfinished: a resume would make chunk 10 here
    m["environment"]["cpu_capability"] = "AVX2" if m["environment"]["cpu_capability"] != "AVX2" else "AVX512"
    m["environment"]["torch"] = "2.99.0"
    (out / "manifest.json").write_text(json.dumps(m))
    (out / "chunks" / "00000" / "chunk_00000010.h5").unlink()
    run = make_run(gen, out, events=EVENTS, chunk_size=CHUNK, batch_size=1024, seed=7, progress=False)
    with pytest.raises(GansimError, match=r"would produce different bytes.*torch: '2.99.0' -> .*cpu_capability"):
        produce(run)
