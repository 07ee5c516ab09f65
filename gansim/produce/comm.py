"""MPI world for production: mpi4py COMM_WORLD under a launcher, a one-rank stand-in otherwise."""

from __future__ import annotations

import os
from typing import Any

# Environment variables that MPI launchers (Open MPI, MPICH/Hydra, PMIx, Slurm srun) set in every rank.
_LAUNCHER_VARS = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK", "MPI_LOCALNRANKS",
                  "HYDRA_CONTROL_FD", "MV2_COMM_WORLD_SIZE")


def launched_by_mpi() -> bool:
    """True when a launcher started us (so importing mpi4py.MPI joins a real world, not a singleton)."""
    if any(v in os.environ for v in _LAUNCHER_VARS):
        return True
    # srun without --mpi: SLURM_NTASKS > 1 means several tasks expect one world (needs PMI/PMIx support).
    return int(os.environ.get("SLURM_NTASKS", "1") or 1) > 1 and "SLURM_PROCID" in os.environ


class SerialComm:
    """The subset of mpi4py's Comm used here, for a single process without MPI."""

    rank = 0
    size = 1

    def Get_rank(self) -> int:  # noqa: N802 - mpi4py spelling
        return 0

    def Get_size(self) -> int:  # noqa: N802
        return 1

    def bcast(self, obj: Any, root: int = 0) -> Any:
        return obj

    def gather(self, obj: Any, root: int = 0) -> list[Any]:
        return [obj]

    def allgather(self, obj: Any) -> list[Any]:
        return [obj]

    def allreduce(self, obj: Any, op: Any = None) -> Any:
        return obj

    def Barrier(self) -> None:  # noqa: N802
        return None

    def barrier(self) -> None:
        return None

    def Abort(self, code: int = 1) -> None:  # noqa: N802
        raise SystemExit(code)


def world(require: bool = False) -> Any:
    """COMM_WORLD when launched by MPI, forced by GANSIM_MPI=1 or required (parallel HDF5), else a SerialComm."""
    force = os.environ.get("GANSIM_MPI", "").lower()
    if force in ("0", "no", "off") and not require:
        return SerialComm()
    if require or force in ("1", "yes", "on") or launched_by_mpi():
        try:
            from mpi4py import MPI
        except ImportError:
            if launched_by_mpi() and int(os.environ.get("OMPI_COMM_WORLD_SIZE", os.environ.get("PMI_SIZE", "1"))) > 1:
                from gansim.errors import GansimError

                raise GansimError("launched with several MPI ranks but mpi4py is not installed "
                                  "(pip install mpi4py)") from None
            return SerialComm()
        return MPI.COMM_WORLD
    return SerialComm()


def is_mpi(comm: Any) -> bool:
    return not isinstance(comm, SerialComm)
