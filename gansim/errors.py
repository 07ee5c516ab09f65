"""Exception types that the CLI turns into one clear error line and a non-zero exit."""

from __future__ import annotations


class GansimError(Exception):
    """A user-facing error: bad input, bad config, unusable file. Printed without a traceback."""


def brief(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception's first line (library messages run on for paragraphs), or its type."""
    raw = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)  # KeyError's str() is a repr
    text = (raw.strip().splitlines() or [""])[0]
    text = text.split(". ", 1)[0].rstrip(".")
    return (text[:limit] + "...") if len(text) > limit else (text or type(exc).__name__)
