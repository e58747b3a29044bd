"""The difference of two configurations on one metric, with its interval: paired seed by seed
where they share an encoder and seeds (seed index i of both started from the same weights, image
order and probe seed), each side's seeds on their own otherwise (Welch-Satterthwaite df). The
claims decide on it; the exploratory readings show it."""
from __future__ import annotations

import math

import numpy as np

from .. import evaluators as ev
from ..stats import Interval, contrast_interval
from .records import Configuration

STARTING_PROBE = ev.finetune(0)  # the probe fine-tuning starts from, on its own images


def terms(g: Configuration, metric: str) -> list[tuple] | None:
    """The (weight, correctness) terms of `metric` for g: the probe or kNN, or a fine-tuning
    minus the probe it started from; None when g lacks one."""
    evs = ([(1.0, ev.Evaluator("pretrained", metric))] if metric in ("probe", "knn") else
           [(1.0, ev.finetune(ev.gain_depth(metric))), (-1.0, STARTING_PROBE)])
    if any(e.key not in g.correct for _, e in evs):
        return None
    return [(w, g.correct[e.key]) for w, e in evs]


def paired(a: Configuration, b: Configuration) -> bool:
    """Analysed paired: one encoder, the same seeds."""
    return a.architecture == b.architecture and list(a.seeds) == list(b.seeds)


def contrast(a: Configuration, b: Configuration, metric: str) -> Interval | None:
    """a - b on `metric`: per-seed differences (t on n - 1 df) plus the test-image part when
    paired, else each side's seeds on their own (Welch-Satterthwaite df); None when either lacks
    the metric or they were tested on different images."""
    ta, tb = terms(a, metric), terms(b, metric)
    if ta is None or tb is None or a.test_set != b.test_set:
        return None
    tb = [(-w, c) for w, c in tb]
    return contrast_interval([ta + tb] if paired(a, b) else [ta, tb], welch=True)


def seed_sd(a: Configuration, b: Configuration, metric: str) -> float:
    """The per-seed sd a power plan reads: of the paired per-seed differences, or, unpaired,
    sqrt((sd_a^2 + sd_b^2) / 2) (one arm's, so that n per arm enters as 2 sd^2 / n)."""
    per = lambda g: sum(w * 100.0 * c.mean(axis=1) for w, c in terms(g, metric))  # noqa: E731
    if paired(a, b):
        return float(np.std(per(a) - per(b), ddof=1)) if a.n > 1 else math.nan
    sds = [float(np.std(per(g), ddof=1)) if g.n > 1 else math.nan for g in (a, b)]
    return math.sqrt((sds[0] ** 2 + sds[1] ** 2) / 2)
