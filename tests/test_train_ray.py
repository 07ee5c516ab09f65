"""Training through Ray Train (TorchTrainer, 2 gloo workers): fit, checkpoints, resume, worker failure, CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gansim.config import Config, load_config
from gansim.data.schema import write_calo
from gansim.train.checkpoint import STATE_FILE, latest_checkpoint, list_checkpoints, load_state

from .conftest import make_calo_arrays

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_session(ray_local):
    return ray_local


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    a = make_calo_arrays(200, seed=9)
    path = tmp_path_factory.mktemp("data") / "calo.h5"
    write_calo(path, a["energy"], a, a["overflow"], attrs={"particle": "eplus"})
    return path


def cfg_for(data: Path, out: Path, *overrides: str) -> Config:
    return load_config(ROOT / "configs/debug.yaml", [
        f"data.path={data}", f"run.out_dir={out}", "train.batch_size=16", "train.steps_per_epoch=2",
        "train.val_events=40", "train.workers=2", *overrides])


def test_fit_two_workers_then_resume(ray_session, data_file: Path, tmp_path: Path) -> None:
    from gansim.train.launch import fit

    result = fit(cfg_for(data_file, tmp_path, "train.epochs=1"), verbose=False)
    assert result.metrics["epoch"] == 1 and result.metrics["step"] == 2
    assert result.metrics["restored_epoch"] == -1
    assert result.metrics["samples_per_s"] > 0 and result.metrics["fidelity"] >= 0
    assert (tmp_path / "config.yaml").is_file() and (tmp_path / "tb").is_dir()
    assert {p.name for p in (tmp_path / "workers").iterdir()} == {"rank0.pid", "rank1.pid"}
    first = load_state(latest_checkpoint(tmp_path / "debug") / STATE_FILE)
    assert first["step"] == 2 and first["config"]["train"]["workers"] == 2
    # Same storage path and run name → Ray Train hands the latest checkpoint back: continue to epoch 2.
    result = fit(cfg_for(data_file, tmp_path, "train.epochs=2"), verbose=False)
    assert result.metrics["restored_epoch"] == 1 and result.metrics["epoch"] == 2 and result.metrics["step"] == 4
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint_epoch_000001", "checkpoint_epoch_000002"]
    # resume=False (--fresh) starts over.
    result = fit(cfg_for(data_file, tmp_path, "train.epochs=1"), resume=False, verbose=False)
    assert result.metrics["restored_epoch"] == -1 and result.metrics["step"] == 2
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint_epoch_000001"]


def test_fit_raises_on_divergence(ray_session, tmp_path: Path) -> None:
    """A run that keeps producing non-finite losses stops with a clear GansimError, not a silent 'done'."""
    import h5py
    import numpy as np

    from gansim.errors import GansimError
    from gansim.train.launch import fit

    a = make_calo_arrays(120, seed=3)
    nan = tmp_path / "nan.h5"
    with h5py.File(nan, "w") as f:  # NaN incident energies: written raw, past the writer's checks
        for k, v in a.items():
            f.create_dataset(k, data=np.full_like(v, np.nan) if k == "energy" else v)
    # refused before Ray starts: no run that would skip every step
    with pytest.raises(GansimError, match="training data rejected: .*'energy' contains NaN"):
        fit(cfg_for(nan, tmp_path / "run", "train.epochs=2"), verbose=False)
    huge = tmp_path / "huge.h5"
    with h5py.File(huge, "w") as f:  # valid by the contract, but the energy-scaled latents overflow float32
        for k, v in a.items():
            f.create_dataset(k, data=np.full_like(v, 3e38) if k == "energy" else v)
    with pytest.raises(GansimError, match="training diverged: 2 consecutive non-finite steps"):
        fit(cfg_for(huge, tmp_path / "run", "train.epochs=2", "train.max_nonfinite=2"), verbose=False)
    assert not list_checkpoints(tmp_path / "run")


@pytest.mark.slow
def test_killed_worker_restarts_from_checkpoint(ray_session, data_file: Path, tmp_path: Path) -> None:
    """os.kill a Ray worker mid-run: FailureConfig restarts the group from the last checkpoint and it finishes."""
    import threading

    from gansim.train.launch import fit

    cfg = cfg_for(data_file, tmp_path, "train.epochs=6", "train.steps_per_epoch=4", "train.max_failures=2",
                  "train.num_to_keep=10")
    killed: dict[str, int] = {}
    snapshot = tmp_path / "debug" / "checkpoint_manager_snapshot.json"

    def registered() -> int:
        # Checkpoints the Train controller has registered (a directory on disk alone may still be in flight).
        try:
            return len(json.loads(snapshot.read_text())["checkpoint_results"])
        except (OSError, ValueError, KeyError):
            return 0

    def killer() -> None:
        deadline = time.time() + 240
        while time.time() < deadline and registered() < 1:
            time.sleep(0.1)
        pid = int((tmp_path / "workers" / "rank1.pid").read_text())
        killed["pid"], killed["after"] = pid, registered()
        os.kill(pid, signal.SIGKILL)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    result = fit(cfg, verbose=False)
    t.join(timeout=5)
    assert "pid" in killed
    assert result.metrics["epoch"] == 6 and result.metrics["step"] == 24
    assert result.metrics["restored_epoch"] >= killed["after"] >= 1  # restarted from a checkpoint, not from 0
    assert int((tmp_path / "workers" / "rank1.pid").read_text()) != killed["pid"]  # a new worker process


@pytest.mark.slow
def test_cli_debug_config_two_workers(data_file: Path, tmp_path: Path) -> None:
    """The documented command, in its own process (its own local Ray), then export from the run directory."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "gansim.cli", "train", "--config", str(ROOT / "configs/debug.yaml"),
           "--workers", "2", "--data", str(data_file), "--out", str(tmp_path), "--set", "train.batch_size=16",
           "--set", "train.val_events=40"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "global batch 32" in r.stdout and "params" in r.stdout and "gloo on CPU" in r.stdout
    state = load_state(latest_checkpoint(tmp_path) / STATE_FILE)
    assert state["epoch"] == 2
    r = subprocess.run([sys.executable, "-m", "gansim.cli", "export", str(tmp_path), "--out",
                        str(tmp_path / "generator.pt")], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "EMA" in r.stdout, r.stderr
    assert (tmp_path / "generator.pt").is_file()
