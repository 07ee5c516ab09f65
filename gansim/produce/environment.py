"""What, besides the plan, decides the produced bytes: software versions and the hardware's kernels.

Generation runs every micro-batch of the plan's --batch-size with ONE intra-op thread (pool.py), so the number
of threads, cores, ranks and nodes never changes a bit. What still can: the torch build (kernels change between
versions), the CPU's vector ISA that torch dispatches to (AVX2 vs AVX-512 sum in a different order), the GPU
model and CUDA/cuDNN libraries, and numpy's random streams for the conditions. The manifest records these; a
resume (or a rank) whose values differ is refused, because its chunks would not match those already written.
"""

from __future__ import annotations

from typing import Any

# keys compared on resume and across ranks; the rest of environment() is recorded for information only
BYTE_KEYS = ("torch", "numpy_major", "device_type", "device_name", "cpu_capability", "cuda", "cudnn")


def environment(device: Any) -> dict[str, Any]:
    """The byte-relevant environment of this process for generation on `device` (a torch.device)."""
    import platform

    import numpy as np
    import torch

    env: dict[str, Any] = {
        "torch": torch.__version__,
        "numpy_major": np.__version__.split(".")[0],
        "device_type": device.type,
        "device_name": "cpu",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": "",
        "cudnn": "",
        "intra_op_threads": 1,  # fixed by the design, recorded so a reader of the manifest knows
        "machine": platform.machine(),
    }
    if device.type == "cuda":
        env["device_name"] = torch.cuda.get_device_name(device)
        env["cuda"] = str(torch.version.cuda or "")
        env["cudnn"] = str(torch.backends.cudnn.version() or "")
        env["cpu_capability"] = ""  # the CPU only draws latents' seeds and conditions (ISA-independent)
    return env


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'key: recorded -> current' for every byte-relevant key that differs."""
    return [f"{k}: {recorded.get(k)!r} -> {current.get(k)!r}" for k in BYTE_KEYS if recorded.get(k) != current.get(k)]


def refusal(where: str, diffs: list[str]) -> str:
    """The one-line message for an environment that would change the bytes."""
    return (f"{where} would produce different bytes than the chunks already written ({'; '.join(diffs)}); "
            "resume with the same torch build on the same kind of CPU/GPU, or start afresh with --overwrite "
            "(README: 'What makes the bytes identical')")
