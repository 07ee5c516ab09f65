"""Memory and disk budgets: refuse work that cannot fit before it starts, saying the bound and how to split."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from gansim.errors import GansimError

# Keep a margin for the interpreter, torch and temporaries that the per-event estimates do not count.
MEMORY_FRACTION = 0.8


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # cgroup v2 writes "max" when unlimited


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_headroom() -> int | None:
    """What the process's memory cgroup (SLURM job, container) still allows, when it sets a limit."""
    v1 = "/sys/fs/cgroup/memory/memory."
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         (v1 + "limit_in_bytes", v1 + "usage_in_bytes")):
        lim, use = _read_int(limit), _read_int(usage)
        if lim is not None and use is not None and lim < 2**60:  # cgroup v1 says "unlimited" with a huge number
            return max(0, lim - use)
    return None


def available_memory() -> int | None:
    """Bytes this process can still allocate (MemAvailable, capped by a cgroup limit); None when unknown."""
    known = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    return min(known) if known else None


def human_bytes(n: float) -> str:
    """1.5 GB, 2.03 PB (decimal units)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} PB"


def count_text(n: int) -> str:
    """An event count for messages: 1,234,567 below 10^9, 1.23e+12 above."""
    return f"{n:,}" if n < 10**9 else f"{float(n):.3g}"


def check_memory(n_events: int, bytes_per_event: int, what: str, hint: str,
                 available: int | None = None) -> None:
    """GansimError when n_events x bytes_per_event exceeds MEMORY_FRACTION of the available memory.

    `what` names the work ("simulating 10^9 showers in memory"), `hint` how to stay within the bound.
    """
    avail = available_memory() if available is None else available
    if avail is None:
        return  # no way to know here (not Linux): the allocation itself will tell
    budget = int(avail * MEMORY_FRACTION)
    need = n_events * bytes_per_event
    if need > budget:
        most = budget // bytes_per_event
        raise GansimError(f"{what} needs about {human_bytes(need)} of memory ({bytes_per_event:,} bytes per event) "
                          f"but {human_bytes(avail)} is available here: at most {count_text(most)} events; {hint}")


def free_bytes(directory: str | Path) -> tuple[Path, int | None]:
    """The nearest existing directory at or above `directory` and its free bytes (None when unknowable)."""
    directory = Path(directory).absolute()
    while not directory.exists() and directory != directory.parent:
        directory = directory.parent
    try:
        return directory, shutil.disk_usage(directory).free
    except OSError:
        return directory, None


def check_disk(directory: str | Path, n_events: int, min_bytes_per_event: int, what: str) -> None:
    """GansimError when the file system of `directory` (or its nearest existing parent) cannot hold even the
    smallest possible output; the write itself reports the cases this lower bound lets through."""
    directory, free = free_bytes(directory)
    if free is None:
        return  # the write itself will report the problem
    need = n_events * min_bytes_per_event
    if need > free:
        raise GansimError(f"{what} needs at least {human_bytes(need)} on disk ({min_bytes_per_event} bytes per event "
                          f"after compression) but {directory} has {human_bytes(free)} free: at most "
                          f"{count_text(free // min_bytes_per_event)} events; free space or write elsewhere")


def cpus_available() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a SLURM allocation), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)
