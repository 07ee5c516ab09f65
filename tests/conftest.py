"""Shared pytest fixtures: small CaloGAN-format files and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gansim.data.schema import write_calo

# Keep BLAS/torch from oversubscribing the 2-core CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")


def make_calo_arrays(n: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """Random but contract-valid CaloGAN arrays (non-negative, finite)."""
    rng = np.random.default_rng(seed)
    energy = rng.uniform(1, 100, size=(n, 1)).astype(np.float32)
    layers = {
        "layer_0": rng.exponential(5.0, size=(n, 3, 96)).astype(np.float32) * (rng.random((n, 3, 96)) < 0.3),
        "layer_1": rng.exponential(50.0, size=(n, 12, 12)).astype(np.float32),
        "layer_2": rng.exponential(2.0, size=(n, 12, 6)).astype(np.float32) * (rng.random((n, 12, 6)) < 0.5),
    }
    overflow = rng.exponential(1.0, size=(n, 3)).astype(np.float32)
    return {"energy": energy, **layers, "overflow": overflow}


@pytest.fixture
def calo_file(tmp_path: Path) -> Path:
    arrays = make_calo_arrays()
    path = tmp_path / "calo.h5"
    write_calo(path, arrays["energy"], arrays, arrays["overflow"], attrs={"particle": "eplus"})
    return path


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run `gansim ...` as a real subprocess (exit code, stdout, stderr)."""
    return subprocess.run([sys.executable, "-m", "gansim.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture(scope="session")
def ray_local():
    """One small local Ray for every test that needs one (ray.init costs ~6 s and ~0.9 GiB on 2 cores):
    4 logical CPUs (tests run 2 DDP workers or 2 trials), a small object store, no dashboard, loopback only."""
    ray = pytest.importorskip("ray")
    os.environ.pop("RAY_ADDRESS", None)
    ray.init(num_cpus=4, num_gpus=0, object_store_memory=100 * 1024**2, include_dashboard=False,
             _node_ip_address="127.0.0.1", logging_level="warning", log_to_driver=False)
    yield ray
    ray.shutdown()
