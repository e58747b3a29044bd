"""Momentum teachers (BYOL's target, DINO's teacher): an exponential moving average of the
trained network, with the decay raised from its base to 1 on a cosine schedule."""
from __future__ import annotations

import math

import torch


def half_cosine(step: int, total_steps: int, start: float, end: float) -> float:
    """From start at step 0 to end at the last step, on a half cosine (the teachers' momentum,
    DINO's weight decay)."""
    return end + (start - end) * (1 + math.cos(math.pi * step / max(1, total_steps))) / 2


def cosine_momentum(step: int, total_steps: int, base: float) -> float:
    """1 - (1 - base) (cos(pi k / K) + 1) / 2 (BYOL section 3.1, DINO section 3.1): base at step
    0, 1 at the last step."""
    return half_cosine(step, total_steps, base, 1.0)


@torch.no_grad()
def ema_update(online: list, target: list, tau: float) -> None:
    """target <- tau target + (1 - tau) online, pairwise, in one fused call (no host sync)."""
    torch._foreach_lerp_(target, online, 1 - tau)
