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


def for_run(module: torch.nn.Module, p: dict, lr: float,
            lr_scales: dict[str, float] | None = None) -> torch.optim.Optimizer:
    """The optimizer pretraining builds from resolved params (train.optimizer, weight_decay,
    betas, momentum) at peak learning rate `lr`; the benchmark builds the same one."""
    t = p["train"]
    return build_optimizer(module, t["optimizer"], lr, t["weight_decay"], t["betas"],
                           t["momentum"], lr_scales)


def build_optimizer(module: torch.nn.Module, name: str, lr: float, weight_decay: float,
                    betas=(0.9, 0.95), momentum: float = 0.9,
                    lr_scales: dict[str, float] | None = None) -> torch.optim.Optimizer:
    """No weight decay on biases and norm parameters (1-D tensors), as in MAE and SimCLR. LARS
    adapts the weights' lr by the trust ratio even when weight_decay is 0 (timm's Lars would
    silently skip it, turning LARS into momentum SGD) and never adapts biases and norms.
    lr_scales: {submodule name: multiple of the lr} (a method's Method.lr_scales)."""
    groups = param_groups(module, weight_decay, lr_scales)
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


def param_groups(module: torch.nn.Module, weight_decay: float,
                 lr_scales: dict[str, float] | None = None) -> list[dict]:
    """Two groups: weights (matrices, kernels, tokens) decayed by `weight_decay`; biases and norm
    parameters (1-D) never decayed, as in MAE and SimCLR. Frozen parameters are left out. A
    submodule named in lr_scales gets its own two groups, at that multiple of the lr."""
    scales = {k: v for k, v in (lr_scales or {}).items() if v != 1.0}
    groups: dict[tuple, dict] = {}
    for name, p in module.named_parameters():
        if p.requires_grad:
            weights = p.ndim > 1 and not name.endswith(".bias")
            scale = next((v for k, v in scales.items() if name.startswith(k + ".")), 1.0)
            g = groups.setdefault((scale, weights), {
                "params": [], "weight_decay": weight_decay if weights else 0.0,
                "weights": weights, **({"lr_scale": scale} if scale != 1.0 else {})})
            g["params"].append(p)
    # the order the two-group optimizer always had (weights, then the rest), scaled groups after
    return [groups[k] for k in sorted(groups, key=lambda k: (k[0] != 1.0, k[0], not k[1]))]


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
