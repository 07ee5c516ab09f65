"""Helpers for the production tests: tiny generator artefacts and dataset readers."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_generator(path: Path, kind: str = "calo", particle: str = "eplus") -> Path:
    """A tiny, randomly initialised generator artefact (seeded, so every test sees the same weights)."""
    import torch

    from gansim.config import load_config
    from gansim.models.artifact import save_generator
    from gansim.models.registry import build_generator

    if kind == "calo":
        over = ["model.latent_dim=8", "model.gen_channels=2", "model.attention=false", f"data.particle={particle}"]
    else:
        over = ["model.name=lagan", "data.particle=jets", "model.latent_dim=8",
                "model.gen_channels=2"]
    cfg = load_config(REPO / "configs" / "debug.yaml", over)
    torch.manual_seed(7)
    return save_generator(path, build_generator(cfg), cfg)


def read_all(dataset: Path) -> dict[str, np.ndarray]:
    with h5py.File(dataset, "r") as f:
        return {k: f[k][...] for k in f.keys()}


def chunk_sums(out: Path) -> dict[str, str]:
    m = json.loads((out / "manifest.json").read_text())
    return {k: v["sha256"] for k, v in m["chunks"].items()}


def mpiexec() -> str | None:
    """The mpiexec matching this interpreter's mpi4py: the venv's Open MPI wheel, else the system one."""
    here = Path(sys.executable).parent / "mpiexec"
    return str(here) if here.exists() else shutil.which("mpiexec")


def mpi_cmd(n: int, *args: str) -> list[str]:
    exe = mpiexec()
    assert exe is not None
    return [exe, "--oversubscribe", "-n", str(n), sys.executable, "-m", "gansim.cli", *args]


def mpi_env() -> dict[str, str]:
    return {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
            "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"}
