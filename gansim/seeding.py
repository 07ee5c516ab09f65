"""The one seeding rule: every random stream is SeedSequence([seed, purpose, index...]).

A stream is named by the run's seed, a fixed purpose code, and the indices that make it unique (training step
and phase, production chunk, latent block, simulator block...). Streams of different purposes or indices are
statistically independent, and a stream never depends on how the work is split over ranks, threads or restarts.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np

from gansim.errors import GansimError

if TYPE_CHECKING:
    import torch

SEED_MAX = 2**63  # seeds are 0 <= seed < 2^63 (fits int64 everywhere: torch, HDF5 attributes, JSON readers)


class Purpose(IntEnum):
    """What a stream is for. Codes are part of every stream's identity: never renumber them."""

    INIT = 1  # model weight initialisation
    SPLIT = 2  # train/validation split of a file
    SHUFFLE = 3  # data order (DistributedSampler epochs)
    TRAIN_LATENT = 4  # latents of a training step: (step, phase)
    PENALTY = 5  # gradient-penalty interpolation weights: (step, phase)
    DROPOUT = 6  # global torch RNG per (epoch, rank): dropout and friends
    VALIDATE = 7  # latents of the per-epoch physics check
    GENERATE = 8  # latents of events generated for evaluation / production: (latent block)
    CONDITION = 9  # conditions (energies, labels) of a production chunk: (chunk)
    CLASSIFIER = 10  # two-sample classifier: subsampling, split, init
    SIMULATE = 11  # built-in simulator: (particle, event block)
    STATISTICS = 12  # subsample used to fit data statistics (preprocessing)


def check_seed(seed: int, what: str = "--seed") -> int:
    """The seed as an int in [0, 2^63), or a GansimError naming the option."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise GansimError(f"{what}: expected a whole number, got {seed!r}")
    if not 0 <= int(seed) < SEED_MAX:
        raise GansimError(f"{what}: must satisfy 0 <= seed < 2^63, got {seed}")
    return int(seed)


def seed_sequence(seed: int, purpose: Purpose, *index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), int(purpose), *(int(i) for i in index)])


def numpy_rng(seed: int, purpose: Purpose, *index: int) -> np.random.Generator:
    """A numpy Generator (PCG64) for the stream."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, purpose, *index)))


def int_seed(seed: int, purpose: Purpose, *index: int) -> int:
    """A 63-bit integer seed for libraries that take one (torch.manual_seed, torch.Generator)."""
    return int(seed_sequence(seed, purpose, *index).generate_state(1, np.uint64)[0] & np.uint64(SEED_MAX - 1))


def torch_generator(seed: int, purpose: Purpose, *index: int, device: str | torch.device = "cpu"
                    ) -> torch.Generator:
    """A torch Generator on `device` seeded from the stream (CPU and CUDA draw different numbers)."""
    import torch

    return torch.Generator(device=device).manual_seed(int_seed(seed, purpose, *index))
