"""Per-chunk random streams: chunk k is seeded by SeedSequence([seed, k]) only, so ranks and restarts agree."""

from __future__ import annotations

import numpy as np
import torch


def chunk_streams(seed: int, k: int, device: str | torch.device = "cpu") -> tuple[np.random.Generator, torch.Generator]:
    """(numpy Generator for conditioning, torch Generator on `device` for latents) of chunk k.

    The two streams are independent children of SeedSequence([seed, k]); the torch generator lives on the
    inference device so latents are drawn where they are used (no host-to-device copy of z).
    """
    ss = np.random.SeedSequence([int(seed), int(k)])
    cond_ss, latent_ss = ss.spawn(2)
    rng = np.random.Generator(np.random.PCG64(cond_ss))
    tgen = torch.Generator(device=device)
    tgen.manual_seed(int(latent_ss.generate_state(1, dtype=np.uint64)[0] & ((1 << 63) - 1)))
    return rng, tgen
