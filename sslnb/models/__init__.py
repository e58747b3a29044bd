"""Model builders: `build_model(params)` returns an MAE or SimCLR module for a resolved params dict."""
from __future__ import annotations

import torch.nn as nn

from ..errors import ParamsError

from .mae import MAE
from .simclr import SimCLR


def build_model(p: dict) -> nn.Module:
    m = p["model"]
    try:
        return _build(p, m)
    except (RuntimeError, ValueError) as e:
        kind = "a timm ViT name such as vit_small_patch16_224" if p["method"] == "mae" else \
            "a torchvision ResNet name such as resnet18 or resnet50"
        raise ParamsError(f"key 'model.encoder' is {m['encoder']!r}, which cannot build a "
                          f"{p['method']} model ({e}); accepted: {kind}.") from None


def _build(p: dict, m: dict) -> nn.Module:
    if p["method"] == "mae":
        a = p["mae"]
        return MAE(m["encoder"], p["data"]["image_size"], m["patch_size"], m["depth"],
                   a["mask_ratio"], a["norm_pix_loss"], a["decoder_dim"], a["decoder_depth"],
                   a["decoder_heads"])
    s = p["simclr"]
    return SimCLR(m["encoder"], m["stem"], s["proj_hidden_dim"], s["proj_dim"], s["temperature"])


def count_params(module: nn.Module) -> int:
    return sum(t.numel() for t in module.parameters())
