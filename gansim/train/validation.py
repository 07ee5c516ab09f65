"""Per-epoch physics check: generate showers/jets for the held-out conditions and score them against the data."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from gansim.models.registry import DATA_SCALE

CALO_LAYERS = ("layer_0", "layer_1", "layer_2")


def reference_sample(arrays: dict[str, np.ndarray], n: int, seed: int) -> dict[str, np.ndarray]:
    """A fixed (seeded) subset of the validation events, the same every epoch."""
    key = "energy" if "energy" in arrays else "image"
    total = len(arrays[key])
    if n <= 0 or total == 0:
        return {}
    idx = np.sort(np.random.default_rng(seed).permutation(total)[: min(n, total)])
    return {k: np.asarray(v[idx]) for k, v in arrays.items()}


@torch.no_grad()
def generate_like(generator: nn.Module, reference: dict[str, np.ndarray], kind: str, latent_dim: int, seed: int,
                  device: torch.device, batch_size: int = 512) -> dict[str, np.ndarray]:
    """Generated events with the reference's conditions (energies or labels), in file units."""
    was_training = generator.training
    generator.eval()
    cond_np = reference["energy"].reshape(-1, 1) if kind == "calo" else reference["signal"].reshape(-1)
    g = torch.Generator().manual_seed(seed)
    chunks: dict[str, list[np.ndarray]] = {}
    try:
        for start in range(0, len(cond_np), batch_size):
            cond = torch.as_tensor(cond_np[start:start + batch_size], dtype=torch.float32)
            z = torch.randn(len(cond), latent_dim, generator=g)
            out = generator(z.to(device), cond.to(device))
            parts = out if isinstance(out, dict) else {"image": out}
            for k, v in parts.items():
                chunks.setdefault(k, []).append((v.float() / DATA_SCALE[kind]).cpu().numpy())
    finally:
        generator.train(was_training)
    gen = {k: np.concatenate(v).astype(np.float32) for k, v in chunks.items()}
    if kind == "calo":
        gen["energy"] = reference["energy"].reshape(-1, 1).astype(np.float32)
        gen["overflow"] = np.zeros((len(cond_np), 3), np.float32)
    else:
        gen["signal"] = reference["signal"].reshape(-1)
    return gen


def physics_check(generator: nn.Module, reference: dict[str, np.ndarray], kind: str, latent_dim: int, seed: int,
                  device: torch.device) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(gansim.metrics.score.physics_summary numbers incl. 'fidelity', generated arrays for images)."""
    from gansim.metrics.score import physics_summary

    gen = generate_like(generator, reference, kind, latent_dim, seed, device)
    return physics_summary(reference, gen, kind=kind), gen
