"""Building blocks shared by CaloGAN and LAGAN: locally connected 2-D layer, minibatch discrimination."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LEAKY_SLOPE = 0.3  # Keras LeakyReLU default, used by the original CaloGAN / LAGAN models


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


class LocallyConnected2d(nn.Module):
    """2-D layer with unshared weights: every output position has its own (C*kh*kw -> out) filter.

    Weight layout: (L, kh*kw*C, out) with L = out_h*out_w (row-major) and the in-patch index ordered (kh, kw, C).
    Vectorised as one batched matmul over positions per kernel offset on a (H, W, B, C) copy of the input: each
    offset's slice is a cheap copy of contiguous (B, C) blocks, so there is no im2col transpose and no Python loop
    over positions (see benchmarks/bench_locally_connected.py).
    """

    def __init__(self, in_channels: int, out_channels: int, in_size: tuple[int, int],
                 kernel_size: int | tuple[int, int], stride: int | tuple[int, int] = 1,
                 padding: int | tuple[int, int] = 0, bias: bool = True) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size = _pair(in_size)
        self.kernel_size, self.stride, self.padding = _pair(kernel_size), _pair(stride), _pair(padding)
        (h, w), (kh, kw), (sh, sw), (ph, pw) = self.in_size, self.kernel_size, self.stride, self.padding
        self.out_size = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        if min(self.out_size) < 1:
            raise ValueError(f"LocallyConnected2d: kernel {self.kernel_size} does not fit input {self.in_size}")
        n_pos = self.out_size[0] * self.out_size[1]
        fan_in = in_channels * kh * kw
        bound = 1.0 / math.sqrt(fan_in)  # same scale as torch's Conv2d default init
        self.weight = nn.Parameter(torch.empty(n_pos, fan_in, out_channels).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(out_channels, *self.out_size)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], self.in_channels
        (h, w), (kh, kw), (sh, sw), (ph, pw) = self.in_size, self.kernel_size, self.stride, self.padding
        oh, ow = self.out_size
        if ph or pw:
            xh = x.new_zeros(h + 2 * ph, w + 2 * pw, b, c)
            xh[ph:ph + h, pw:pw + w] = x.permute(2, 3, 0, 1)
        else:
            xh = x.permute(2, 3, 0, 1).contiguous()  # free when x came from another LocallyConnected2d
        weight = self.weight.view(oh * ow, kh * kw, c, self.out_channels)
        out = None
        for di in range(kh):
            for dj in range(kw):
                xs = xh[di:di + sh * (oh - 1) + 1:sh, dj:dj + sw * (ow - 1) + 1:sw].reshape(oh * ow, b, c)
                wk = weight[:, di * kw + dj]  # (L, C, O)
                out = torch.bmm(xs, wk) if out is None else torch.baddbmm(out, xs, wk)
        out = out.view(oh, ow, b, self.out_channels).permute(2, 3, 0, 1)  # (B, O, oh, ow) view
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, in_size={self.in_size}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")


def locally_connected_naive(x: torch.Tensor, layer: LocallyConnected2d) -> torch.Tensor:
    """Reference implementation: an explicit loop over output positions (tests and benchmark only)."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    xp = F.pad(x, (pw, pw, ph, ph))
    oh, ow = layer.out_size
    rows = []
    for i in range(oh):
        cols = []
        for j in range(ow):
            patch = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]  # (B, C, kh, kw)
            y = patch.permute(0, 2, 3, 1).reshape(x.shape[0], -1) @ layer.weight[i * ow + j]
            if layer.bias is not None:
                y = y + layer.bias[:, i, j]
            cols.append(y)
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. (arXiv:1606.03498): per-sample closeness to the rest of the batch in learned kernel spaces.

    x (B, F) -> M = x T (B, kernels, dim); c_b,k = sum_j exp(-||M_b,k - M_j,k||_1); returns (B, kernels).
    """

    def __init__(self, in_features: int, kernels: int, dim: int, squash: bool = True) -> None:
        super().__init__()
        self.kernels, self.dim, self.squash = kernels, dim, squash
        self.proj = nn.Linear(in_features, kernels * dim)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.proj(x).view(x.shape[0], self.kernels, self.dim).transpose(0, 1)  # (K, B, D)
        l1 = (m.unsqueeze(2) - m.unsqueeze(1)).abs().sum(-1)  # (K, B, B)
        c = torch.exp(-l1).sum(-1).transpose(0, 1)  # (B, K)
        return torch.tanh(c) if self.squash else c


def same_pad(kernel: int | tuple[int, int]) -> nn.ZeroPad2d:
    """Keras-style 'same' zero padding (extra row/column at the bottom/right for even kernels)."""
    kh, kw = _pair(kernel)
    return nn.ZeroPad2d(((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2))


def leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(LEAKY_SLOPE)
