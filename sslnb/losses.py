"""Losses, one formula each, tested against direct computations of the papers' definitions.
Every loss runs in full precision under mixed-precision training (`full_precision`)."""
from __future__ import annotations

import functools

import torch
import torch.distributed as dist
import torch.nn.functional as F


def full_precision(fn):
    """Run `fn` with autocast off on its tensors' device: its matmuls and normalisations stay in
    fp32 when the model around it trains in bf16 or fp16. Under autocast a matmul runs in bf16
    even on fp32 inputs: NT-Xent's similarities at temperature 0.2 would be off by about 0.02,
    and DINO's prototype scores (cosines quantised to about 0.004) by about 0.1 once divided by
    the teacher's 0.04 (DINO's own code computes them in fp16, not bf16). Inputs are cast to fp32
    by the functions themselves."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with torch.autocast(_device_type(*args, *kwargs.values()), enabled=False):
            return fn(*args, **kwargs)
    return wrapper


def _device_type(*values) -> str:
    for v in values:
        if isinstance(v, (list, tuple)) and v:
            v = v[0]
        if isinstance(v, torch.Tensor):
            return v.device.type
    return "cpu"


def _gather_with_grad(z: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' rows, gradients flowing back to their owners; (z, 0) without torch.distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return z, 0
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(z), dim=0), dist.get_rank() * z.shape[0]


@full_precision
def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """SimCLR's NT-Xent (Chen et al. 2020, eq. 1), averaged over all 2N anchors.

    z1, z2: (N, D), two views of the same N images. Each view's positive is the other view of its
    image; the 2N-2 other views are negatives. Similarity is cosine, divided by `temperature`.
    Under torch.distributed, negatives come from every rank (gradients flow back to each rank).
    """
    n = z1.shape[0]
    local = F.normalize(torch.cat([z1, z2], dim=0).float(), dim=1)  # (2n, D): [view1; view2]
    # Gather per view so that global index = [all ranks' view1; all ranks' view2].
    g1, offset = _gather_with_grad(local[:n])
    g2, _ = _gather_with_grad(local[n:])
    candidates = torch.cat([g1, g2], dim=0)  # (2M, D), M = global batch
    m = g1.shape[0]
    logits = local @ candidates.T / temperature  # (2n, 2M)
    rows = torch.arange(2 * n, device=z1.device)
    own = torch.where(rows < n, rows + offset, rows - n + m + offset)  # each anchor's own column
    positive = torch.where(rows < n, own + m, own - m)
    logits = logits.masked_fill(F.one_hot(own, 2 * m).bool(), float("-inf"))
    return F.cross_entropy(logits, positive)


@full_precision
def byol_loss(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss (Grill et al. 2020, eq. 2): the mean over the batch of
    2 - 2 cos(p, z) = ||p/|p| - z/|z|||^2, the online prediction p against the target
    projection z of the other view. No gradient flows into z (the target network)."""
    p = F.normalize(p.float(), dim=1)
    z = F.normalize(z.detach().float(), dim=1)
    return (2 - 2 * (p * z).sum(dim=1)).mean()


@full_precision
def dino_loss(*, student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float | torch.Tensor = 0.04) -> torch.Tensor:
    """DINO's loss (Caron et al. 2021, eq. 3 and Algorithm 1): the cross-entropy between each
    teacher view's centred, sharpened distribution softmax((t - center) / teacher_temp) and the
    student's log_softmax(s / student_temp) of every *other* view (the student view of the same
    crop is skipped), averaged over those pairs. `teacher` holds the global crops' logits, in the
    order of the first views of `student` (globals first, then local crops). No gradient flows
    into the teacher."""
    targets = [F.softmax((t.detach().float() - center) / teacher_temp, dim=-1) for t in teacher]
    logp = [F.log_softmax(s.float() / student_temp, dim=-1) for s in student]
    total, pairs = 0.0, 0
    for i, q in enumerate(targets):
        for j, lp in enumerate(logp):
            if i == j:
                continue
            total = total + (-q * lp).sum(dim=-1).mean()
            pairs += 1
    return total / pairs
