"""gansim: distributed GAN fast simulation for calorimeter showers and jet images."""

from __future__ import annotations

__version__ = "0.1.0"
