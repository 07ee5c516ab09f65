"""Background chunk writer: compresses and commits chunk k while the main thread generates chunk k+1."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from gansim.produce.plan import Plan, chunk_filename
from gansim.produce.shards import CHUNK_DIR, write_chunk_file
from gansim.produce.storage import checksum


def describe_os_error(exc: OSError, out_dir: Path, k: int) -> str:
    """One line for a failed chunk write (full disk, permissions), saying how to continue."""
    text = exc.strerror or str(exc).splitlines()[0]
    if "No space left" in str(exc) or getattr(exc, "errno", None) == 28:
        text = "No space left on device"
    return (f"cannot write chunk {k} to {out_dir / CHUNK_DIR}: {text}; committed chunks are kept and valid - "
            "free space or fix the directory, then rerun the same command to resume")


def _fault_hook(rank: int, written: int, tmp_dir: Path) -> None:
    """Test-only crash injection: GANSIM_FAULT=kill:RANK:N SIGKILLs rank RANK while writing its (N+1)-th chunk."""
    spec = os.environ.get("GANSIM_FAULT", "")
    if not spec.startswith("kill:"):
        return
    _, r, n = spec.split(":")
    if int(r) == rank and int(n) == written:
        (tmp_dir / f".{chunk_filename(999999)}.{os.getpid()}.tmp").write_bytes(b"half-written")
        os.kill(os.getpid(), signal.SIGKILL)


class ChunkWriter:
    """Queue of depth 1 in front of one writer thread (or synchronous writes when overlap=False)."""

    def __init__(self, out_dir: Path, plan: Plan, rank: int, overlap: bool = True) -> None:
        self.out_dir, self.plan, self.rank, self.overlap = out_dir, plan, rank, overlap
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()
        self.error: str | None = None
        self.written = 0
        self.write_seconds = 0.0
        self._q: queue.Queue[tuple[int, dict[str, np.ndarray]] | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._loop, name="chunk-writer", daemon=True) if overlap else None
        if self._thread is not None:
            self._thread.start()

    def submit(self, k: int, arrays: dict[str, np.ndarray]) -> None:
        if self._thread is None:
            self._write(k, arrays)
        else:
            self._q.put((k, arrays))

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> list[dict[str, Any]]:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join()
        return self.drain()

    def _loop(self) -> None:
        while (item := self._q.get()) is not None:
            if self.error is None:
                self._write(*item)

    def _write(self, k: int, arrays: dict[str, np.ndarray]) -> None:
        t0 = time.perf_counter()
        start, stop = self.plan.chunk_range(k)
        sha = checksum(arrays)
        attrs = {"chunk": k, "start": start, "events": stop - start, "sha256": sha, "plan_id": self.plan.plan_id()}
        _fault_hook(self.rank, self.written, self.out_dir / CHUNK_DIR)
        try:
            path, nbytes = write_chunk_file(self.out_dir, k, arrays, self.plan, attrs)
        except OSError as exc:
            self.error = describe_os_error(exc, self.out_dir, k)
            return
        self.written += 1
        self.write_seconds += time.perf_counter() - t0
        self.results.put({"chunk": k, "events": stop - start, "sha256": sha, "bytes": nbytes, "rank": self.rank,
                          "file": f"{CHUNK_DIR}/{path.name}"})
