"""Per-sample random draws that do not depend on how a global batch is split across processes.

Every random number of a step (crop boxes, flips, jitter factors, blur, MAE mask noise) is drawn
for the whole global batch from one generator keyed by (seed, step, view), and each process keeps
the rows of its own samples. So N processes with batch B/N see exactly the samples, views and
masks that one process with batch B sees, and data-parallel training reproduces single-process
training (tests/test_distributed.py) instead of merely resembling it. The extra draws cost a few
random numbers per sample of the global batch.
"""
from __future__ import annotations

import contextlib
import contextvars

import torch

_ROWS: contextvars.ContextVar = contextvars.ContextVar("sslnb_rows", default=None)


@contextlib.contextmanager
def global_rows(start: int, total: int):
    """Inside: draws are made for `total` samples and rows [start, start + n) are kept."""
    token = _ROWS.set((start, total))
    try:
        yield
    finally:
        _ROWS.reset(token)


def rand(n: int, g: torch.Generator | None, device, *shape: int) -> torch.Tensor:
    """torch.rand((n, *shape)) for this process's n samples of the global batch."""
    rows = _ROWS.get()
    if rows is None:
        return torch.rand((n, *shape), device=device, generator=g)
    start, total = rows
    return torch.rand((total, *shape), device=device, generator=g)[start:start + n]


def step_generator(seed: int, step: int, view: int, device: torch.device) -> torch.Generator:
    """The generator for one view of one step: a pure function of (seed, step, view). The first
    8 views keep their original seeds; a method drawing more (multi-crop) gets seeds from a
    second stream, so that no view of one step shares a seed with a view of the next."""
    g = torch.Generator(device=device)
    if view < VIEWS_PER_STEP:
        g.manual_seed((seed * 1_000_003 + step * VIEWS_PER_STEP + view) % (2**63 - 1))
    else:
        g.manual_seed((seed * 1_000_003 + step * 1_009 + view + 2**40) % (2**63 - 1))
    return g


VIEWS_PER_STEP = 8
