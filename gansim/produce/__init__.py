"""gansim.produce: mass production (plan, pool, writer, layout, manifest, verify) and `open_dataset` to read it."""

from gansim.produce.reader import open_dataset

__all__ = ["open_dataset"]
