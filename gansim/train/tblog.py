"""TensorBoard output of rank 0: scalars, shower/jet images on a shared log scale, feature histograms, hparams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gansim.kinds import DataKind

HIST_FEATURES = 8  # per-epoch histogram panels: the features with the largest separation power
# The same panels every epoch (a slider in TensorBoard shows one feature evolve): the shower shapes physicists
# look at first, and the jet observables; whichever the kind's features include.
KEY_FEATURES = ("E_tot_over_E_inc", "shower_depth", "depth_width", "frac_0", "frac_1", "frac_2",
                "mass", "pt", "tau_21", "n_pixels")


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

    def showers(self, reference: dict[str, np.ndarray], generated: dict[str, np.ndarray], kind: DataKind,
                step: int) -> None:
        """Average and first single event per key (reference above generated, one shared log colour scale per
        column with its colour bar), and histograms of the worst-matching features."""
        if self.writer is None or not reference or not all(np.isfinite(v).all() for v in generated.values()):
            return  # nothing to draw (or a non-finite generator: the fidelity score already says so)
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure

        keys = kind.image_keys()
        for what, reduce in (("average", lambda a: a.mean(axis=0)), ("single", lambda a: a[0])):
            fig = Figure(figsize=(3.4 * len(keys), 5.0))
            axes = fig.subplots(2, len(keys), squeeze=False)
            for j, k in enumerate(keys):
                imgs = [np.asarray(reduce(arr[k]), np.float64) for arr in (reference, generated)]
                pos = np.concatenate([i[i > 0] for i in imgs])
                norm = LogNorm(vmin=max(pos.min(), pos.max() * 1e-5), vmax=pos.max()) if pos.size else None
                for i, (label, img) in enumerate(zip(("data", "GAN"), imgs, strict=True)):
                    ax = axes[i][j]
                    im = ax.imshow(np.where(img > 0, img, np.nan), aspect="auto", cmap="viridis", norm=norm)
                    ax.set_title(f"{label} {k}", fontsize=8)
                    ax.set_xticks([])
                    ax.set_yticks([])
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02).ax.tick_params(labelsize=6)
            fig.tight_layout()
            self.writer.add_figure(f"showers/{what}", fig, step)
        self._histograms(reference, generated, kind, step)

    def _histograms(self, reference: dict[str, np.ndarray], generated: dict[str, np.ndarray], kind: DataKind,
                    step: int) -> None:
        from gansim.metrics.distances import separation_power
        from gansim.metrics.plots import HistItem, histogram_figure

        fr, fg = kind.features(reference), kind.features(generated)
        sep = {k: separation_power(fr[k], fg[k]) for k in fr}
        key = [k for k in KEY_FEATURES if k in fr] or list(fr)[:6]
        worst = sorted(sep, key=lambda k: -sep[k])[:HIST_FEATURES]
        assert self.writer is not None
        for tag, names, title in (("features/key", key, "key shower shapes / observables"),
                                  ("features/worst", worst, "largest separation power")):
            items = [HistItem(k, fr[k], fg[k], sep[k]) for k in names]
            self.writer.add_figure(tag, histogram_figure(items, f"{title}: reference vs generated"), step)

    def hparams(self, cfg: Any, metrics: dict[str, float]) -> None:
        """The run's hyperparameters with its final metrics (TensorBoard's HPARAMS tab)."""
        if self.writer is None:
            return
        flat: dict[str, Any] = {}
        d = cfg.to_dict()
        for section in ("model", "loss", "train"):
            for k, value in d[section].items():
                flat[f"{section}.{k}"] = value if isinstance(value, (int, float, str, bool)) else str(value)
        clean = {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}
        self.writer.add_hparams(flat, clean, run_name=".")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
