"""One aggregated progress bar on rank 0: other ranks send event counts and chunk commits as non-blocking messages."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from gansim.progress import bar

TAG_PROGRESS, TAG_COMMIT, TAG_DONE, TAG_STOP = 101, 102, 103, 104
SEND_EVERY_S = 0.5  # a rank reports its event count at most this often: O(ranks / 0.5 s) messages to rank 0


class Progress:
    """Rank 0 owns the bar and the commit log; other ranks report to it. Only the main thread calls MPI here."""

    def __init__(self, comm: Any, mpi: bool, total: int, initial: int,
                 on_commit: Callable[[dict[str, Any]], None], show: bool = True) -> None:
        self.comm, self.mpi, self.rank, self.size = comm, mpi, comm.Get_rank(), comm.Get_size()
        self.on_commit = on_commit
        self.pending = 0
        self.last_send = time.monotonic()
        self.requests: list[Any] = []
        self.done_ranks: dict[int, dict[str, Any]] = {}
        self.stop_reason: str | None = None
        self.bytes = 0
        self.t0 = time.monotonic()
        self.bar = None
        if self.rank == 0 and show:
            self.bar = bar(total=total, initial=initial, unit="ev", unit_scale=True, desc="produce", file=sys.stderr)

    # -- every rank -------------------------------------------------------------------------------------------
    def events(self, n: int) -> None:
        """n more events generated on this rank."""
        if self.rank == 0:
            if self.bar is not None:
                self.bar.update(n)
        else:
            self.pending += n
            if time.monotonic() - self.last_send >= SEND_EVERY_S:
                self._send(self.pending, TAG_PROGRESS)
                self.pending = 0
                self.last_send = time.monotonic()
        self.poll()

    def commit(self, info: dict[str, Any]) -> None:
        """A chunk of this rank is durably on disk."""
        if self.rank == 0:
            self._committed(info)
        else:
            self._send(info, TAG_COMMIT)

    def poll(self) -> None:
        if not self.mpi:
            return
        from mpi4py import MPI

        self.requests = [r for r in self.requests if not r.Test()]
        if self.rank != 0:
            if self.comm.Iprobe(source=0, tag=TAG_STOP):
                self.stop_reason = self.comm.recv(source=0, tag=TAG_STOP)
            return
        status = MPI.Status()
        while self.comm.Iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            self._dispatch(self.comm.recv(source=status.Get_source(), tag=status.Get_tag()), status)

    def finish(self, totals: dict[str, Any]) -> list[dict[str, Any]]:
        """Report this rank's totals; rank 0 waits for every rank (processing their commits) and returns all."""
        if self.rank != 0:
            if self.pending:
                self._send(self.pending, TAG_PROGRESS)
            for r in self.requests:
                r.Wait()
            self.comm.send(totals, dest=0, tag=TAG_DONE)
            return []
        self.done_ranks[0] = totals
        if self.mpi:
            from mpi4py import MPI

            status = MPI.Status()
            while len(self.done_ranks) < self.size:
                obj = self.comm.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
                self._dispatch(obj, status)
        if self.bar is not None:
            self.bar.close()
        return [self.done_ranks[r] for r in sorted(self.done_ranks)]

    def stop_all(self, reason: str) -> None:
        """Rank 0: tell every other rank to stop after its current chunk (e.g. another rank hit a full disk)."""
        if self.mpi and self.rank == 0 and self.stop_reason is None:
            for r in range(1, self.size):
                self.requests.append(self.comm.isend(reason, dest=r, tag=TAG_STOP))
        self.stop_reason = self.stop_reason or reason

    # -- internals ---------------------------------------------------------------------------------------------
    def _send(self, obj: Any, tag: int) -> None:
        if self.mpi:
            self.requests.append(self.comm.isend(obj, dest=0, tag=tag))

    def _dispatch(self, obj: Any, status: Any) -> None:
        tag, src = status.Get_tag(), status.Get_source()
        if tag == TAG_PROGRESS and self.bar is not None:
            self.bar.update(int(obj))
        elif tag == TAG_COMMIT:
            self._committed(obj)
        elif tag == TAG_DONE:
            self.done_ranks[src] = obj
            if obj.get("error"):
                self.stop_all(f"rank {src}: {obj['error']}")

    def _committed(self, info: dict[str, Any]) -> None:
        self.bytes += int(info.get("bytes", 0))
        self.on_commit(info)
        if self.bar is not None:
            dt = max(time.monotonic() - self.t0, 1e-9)
            self.bar.set_postfix_str(f"{self.bytes / dt / 1e6:.1f} MB/s", refresh=False)
