"""gansim: distributed GAN fast simulation for calorimeter showers and jet images."""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# The Python API, imported on first use so that `import gansim` (and `gansim --help`) stays light.
_API = {
    "load_generator": "gansim.api",  # exported generator -> GeneratorArtifact (.generate(condition, seed))
    "simulate_showers": "gansim.api",  # the built-in calorimeter simulator -> dict of arrays
    "evaluate": "gansim.api",  # physics validation like `gansim evaluate` -> report dict
    "GeneratorArtifact": "gansim.api",
    "open_dataset": "gansim.produce",  # a production directory of any size, without HDF5's silent fill values
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), name)
        globals()[name] = value  # later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'gansim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
