"""LAGAN (arXiv:1701.05927): class-conditional locally-connected GAN for 25x25 jet images (pixel pT / 100 GeV)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gansim.models.layers import LocallyConnected2d, MinibatchDiscrimination, leaky

IMAGE = 25


def generator_widths(base: int) -> tuple[int, int, int]:
    """(dense channels, conv channels, LC channels); base 64 gives the paper's 128, 64, 6."""
    return max(1, 2 * base), max(1, base), max(1, base // 10)


def discriminator_widths(base: int) -> tuple[int, int]:
    """(conv channels, LC channels); base 64 gives the paper's 32, 8."""
    return max(1, base // 2), max(1, base // 8)


class JetGenerator(nn.Module):
    """G(z, label): z * embedding(label) -> dense 7x7 -> conv 5x5 -> up 14 -> LC 5x5 -> up 28 -> LC 3x3 -> LC 2x2."""

    def __init__(self, *, latent_dim: int, base: int = 64) -> None:
        super().__init__()
        c_dense, c_conv, c_lc = generator_widths(base)
        self.latent_dim, self.c_dense = latent_dim, c_dense
        self.embed = nn.Embedding(2, latent_dim)
        nn.init.xavier_normal_(self.embed.weight)
        self.dense = nn.Linear(latent_dim, c_dense * 7 * 7)
        self.body = nn.Sequential(
            nn.Conv2d(c_dense, c_conv, 5, padding=2), leaky(), nn.BatchNorm2d(c_conv),
            nn.Upsample(scale_factor=2),
            LocallyConnected2d(c_conv, c_lc, (14, 14), 5, padding=2), leaky(), nn.BatchNorm2d(c_lc),
            nn.Upsample(scale_factor=2),
            LocallyConnected2d(c_lc, c_lc, (28, 28), 3), leaky(),
            LocallyConnected2d(c_lc, 1, (26, 26), 2, bias=False),
        )

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        h = z * self.embed(label.reshape(-1).long())  # Hadamard product with the class embedding
        x = self.dense(h).view(z.shape[0], self.c_dense, 7, 7)
        return {"image": F.relu(self.body(x)).squeeze(1).contiguous()}


class JetDiscriminator(nn.Module):
    """D(image, label) -> (score logit, class logit): ACGAN critic, conv 5x5 + three LC blocks + avg-pool + MBD.

    Input: {"image": (B, 25, 25)}. The label is accepted for interface symmetry; as in ACGAN the critic predicts
    it (class_logit) instead.
    """

    def __init__(self, *, base: int = 64, batchnorm: bool = True, dropout: float = 0.2,
                 mbd_kernels: int = 10, mbd_dim: int = 10) -> None:
        super().__init__()
        c_conv, c_lc = discriminator_widths(base)

        def block(c: int) -> list[nn.Module]:
            return [leaky(), nn.BatchNorm2d(c) if batchnorm else nn.Identity(), nn.Dropout(dropout)]

        self.body = nn.Sequential(
            nn.Conv2d(1, c_conv, 5, padding=2), leaky(), nn.Dropout(dropout),
            LocallyConnected2d(c_conv, c_lc, (IMAGE, IMAGE), 5, stride=2, padding=2), *block(c_lc),  # -> 13
            LocallyConnected2d(c_lc, c_lc, (13, 13), 5, padding=2), *block(c_lc),  # -> 13
            LocallyConnected2d(c_lc, c_lc, (13, 13), 3, stride=2, padding=1), *block(c_lc),  # -> 7
            nn.AvgPool2d(2), nn.Flatten(),  # -> 3x3
        )
        n_feat = c_lc * 9
        self.mbd = MinibatchDiscrimination(n_feat, mbd_kernels, mbd_dim, squash=False) if mbd_kernels else None
        n_in = n_feat + (mbd_kernels if mbd_kernels else 0)
        self.score = nn.Linear(n_in, 1)
        self.aux = nn.Linear(n_in, 1)

    def forward(self, x: dict[str, torch.Tensor], label: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.body(x["image"].unsqueeze(1))
        if self.mbd is not None:
            feats = torch.cat([feats, self.mbd(feats)], dim=1)
        return self.score(feats).squeeze(1), self.aux(feats).squeeze(1)
