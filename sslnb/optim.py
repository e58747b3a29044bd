"""Optimisers, the learning-rate scaling rule and the schedule shared by pretraining, probing and
fine-tuning."""
from __future__ import annotations

import math

import torch
from timm.optim import Lars


def scaled_lr(base_lr: float, batch: int) -> float:
    """The linear scaling rule of MAE and SimCLR: lr = base_lr x batch / 256, where `batch` is
    the effective batch of one optimizer step (batch_size x accum_steps x processes)."""
    return base_lr * batch / 256


def build_optimizer(module: torch.nn.Module, name: str, lr: float, weight_decay: float,
                    betas=(0.9, 0.95), momentum: float = 0.9) -> torch.optim.Optimizer:
    """No weight decay on biases and norm parameters (1-D tensors), as in MAE and SimCLR. LARS
    adapts the weights' lr by the trust ratio even when weight_decay is 0 (timm's Lars would
    silently skip it, turning LARS into momentum SGD) and never adapts biases and norms."""
    groups = param_groups(module, weight_decay)
    fused = all(p.is_cuda for g in groups for p in g["params"]) or None
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(betas), fused=fused)
    if name == "lars":
        for g in groups:
            g["always_adapt"] = g["weights"]  # timm adapts a group only if decayed or this
        return Lars(groups, lr=lr, momentum=momentum)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, fused=fused)
    raise ValueError(f"unknown optimizer {name!r}")


def param_groups(module: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights (matrices, kernels, tokens) decayed by `weight_decay`; biases and norm
    parameters (1-D) never decayed, as in MAE and SimCLR. Frozen parameters are left out."""
    weights, others = [], []
    for name, p in module.named_parameters():
        if p.requires_grad:
            (weights if p.ndim > 1 and not name.endswith(".bias") else others).append(p)
    return [g for g in ({"params": weights, "weight_decay": weight_decay, "weights": True},
                        {"params": others, "weight_decay": 0.0, "weights": False}) if g["params"]]


def warmup_cosine(step: int, total: int, warmup: int, peak: float, floor: float = 0.0) -> float:
    """Linear warm-up from 0 to `peak` over `warmup` steps, then half-cosine down to `floor`."""
    if step < warmup:
        return peak * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + (peak - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Every group at lr, times its `lr_scale` where it has one (layer-wise lr decay)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
