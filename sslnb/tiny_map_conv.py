"""Convolutions on maps of at most 2x2 pixels, trained on CPUs as one dense matrix product.

A 32px image through an ImageNet-stem ResNet reaches its third stage at 2x2 pixels and its last
at 1x1. On such maps a convolution is a small dense linear map from the input's C x H x W values
to the output's, and oneDNN's backward pass for it takes 5-30x its forward on a CPU (ResNet-18's
512->512 3x3 on 256 one-pixel maps: 118 ms against 4 ms). Built as that matrix (the kernel's taps
placed where they meet the input, padding left out) the same convolution trains as one matmul:
equal values and gradients (to 1e-12 in float64, tests/test_tiny_map_conv.py), and a ResNet-18
at 32px trains about 2x faster (bench/tiny_map_conv.py: 0.52 vs 1.03 s per 256 images on 2
cores). Larger maps, inference and GPUs keep the library convolution, faster there. Weights,
their names and the state dict are nn.Conv2d's.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

MAX_POSITIONS = 4  # input maps up to 2x2; at 4x4 the dense matrix loses (128->128 3x3: 83 vs 37 ms)


class TinyMapConv2d(nn.Conv2d):
    """nn.Conv2d whose CPU training forward on maps of <= 4 positions is one dense matmul."""

    def _conv_forward(self, x, weight, bias):
        if x.device.type != "cpu" or not torch.is_grad_enabled() or not self.tiny(x):
            return super()._conv_forward(x, weight, bias)
        n, c, h, w = x.shape
        # taps[q, t, p] = 1 where input position q meets kernel tap t at output position p.
        eye = torch.eye(h * w, dtype=x.dtype).view(h * w, 1, h, w)
        taps = F.unfold(eye, self.kernel_size, self.dilation, self.padding, self.stride)
        out_h = (h + 2 * self.padding[0] - self.dilation[0] * (self.kernel_size[0] - 1) - 1) \
            // self.stride[0] + 1
        matrix = torch.einsum("oct,qtp->opcq", weight.flatten(2), taps)
        y = x.reshape(n, c * h * w) @ matrix.reshape(-1, c * h * w).t()
        y = y.view(n, weight.shape[0], out_h, -1)
        return y if bias is None else y + bias.view(1, -1, 1, 1)

    def tiny(self, x: torch.Tensor) -> bool:
        return (x.shape[-2] * x.shape[-1] <= MAX_POSITIONS and not isinstance(self.padding, str)
                and self.groups == 1 and self.padding_mode == "zeros")


def train_tiny_maps_as_matmul(net: nn.Module) -> nn.Module:
    """Give every plain nn.Conv2d of `net` the tiny-map fast path (in place; returns net)."""
    for m in net.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = TinyMapConv2d
    return net
