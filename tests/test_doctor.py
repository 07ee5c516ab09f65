"""`gansim doctor` reports what the environment can run and how to install what is missing."""

from __future__ import annotations

import json

from gansim.cli import main


def test_doctor_reports_every_component(capsys) -> None:
    rc = main(["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)}
    for name in ("torch", "CUDA devices", "NCCL (multi-GPU DDP)", "ray", "optuna", "mpiexec", "mpi4py", "h5py",
                 "parallel HDF5 (--layout single)", "hdf5plugin (zstd, blosc)", "SLURM", "mplhep"):
        assert name in checks, name
    import torch

    assert checks["torch"]["found"].startswith(torch.__version__)
    assert (checks["CUDA devices"]["status"] == "ok") == torch.cuda.is_available()
    for c in checks.values():  # anything not fine says how to fix it
        assert c["status"] == "ok" or c["fix"], c
    assert rc == (1 if any(c["required"] and c["status"] == "missing" for c in checks.values()) else 0)


def test_doctor_text_ends_with_the_summary(capsys) -> None:
    main(["doctor"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("gansim doctor: done: gansim ") or lines[-1].startswith("gansim doctor: next: ")
