"""Injection points for fault tests: production code calls fire(event, **info); nothing here reads the environment.

Tests append callables to HOOKS (in-process, or in a subprocess through a tiny wrapper that imports gansim.cli);
a hook may raise, kill the process, fill the disk... Events: "commit" (rank, chunk, written, tmp: a chunk file is
fully written under its temporary name, before close), "before_rename" (chunk, tmp: closed and synced),
"batch" (rank, chunk, offset: a micro-batch is about to be generated, main thread).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HOOKS: list[Callable[..., None]] = []


def fire(event: str, **info: Any) -> None:
    for hook in list(HOOKS):
        hook(event, **info)
