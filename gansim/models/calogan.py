"""CaloGAN (arXiv:1705.02355): three LAGAN-style generator streams with layer-to-layer attention, and its critic."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gansim.kinds.calo import CALO, CALO_LAYERS, LAYER_SHAPES, N_CELLS
from gansim.models.layers import LocallyConnected2d, MinibatchDiscrimination, leaky, same_pad

__all__ = ["N_CELLS", "CaloDiscriminator", "CaloGenerator", "LayerStream", "pack_layers", "unpack_layers"]


def generator_widths(base: int) -> tuple[int, int, int]:
    """(dense channels, conv channels, LC channels); base 64 gives the paper's 36, 16, 6."""
    return max(1, base * 9 // 16), max(1, base // 4), max(1, base // 10)


def discriminator_widths(base: int) -> tuple[int, int, int, int]:
    """(conv, LC1, LC2, LC3) channels; base 64 gives the paper's 64, 16, 8, 8."""
    return max(1, base), max(1, base // 4), max(1, base // 8), max(1, base // 8)


def pack_layers(layers: dict[str, torch.Tensor]) -> torch.Tensor:
    """{"layer_0": (B,3,96), ...} -> (B, 504), e.g. to hand a flat tensor to gradient_penalty."""
    return CALO.flatten(layers, CALO_LAYERS)


def unpack_layers(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inverse of pack_layers: (B, 504) -> the layer dict (views, no copy)."""
    return CALO.unflatten(x)


class LayerStream(nn.Module):
    """One calorimeter layer: dense -> reshape (rows+2, cols+2) -> conv 2x2 -> LC 2x2 -> LC 2x2 (linear output)."""

    def __init__(self, latent_dim: int, rows: int, cols: int, base: int) -> None:
        super().__init__()
        c_dense, c_conv, c_lc = generator_widths(base)
        self.shape = (c_dense, rows + 2, cols + 2)
        self.dense = nn.Linear(latent_dim, c_dense * (rows + 2) * (cols + 2))
        self.body = nn.Sequential(
            same_pad(2), nn.Conv2d(c_dense, c_conv, 2), leaky(), nn.BatchNorm2d(c_conv),
            LocallyConnected2d(c_conv, c_lc, (rows + 2, cols + 2), 2), leaky(),
            LocallyConnected2d(c_lc, 1, (rows + 1, cols + 1), 2, bias=False),
        )
        nn.init.kaiming_uniform_(self.body[1].weight, nonlinearity="leaky_relu")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.body(self.dense(h).view(h.shape[0], *self.shape))  # (B, 1, rows, cols), pre-activation


class InpaintingAttention(nn.Module):
    """Per-pixel softmax mix of a layer's own stream and the (resized) previous layer: 3x3 conv -> 2 weights."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, primary: torch.Tensor, carry: torch.Tensor) -> torch.Tensor:
        x = torch.cat([primary, carry], dim=1)
        return (x * torch.softmax(self.conv(x), dim=1)).sum(1, keepdim=True)


def layer0_to_1(x: torch.Tensor) -> torch.Tensor:
    """(3, 96) -> (12, 12): repeat each row 4x, average groups of 8 columns (cells of 40 x 40 mm)."""
    return F.avg_pool2d(x.repeat_interleave(4, dim=2), (1, 8))


def layer1_to_2(x: torch.Tensor) -> torch.Tensor:
    """(12, 12) -> (12, 6): average column pairs (cells of 40 x 80 mm)."""
    return F.avg_pool2d(x, (1, 2))


class CaloGenerator(nn.Module):
    """G(z, E): z * E/100 feeds three streams; attention carries layer 0 -> 1 -> 2; ReLU gives energies in GeV."""

    def __init__(self, *, latent_dim: int, base: int = 64, attention: bool = True) -> None:
        super().__init__()
        self.latent_dim, self.attention = latent_dim, attention
        self.streams = nn.ModuleList(LayerStream(latent_dim, *LAYER_SHAPES[k], base) for k in CALO_LAYERS)
        self.attn = nn.ModuleList([InpaintingAttention(), InpaintingAttention()]) if attention else None

    def forward(self, z: torch.Tensor, energy: torch.Tensor) -> dict[str, torch.Tensor]:
        h = z * (energy.reshape(-1, 1) / 100.0)  # incident energy (B,) in GeV scales the latent vector
        x0, x1, x2 = (s(h) for s in self.streams)
        if self.attn is not None:
            x1 = self.attn[0](x1, layer0_to_1(x0))
            x2 = self.attn[1](x2, layer1_to_2(x1))
        # contiguous: LocallyConnected2d returns a (H, W, B, C)-ordered view; consumers expect plain (B, H, W)
        return {k: F.relu(x).squeeze(1).contiguous() for k, x in zip(CALO_LAYERS, (x0, x1, x2), strict=True)}


class LayerFeatures(nn.Module):
    """Critic features for one layer: conv 2x2 -> LC 3x3 /(1,2) -> LC 2x2 -> LC 2x2 /(1,2), + MBD and sparsity."""

    def __init__(self, rows: int, cols: int, base: int, batchnorm: bool, mbd_kernels: int, mbd_dim: int) -> None:
        super().__init__()
        c0, c1, c2, c3 = discriminator_widths(base)

        def norm(c: int) -> nn.Module:
            return nn.BatchNorm2d(c) if batchnorm else nn.Identity()

        lc1 = LocallyConnected2d(c0, c1, (rows + 2, cols + 2), 3, stride=(1, 2))
        lc2 = LocallyConnected2d(c1, c2, (lc1.out_size[0] + 2, lc1.out_size[1] + 2), 2)
        lc3 = LocallyConnected2d(c2, c3, (lc2.out_size[0] + 2, lc2.out_size[1] + 2), 2, stride=(1, 2))
        self.body = nn.Sequential(
            same_pad(2), nn.Conv2d(1, c0, 2), leaky(),
            nn.ZeroPad2d(1), lc1, leaky(), norm(c1),
            nn.ZeroPad2d(1), lc2, leaky(), norm(c2),
            nn.ZeroPad2d(1), lc3, leaky(), norm(c3),
            nn.Flatten(),
        )
        n_feat = c3 * lc3.out_size[0] * lc3.out_size[1]
        self.mbd = MinibatchDiscrimination(n_feat, mbd_kernels, mbd_dim) if mbd_kernels else None
        self.mbd_sparsity = MinibatchDiscrimination(1, mbd_kernels, mbd_dim) if mbd_kernels else None
        self.out_features = n_feat + 1 + (2 * mbd_kernels if mbd_kernels else 0)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        feats = self.body(img.unsqueeze(1))
        sparsity = (img > 0).flatten(1).float().mean(1, keepdim=True)  # fraction of lit cells
        parts = [feats, sparsity]
        if self.mbd is not None:
            parts += [self.mbd(feats), self.mbd_sparsity(sparsity)]
        return torch.cat(parts, dim=1)


class CaloDiscriminator(nn.Module):
    """D(layers, E) -> (score logit (B,), reconstructed total energy (B,) GeV).

    Energy features as in the paper: per-layer energies / 10, total / 100, |E_tot - E|, 10 * [|E_tot - E| > 5 GeV],
    and minibatch discrimination on the layer energies. The reconstructed energy is the sum of all cells.
    """

    def __init__(self, *, base: int = 64, batchnorm: bool = True, mbd_kernels: int = 10, mbd_dim: int = 10) -> None:
        super().__init__()
        self.layers = nn.ModuleList(LayerFeatures(*LAYER_SHAPES[k], base, batchnorm, mbd_kernels, mbd_dim)
                                    for k in CALO_LAYERS)
        self.mbd_energy = MinibatchDiscrimination(3, mbd_kernels, mbd_dim) if mbd_kernels else None
        n_in = sum(m.out_features for m in self.layers) + 3 + 1 + 2 + (mbd_kernels if mbd_kernels else 0)
        self.head = nn.Linear(n_in, 1)

    def forward(self, layers: dict[str, torch.Tensor], energy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        imgs = [layers[k] for k in CALO_LAYERS]
        feats = [m(x) for m, x in zip(self.layers, imgs, strict=True)]
        e_layers = torch.stack([x.flatten(1).sum(1) for x in imgs], dim=1)  # (B, 3) GeV
        e_total = e_layers.sum(1, keepdim=True)
        well = (e_total - energy.reshape(-1, 1)).abs()
        too_far = 10.0 * (well > 5.0).float()
        parts = [*feats, e_layers / 10.0, e_total / 100.0, well, too_far]
        if self.mbd_energy is not None:
            parts.append(self.mbd_energy(e_layers))
        score = self.head(torch.cat(parts, dim=1)).squeeze(1)
        return score, e_total.squeeze(1)
