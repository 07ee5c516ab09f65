"""Locally connected layer against a per-position loop, minibatch discrimination on known inputs."""

from __future__ import annotations

import math

import pytest
import torch

from gansim.models.layers import LocallyConnected2d, MinibatchDiscrimination, locally_connected_naive, same_pad

CASES = [
    # in_ch, out_ch, in_size, kernel, stride, padding, bias
    (3, 4, (5, 7), 2, 1, 0, True),
    (2, 3, (6, 9), 3, (1, 2), 1, True),
    (4, 1, (8, 8), (2, 3), 2, (1, 0), False),
    (1, 2, (3, 12), 3, (1, 2), 2, True),
]


@pytest.mark.parametrize("case", CASES)
def test_locally_connected_matches_naive_loop(case):
    cin, cout, size, k, s, p, bias = case
    torch.manual_seed(0)
    layer = LocallyConnected2d(cin, cout, size, k, stride=s, padding=p, bias=bias).double()
    if bias:
        torch.nn.init.normal_(layer.bias)
    x = torch.randn(5, cin, *size, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(5, cout, *layer.out_size, dtype=torch.float64)

    fast = layer(x)
    grads_fast = torch.autograd.grad((fast * upstream).sum(), [x, *layer.parameters()])
    ref = locally_connected_naive(x, layer)
    grads_ref = torch.autograd.grad((ref * upstream).sum(), [x, *layer.parameters()])

    assert fast.shape == ref.shape == (5, cout, *layer.out_size)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-12)
    for gf, gr in zip(grads_fast, grads_ref, strict=True):
        torch.testing.assert_close(gf, gr, rtol=1e-12, atol=1e-12)


def test_locally_connected_weights_are_unshared():
    layer = LocallyConnected2d(1, 1, (3, 3), 1, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.arange(9.0).view(9, 1, 1))  # 1x1 kernel: output = position index * input
    out = layer(torch.ones(1, 1, 3, 3))
    assert out.flatten().tolist() == list(range(9))


def test_output_size_and_bad_kernel():
    assert LocallyConnected2d(1, 1, (14, 8), 2, stride=(1, 2)).out_size == (13, 4)
    assert LocallyConnected2d(1, 1, (25, 25), 5, stride=2, padding=2).out_size == (13, 13)
    with pytest.raises(ValueError, match="does not fit"):
        LocallyConnected2d(1, 1, (2, 2), 3)


def test_same_pad_keeps_size_for_even_kernel():
    x = torch.zeros(1, 1, 3, 96)
    assert torch.nn.functional.conv2d(same_pad(2)(x), torch.zeros(1, 1, 2, 2)).shape == x.shape


def test_minibatch_discrimination_known_values():
    mbd = MinibatchDiscrimination(1, kernels=2, dim=1, squash=False)
    with torch.no_grad():
        mbd.proj.weight.copy_(torch.tensor([[1.0], [2.0]]))
        mbd.proj.bias.zero_()
    x = torch.tensor([[0.0], [0.0], [1.0]])
    out = mbd(x)
    # kernel 0 distances |x_i - x_j|: sample 0 -> (0, 0, 1); kernel 1 doubles them.
    e1, e2 = math.exp(-1), math.exp(-2)
    expect = torch.tensor([[2 + e1, 2 + e2], [2 + e1, 2 + e2], [1 + 2 * e1, 1 + 2 * e2]])
    torch.testing.assert_close(out, expect)
    squashed = MinibatchDiscrimination(1, 2, 1, squash=True)
    squashed.load_state_dict(mbd.state_dict())
    torch.testing.assert_close(squashed(x), torch.tanh(expect))
