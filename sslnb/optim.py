"""Optimisers and the learning-rate schedule shared by pretraining, probing and fine-tuning."""
from __future__ import annotations

import math

import torch
from timm.optim import Lars, param_groups_weight_decay


def build_optimizer(module: torch.nn.Module, name: str, lr: float, weight_decay: float,
                    betas=(0.9, 0.95), momentum: float = 0.9) -> torch.optim.Optimizer:
    """No weight decay on biases and norm parameters (1-D tensors), as in MAE and SimCLR; LARS
    skips the trust-ratio adaptation for those same parameters (timm's Lars, weight_decay=0)."""
    groups = param_groups_weight_decay(module, weight_decay)
    fused = all(p.is_cuda for g in groups for p in g["params"]) or None
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=fused)
    if name == "lars":
        return Lars(groups, lr=lr, momentum=momentum)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, fused=fused)
    raise ValueError(f"unknown optimizer {name!r}")


def warmup_cosine(step: int, total: int, warmup: int, peak: float, floor: float = 0.0) -> float:
    """Linear warm-up from 0 to `peak` over `warmup` steps, then half-cosine down to `floor`."""
    if step < warmup:
        return peak * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr
