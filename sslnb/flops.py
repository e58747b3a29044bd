"""FLOP formulas for model-FLOP utilisation (MFU); each method's `train_flops_per_image` uses them.

A multiply-add counts 2 FLOPs; training costs 3x the forward (backward = 2x forward), as in the
PaLM/Chinchilla convention. Norms, activations, softmax and the loss are left out (under 1%).

ViT block on T tokens of width D, MLP ratio r (4):
    qkv 6TD^2 + scores QK^T 2T^2D + attention x V 2T^2D + projection 2TD^2 + MLP 4rTD^2
    = (8 + 4r) T D^2 + 4 T^2 D
MAE (He et al. 2021), N patches of P x P x 3, keep ratio 1 - m:
    patch embedding 2 N (3P^2) D  (all patches are embedded, then the masked ones dropped)
    encoder: depth x block(T = N(1-m) + 1, D)
    decoder: embedding 2 T_e D D_d + depth_d x block(N + 1, D_d) + prediction 2 (N + 1) D_d (3P^2)
ResNet (SimCLR): every convolution 2 (C_in/groups) k_h k_w C_out H_out W_out and every linear
2 C_in C_out, with the output sizes taken from one forward pass on the meta device.
SimCLR counts both views and the projection head.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


def vit_block(tokens: int, dim: int, mlp_ratio: float = 4.0) -> float:
    return (8 + 4 * mlp_ratio) * tokens * dim ** 2 + 4 * tokens ** 2 * dim


def module_forward(model: nn.Module, input_shape: tuple) -> float:
    """Conv and linear FLOPs of one forward of `model`, output sizes from a meta-device pass."""
    meta = copy.deepcopy(model).to("meta").eval()
    total = 0.0

    def hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0] * m.kernel_size[1]
            total += 2 * (m.in_channels // m.groups) * k * out.numel()
        else:
            total += 2 * m.in_features * out.numel()

    for m in meta.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        meta(torch.empty(input_shape, device="meta"))
    return total
