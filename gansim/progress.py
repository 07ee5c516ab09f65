"""Progress reporting for every command: a tqdm bar on a terminal, a plain status line every N seconds otherwise.

One switch for all commands: `gansim --progress {auto,bar,lines,off} COMMAND ...` (or GANSIM_PROGRESS). auto
draws bars only when the stream is a terminal; batch logs (SLURM output files, Ray workers) get one readable
line per GANSIM_PROGRESS_INTERVAL seconds (default 30) and a final line, never cursor codes or redraws.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any, TextIO

MODES = ("auto", "bar", "lines", "off")
ENV_MODE, ENV_INTERVAL = "GANSIM_PROGRESS", "GANSIM_PROGRESS_INTERVAL"


def mode() -> str:
    m = os.environ.get(ENV_MODE, "auto").strip().lower()
    return m if m in MODES else "auto"


def set_mode(value: str) -> None:
    """Set the mode for this process and the processes it starts (Ray workers, MPI ranks inherit it)."""
    os.environ[ENV_MODE] = value


def interval() -> float:
    try:
        return max(1.0, float(os.environ.get(ENV_INTERVAL, "30")))
    except ValueError:
        return 30.0


def finish(command: str, summary: str, next_command: str | None = None) -> None:
    """The last lines of every command, in one style: `gansim CMD: done: ...` and `gansim CMD: next: ...`."""
    print(f"gansim {command}: done: {summary}", flush=True)
    if next_command:
        print(f"gansim {command}: next: {next_command}", flush=True)


def _fmt_time(s: float) -> str:
    s = int(max(s, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:d}:{s % 60:02d}"


class LineProgress:
    """tqdm's small API (update, set_postfix, set_postfix_str, write, close, n, total) as periodic plain lines."""

    def __init__(self, total: int | None, desc: str, unit: str, initial: int = 0, file: TextIO | None = None,
                 every: float | None = None, unit_scale: bool = False, **_: Any) -> None:
        self.total, self.desc, self.unit, self.n = total, desc, unit, initial
        self.file = file or sys.stderr
        self.every = interval() if every is None else every
        self.unit_scale = unit_scale
        self.t0 = self.last = time.monotonic()
        self.start_n = initial
        self.postfix = ""
        self.shown: tuple[int, str] | None = None
        self.closed = False

    def _count(self, v: float) -> str:
        if self.unit_scale and v >= 1e4:
            for div, suf in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
                if v >= div:
                    return f"{v / div:.2f}{suf}"
        return f"{int(v):,}"

    def line(self) -> str:
        dt = max(time.monotonic() - self.t0, 1e-9)
        rate = (self.n - self.start_n) / dt
        parts = [f"{self.desc}: {self._count(self.n)}"]
        if self.total:
            parts[0] += f"/{self._count(self.total)} {self.unit} ({100.0 * self.n / self.total:.0f}%)"
            eta = (self.total - self.n) / rate if rate > 0 else float("inf")
            parts.append(f"{rate:,.1f} {self.unit}/s, elapsed {_fmt_time(dt)}"
                         + (f", left {_fmt_time(eta)}" if eta != float("inf") else ""))
        else:
            parts[0] += f" {self.unit}"
            parts.append(f"{rate:,.1f} {self.unit}/s, elapsed {_fmt_time(dt)}")
        if self.postfix:
            parts.append(self.postfix)
        return "  ".join(parts)

    def _emit(self) -> None:
        print(self.line(), file=self.file, flush=True)
        self.last = time.monotonic()
        self.shown = (self.n, self.postfix)

    def update(self, n: int = 1) -> None:
        self.n += n
        if time.monotonic() - self.last >= self.every:
            self._emit()

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self.postfix = ", ".join(f"{k} {v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def refresh(self) -> None:
        pass

    def write(self, s: str, file: TextIO | None = None) -> None:
        print(s, file=file or sys.stdout, flush=True)

    def close(self) -> None:
        if not self.closed and self.n > self.start_n and self.shown != (self.n, self.postfix):
            self._emit()  # the final state, unless the last status line already said it
        self.closed = True


class _Silent(LineProgress):
    def _emit(self) -> None:
        self.last = time.monotonic()


def bar(total: int | None = None, desc: str = "", unit: str = "it", initial: int = 0, file: TextIO | None = None,
        enabled: bool = True, leave: bool = True, unit_scale: bool = False) -> Any:
    """A progress reporter for the current mode: tqdm on a terminal, LineProgress otherwise, silent when off
    (or enabled=False, e.g. a command's --quiet); in a Ray worker with a relay, the driver draws it."""
    stream = file or sys.stderr
    m = mode()
    if _RELAY is not None and enabled:
        return RelayProgress(_RELAY, total, desc, unit, initial)
    if not enabled or m == "off":
        return _Silent(total, desc, unit, initial, stream)
    tty = hasattr(stream, "isatty") and stream.isatty()
    if m == "bar" or (m == "auto" and tty):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc, unit=unit, file=stream, dynamic_ncols=True,
                    mininterval=0.5, leave=leave, unit_scale=unit_scale)
    return LineProgress(total, desc, unit, initial, stream, unit_scale=unit_scale)


# -- progress of Ray Train workers, drawn by the driver ----------------------------------------------------------
# A Ray worker's stdout/stderr is not the user's terminal: forwarded by Ray (log_to_driver) it arrives prefixed,
# coloured and interleaved with Ray's own noise. gansim starts Ray with log_to_driver=False instead, and the
# training bar of rank 0 relays its updates and epoch lines through a Ray queue to the driver, which draws them
# with bar() like any other command: a bar on a terminal, status lines in a batch log.
_RELAY: Any = None  # the driver's queue, in a Ray worker whose driver draws its progress (install_relay)


def install_relay(queue: Any) -> None:
    """In a Ray worker: bar() relays to the driver through `queue` (None: draw locally again)."""
    global _RELAY
    _RELAY = queue


def _relay(queue: Any, message: tuple[Any, ...]) -> bool:
    """Put one message on the driver's queue; False when it is full or gone (that must never stop training)."""
    try:
        queue.put_nowait(message)
        return True
    except Exception:  # noqa: BLE001 - a full or vanished relay (driver gone) must not fail the run
        return False


def say(line: str, err: bool = False) -> None:
    """One status line from training code: relayed to the driver in a Ray worker (whose own stdout nobody
    reads, see above), printed otherwise (also when the relay is gone)."""
    if _RELAY is None or not _relay(_RELAY, ("write", line)):
        print(line, file=sys.stderr if err else sys.stdout, flush=True)


class RelayProgress:
    """tqdm's small API, forwarded to the driver's ConsoleRelay; a lost message never stops training."""

    def __init__(self, queue: Any, total: int | None, desc: str, unit: str, initial: int) -> None:
        self.queue, self.total, self.n = queue, total, initial
        self._send(("open", total, desc, unit, initial))

    def _send(self, message: tuple[Any, ...]) -> None:
        _relay(self.queue, message)

    def update(self, n: int = 1) -> None:
        self.n += n
        self._send(("update", n))

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        items = dict(ordered_dict or {}, **kwargs)
        self._send(("postfix", ", ".join(f"{k} {v}" for k, v in items.items())))

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._send(("postfix", s))

    def refresh(self) -> None:
        pass

    def write(self, s: str, file: TextIO | None = None) -> None:
        self._send(("write", s))

    def close(self) -> None:
        self._send(("close",))


class ConsoleRelay:
    """Driver side: a Ray queue (an actor holding no CPU) that workers' RelayProgress writes to, drained by a
    thread that draws it with this process's bar(). Use as a context manager around the Ray Train run."""

    POLL_S = 0.5

    def __init__(self) -> None:
        import threading

        self.queue: Any = None
        self._bar: Any = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="gansim-progress", daemon=True)

    def __enter__(self) -> ConsoleRelay:
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._close_bar()
        try:
            self.queue.shutdown()
        except Exception:  # noqa: BLE001 - Ray may already be down
            pass

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                message = self.queue.get(timeout=self.POLL_S)
            except Empty:
                if self._stop.is_set():
                    return
                continue
            except Exception:  # noqa: BLE001 - the queue actor is gone: nothing more will come
                return
            self.handle(message)

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def handle(self, message: tuple[Any, ...]) -> None:
        kind, args = message[0], message[1:]
        if kind == "open":  # also after a worker restart: a fresh bar from the restored position
            self._close_bar()
            total, desc, unit, initial = args
            self._bar = bar(total=total, desc=desc, unit=unit, initial=initial)
        elif kind == "write":
            if self._bar is not None:
                self._bar.write(args[0], file=sys.stdout)
            else:
                print(args[0], flush=True)
        elif kind == "close":
            self._close_bar()
        elif self._bar is not None and kind == "update":
            self._bar.update(args[0])
        elif self._bar is not None and kind == "postfix":
            self._bar.set_postfix_str(args[0], refresh=False)
