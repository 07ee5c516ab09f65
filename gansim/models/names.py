"""Registered model names and the data kind each one makes (light: no torch import, read by the config)."""

from __future__ import annotations

# name -> data kind (gansim.kinds). The builders live in gansim.models.registry; a test checks the two agree.
MODEL_KINDS: dict[str, str] = {"calogan": "calo", "calo-mlp": "calo", "lagan": "jets"}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_KINDS)
