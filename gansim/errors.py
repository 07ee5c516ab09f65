"""Exception types that the CLI turns into one clear error line and a non-zero exit."""

from __future__ import annotations


class GansimError(Exception):
    """A user-facing error: bad input, bad config, unusable file. Printed without a traceback."""
