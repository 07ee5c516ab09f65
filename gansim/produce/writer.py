"""The writer thread: owns every HDF5 call of a rank, appends compressed blocks in order, commits chunk files.

The main thread generates and hands over ("begin", k), ("block", k, row, future) and ("end", k) items; the pool
behind the futures has already compressed and hashed each block, so the writer only appends bytes
(write_direct_chunk) and renames finished files into place. Any exception in the writer (full disk, which h5py
raises as RuntimeError on close, permissions, a failed compression) is recorded as one line in `error`; the
writer then keeps consuming and discarding items, so the main thread can never block on a dead writer.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gansim.atomic import fsync_path
from gansim.produce import hooks
from gansim.produce.layout import chunk_relpath
from gansim.produce.plan import Plan
from gansim.produce.storage import combine, filter_kwargs, key_header, keys_for, storage_dtype
from gansim.resources import free_bytes

QUEUE_BLOCKS = 64  # blocks (~0.5 MB each for calo) queued in front of the writer: bounds memory, absorbs jitter


FULL_BELOW = 1 << 20  # bytes free under which a write HDF5 reports only as "file write failed" is a full disk


def error_cause(exc: BaseException, out_dir: Path) -> str:
    """What went wrong, in words: a full disk named as such even where HDF5 hides the errno (it reports
    "Unable to create dataset (file write failed)" when the disk fills while it allocates metadata)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    if getattr(exc, "errno", None) == 28 or "No space left" in str(exc) or "errno = 28" in str(exc):
        return "No space left on device"
    if "write failed" in str(exc) or isinstance(exc, OSError):
        _, free = free_bytes(out_dir)
        if free is not None and free < FULL_BELOW:
            return f"No space left on device ({free // 1024} KiB free; HDF5 said: {text})"
    return text


def describe_error(exc: BaseException, out_dir: Path, k: int | None) -> str:
    """One line for a failed chunk write (full disk, permissions, anything), saying how to continue."""
    text = error_cause(exc, out_dir)
    where = f"chunk {k}" if k is not None else "a chunk"
    return (f"cannot write {where} under {out_dir}: {text}; committed chunks are kept and valid - "
            "free space or fix the directory, then rerun the same command to resume")


class _OpenChunk:
    """A chunk file being written under a temporary name."""

    def __init__(self, out_dir: Path, plan: Plan, k: int) -> None:
        self.k, self.plan = k, plan
        self.final = out_dir / chunk_relpath(plan, k)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.final.parent / f".{self.final.name}.{os.getpid()}.tmp"
        n = plan.chunk_events(k)
        rows = min(plan.h5_rows, n)
        self.f = h5py.File(self.tmp, "w")
        self.ds: dict[str, Any] = {}
        self.headers: dict[str, bytes] = {}
        self.digests: dict[str, list[bytes]] = {}
        for key, shape in keys_for(plan.kind).items():
            dt = storage_dtype(key, plan.dtype)
            self.ds[key] = self.f.create_dataset(key, shape=(n, *shape), dtype=dt, chunks=(rows, *shape),
                                                 **filter_kwargs(plan.compression))
            self.headers[key] = key_header(key, (dt.str, (n, *shape)))
            self.digests[key] = []

    def append(self, row: int, block: dict[str, tuple[bytes | None, bytes, np.ndarray | None]]) -> None:
        for key, (stored, digest, raw) in block.items():
            ds = self.ds[key]
            if stored is not None:
                ds.id.write_direct_chunk((row, *([0] * (ds.ndim - 1))), stored)
            else:
                ds[row:row + len(raw)] = raw
            self.digests[key].append(digest)

    def commit(self, attrs: dict[str, Any]) -> tuple[str, int]:
        sha = combine(self.headers, self.digests)
        for name, v in {**attrs, "sha256": sha}.items():
            self.f.attrs[name] = v
        self.f.close()  # a full disk surfaces here (RuntimeError errno 28) as often as in the writes
        fsync_path(self.tmp)
        hooks.fire("before_rename", chunk=self.k, tmp=self.tmp)
        os.replace(self.tmp, self.final)
        fsync_path(self.final.parent)
        return sha, self.final.stat().st_size

    def discard(self) -> None:
        try:
            self.f.close()
        except Exception:  # noqa: BLE001 - closing a file on a full disk fails again; the temporary goes anyway
            pass
        self.tmp.unlink(missing_ok=True)


class ChunkWriter:
    """A bounded queue in front of one writer thread (or synchronous handling when overlap=False)."""

    def __init__(self, out_dir: Path, plan: Plan, rank: int, overlap: bool = True) -> None:
        self.out_dir, self.plan, self.rank = out_dir, plan, rank
        self.results: queue.Queue[dict[str, Any]] = queue.Queue()
        self.error: str | None = None
        self.written = 0
        self.write_seconds = 0.0
        self._open: _OpenChunk | None = None
        self._q: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=QUEUE_BLOCKS)
        self._thread = threading.Thread(target=self._loop, name="chunk-writer", daemon=True) if overlap else None
        if self._thread is not None:
            self._thread.start()

    def put(self, item: tuple[Any, ...]) -> None:
        """Hand an item over; never blocks on a writer that has died or failed."""
        if self._thread is None:
            self._handle(item)
            return
        while self.error is None and self._thread.is_alive():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def drain(self) -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(self.results.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> list[dict[str, Any]]:
        """Finish (an unfinished chunk is discarded, not committed) and return the remaining commits."""
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._q.put(None, timeout=0.2)
                    break
                except queue.Full:
                    continue
            self._thread.join()
        elif self._open is not None:
            self._open.discard()
        return self.drain()

    def _loop(self) -> None:
        while (item := self._q.get()) is not None:
            if self.error is None:
                self._handle(item)
        if self._open is not None:
            self._open.discard()
            self._open = None

    def _handle(self, item: tuple[Any, ...]) -> None:
        kind, k = item[0], item[1]
        t0 = time.perf_counter()
        try:
            if kind == "begin":
                self._open = _OpenChunk(self.out_dir, self.plan, k)
            elif kind == "block":
                assert self._open is not None and self._open.k == k
                self._open.append(item[2], item[3].result())
            else:
                self._end(k)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, report it as one line and stop writing
            self.error = describe_error(exc, self.out_dir, k)
            if self._open is not None:
                self._open.discard()
                self._open = None
        self.write_seconds += time.perf_counter() - t0

    def _end(self, k: int) -> None:
        assert self._open is not None and self._open.k == k
        start, stop = self.plan.chunk_range(k)
        hooks.fire("commit", rank=self.rank, chunk=k, written=self.written, tmp=self._open.tmp)
        attrs = {"chunk": k, "start": start, "events": stop - start, "plan_id": self.plan.plan_id()}
        sha, nbytes = self._open.commit(attrs)
        self._open = None
        self.written += 1
        self.results.put({"chunk": k, "events": stop - start, "sha256": sha, "bytes": nbytes, "rank": self.rank,
                          "file": chunk_relpath(self.plan, k)})
