"""Console progress of a study: one progress reporter with trials done / running / failed and the best score."""

from __future__ import annotations

import math
import sys
from typing import Any

from ray.tune import Callback


class StudyProgress(Callback):
    """A Tune callback; it is pickled with the experiment, so the bar itself is never part of its state."""

    def __init__(self, total: int, metric: str, max_t: int, time_attr: str = "epoch", enabled: bool = True) -> None:
        self.total = total
        self.metric = metric
        self.max_t = max_t
        self.time_attr = time_attr
        self.enabled = enabled
        self._bar: Any = None
        self._last: tuple[Any, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_bar"] = None
        state["_last"] = ()
        return state

    def counts(self, trials: list[Any]) -> dict[str, Any]:
        status = [t.status for t in trials]
        best = math.inf
        for t in trials:  # best = what the table ranks first: a trial that ran all epochs, its last score
            last = t.last_result or {}
            done = t.status == "TERMINATED" and last.get(self.time_attr, 0) >= self.max_t
            value = last.get(self.metric) if done else None
            if value is not None and math.isfinite(value):
                best = min(best, value)
        return {"done": status.count("TERMINATED"), "running": status.count("RUNNING"),
                "failed": status.count("ERROR"), "best": best}

    def _update(self, trials: list[Any]) -> None:
        if not self.enabled:
            return
        c = self.counts(trials)
        key = (c["done"], c["running"], c["failed"], c["best"])
        if key == self._last:
            return
        self._last = key
        if self._bar is None:
            from gansim.progress import bar

            self._bar = bar(total=self.total, desc="tune", unit="trial", file=sys.stderr)
        self._bar.n = c["done"] + c["failed"]
        best = f"{c['best']:.4g}" if math.isfinite(c["best"]) else "-"
        self._bar.set_postfix_str(f"done {c['done']}  running {c['running']}  failed {c['failed']}  "
                                  f"best {self.metric} {best}", refresh=False)
        self._bar.refresh()

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        self._update(trials)

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        self._update(trials)
        if self._bar is not None:
            self._bar.close()
            self._bar = None
