"""TensorBoard output of rank 0: scalars, and per-layer images of average and single showers (or jet images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

CALO_LAYERS = ("layer_0", "layer_1", "layer_2")


class TBLogger:
    """Thin wrapper over torch.utils.tensorboard.SummaryWriter; a no-op object on ranks other than 0."""

    def __init__(self, logdir: str | Path | None) -> None:
        self.writer = None
        if logdir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(logdir))

    def scalars(self, values: dict[str, float], step: int, prefix: str = "") -> None:
        if self.writer is None:
            return
        for k, v in values.items():
            if v is not None and np.isfinite(v):
                self.writer.add_scalar(f"{prefix}{k}", float(v), step)

    def showers(self, reference: dict[str, np.ndarray], generated: dict[str, np.ndarray], kind: str,
                step: int) -> None:
        """Average and first single event per layer, data above generated, log10(1 + MeV) colour scale."""
        if self.writer is None or not reference:
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        keys = CALO_LAYERS if kind == "calo" else ("image",)
        for what, reduce in (("average", lambda a: a.mean(axis=0)), ("single", lambda a: a[0])):
            fig, axes = plt.subplots(2, len(keys), figsize=(3.2 * len(keys), 4.8), squeeze=False)
            for j, k in enumerate(keys):
                for i, (label, arr) in enumerate((("data", reference), ("GAN", generated))):
                    ax = axes[i][j]
                    ax.imshow(np.log10(1.0 + np.maximum(reduce(arr[k]), 0.0)), aspect="auto", cmap="viridis")
                    ax.set_title(f"{label} {k}", fontsize=8)
                    ax.set_xticks([])
                    ax.set_yticks([])
            fig.tight_layout()
            self.writer.add_figure(f"showers/{what}", fig, step)
            plt.close(fig)

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
