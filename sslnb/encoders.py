"""Encoders from timm and torchvision, and the one feature each exports for probing.

A method trains an encoder; evaluation reads its frozen feature. Both come from here so that every
method exports the same feature for the same encoder (a ViT's pooled tokens, a ResNet's pooled
output), whatever objective trained it.
"""
from __future__ import annotations

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


def vit(name: str, image_size: int, patch_size: int, depth: int | None = None) -> nn.Module:
    """A timm ViT returning all tokens (no pooling, no head), for any image and patch size."""
    kwargs = dict(img_size=image_size, patch_size=patch_size, num_classes=0, global_pool="")
    if depth is not None:
        kwargs["depth"] = depth
    try:
        enc = timm.create_model(name, pretrained=False, **kwargs)
    except (RuntimeError, ValueError, TypeError) as e:
        raise ValueError(f"timm cannot build '{name}': {str(e).splitlines()[0][:160]}") from None
    if getattr(enc, "num_prefix_tokens", None) != 1 or getattr(enc, "cls_token", None) is None:
        raise ValueError(f"'{name}' is not a ViT with exactly one cls token")
    enc.feature_dim = enc.embed_dim
    return enc


def vit_feature(enc: nn.Module, tokens: torch.Tensor, pool: str) -> torch.Tensor:
    """The probed feature of a ViT from the output of its blocks (N, 1 + L, D), as timm and the
    official MAE read it: `cls` = the cls token after the final LayerNorm (timm global_pool
    'token'); `mean` = the mean of the patch tokens, then a fresh LayerNorm (timm global_pool 'avg'
    with its `fc_norm`, MAE's global_pool), not the pretraining norm."""
    if pool == "cls":
        return enc.norm(tokens)[:, 0]
    return F.layer_norm(tokens[:, 1:].mean(dim=1), (tokens.shape[-1],), eps=1e-6)


def resnet(name: str, stem: str = "imagenet", zero_init_residual: bool = True) -> nn.Module:
    """A torchvision ResNet without its classifier. `cifar` stem = 3x3/1 conv and no max-pool;
    zero_init_residual: the last BatchNorm of each residual block starts at zero, so each block
    starts as the identity (Goyal et al. 2017; the SimCLR code's ResNet does this)."""
    try:
        net = torchvision.models.get_model(name, weights=None, zero_init_residual=zero_init_residual)
    except (ValueError, TypeError):
        raise ValueError(f"unknown torchvision model '{name}'") from None
    if not isinstance(net, torchvision.models.ResNet):
        raise ValueError(f"'{name}' is not a torchvision ResNet")
    if stem == "cifar":
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = nn.Identity()
    net.feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


def count_params(module: nn.Module) -> int:
    return sum(t.numel() for t in module.parameters())
