"""Uncertainty of accuracies and of their differences, from saved test predictions (no retraining).

A run's correctness on the test images is a (seeds, images) matrix of 0/1, and its accuracy
varies with which test images were drawn *and* with which pretraining run (seed) was drawn; the
two cross, since every seed is scored on the same images (Owen 2007, "The pigeonhole bootstrap").
The mean accuracy splits into a part every seed shares (which images: an image's difficulty is
the same for all seeds) and a part each seed adds on its own (its seed effect plus its own
image-by-seed noise), independent across seeds:

    mean - mu = A + mean over seeds of B_s
    var(A)    = (MS_image - MS_residual / n) / N   (two-way ANOVA mean squares; N images, n seeds)
    var(B̄)    = s^2 / n                           (s: the sd of the n per-seed accuracies)

B̄ is a mean of n independent seed terms, so its half-width takes Student's t with n - 1 degrees
of freedom (exact for normal seed effects: three seeds widen the interval as much as three seeds
warrant, where a bootstrap over seeds under-covers); A is estimated from thousands of images and
takes the normal quantile. The half-width is sqrt(z^2 var(A) + t^2 var(B̄)). With one seed the
interval is the usual one over test images (seed effects are then not covered: one run's number).
tests/test_uncertainty.py checks the coverage on synthetic runs.

Differences: evaluators of *one* run (a pretrained encoder and its random-init twin of the same
seed, fine-tuning and the probe of the same run) share their seeds and are paired seed by seed
(one `unit`); runs of different models share nothing but the test images, so each unit's seeds
enter on their own and units may have different seed counts. Every term is paired over images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

LEVEL = 0.95


def _quantile(level: float, df: float) -> float:
    q = 0.5 + level / 2
    return float(_st.norm.ppf(q) if not math.isfinite(df) else _st.t.ppf(q, df))


def satterthwaite(parts) -> tuple[float, float]:
    """(total variance, its Welch-Satterthwaite degrees of freedom) of a sum of independent
    variance components (variance, df); df = inf when only infinite-df parts carry variance."""
    total = float(sum(v for v, _ in parts))
    denominator = sum(v * v / df for v, df in parts if v > 0 and math.isfinite(df))
    return total, (total * total / denominator if denominator > 0 else math.inf)


@dataclass(frozen=True)
class Interval:
    """A point estimate (percentage points) and its confidence interval at `level`; `parts` are
    the variance components (variance, degrees of freedom; inf for the image part) the interval
    is built from, so it can be re-read at another level (`at`) or as a p-value.

    welch=False adds each part's half-width in quadrature (each at its own quantile: on few seeds
    the interval over-covers, 98.5% at a nominal 95% with three seeds); welch=True takes one
    Student quantile at the Welch-Satterthwaite df of the summed variance (near nominal:
    tests/test_verdicts.py simulates it)."""
    value: float
    low: float
    high: float
    level: float = LEVEL
    parts: tuple = ()
    welch: bool = False

    @classmethod
    def of(cls, value: float, parts: tuple, level: float = LEVEL,
           welch: bool = False) -> "Interval":
        if welch:
            variance, df = satterthwaite(parts)
            half = _quantile(level, df) * math.sqrt(variance)
        else:
            half = math.sqrt(sum(_quantile(level, df) ** 2 * v for v, df in parts))
        return cls(float(value), float(value - half), float(value + half), level, tuple(parts),
                   welch)

    def at(self, level: float) -> "Interval":
        """The same estimate at another confidence level (e.g. a multiplicity-adjusted one)."""
        return Interval.of(self.value, self.parts, level, self.welch)

    @property
    def se(self) -> float:
        return math.sqrt(sum(v for v, _ in self.parts))

    @property
    def df(self) -> float:
        return satterthwaite(self.parts)[1]

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    @property
    def p_value(self) -> float:
        """Two-sided p-value of 'the true value is 0': 1 - the level whose interval just reaches
        0 (found by bisection; the half-width grows with the level)."""
        if not any(v > 0 for v, _ in self.parts):
            return 1.0 if self.value == 0 else 0.0
        lo, hi = 0.0, 1.0 - 1e-12
        if not self.at(hi).excludes_zero:
            for _ in range(60):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if self.at(mid).excludes_zero else (lo, mid)
            return 1.0 - (lo + hi) / 2
        return 1e-12

    def text(self, unit: str = "") -> str:
        return (f"{self.value:.1f}{unit} ({self.level:.0%} CI {self.low:.1f} to "
                f"{self.high:.1f})")


def as_correct(predictions, labels) -> np.ndarray:
    """(seeds, images) bool of predictions == labels; one run may be given as a 1-D vector."""
    pred = np.atleast_2d(np.asarray(predictions))
    lab = np.atleast_2d(np.asarray(labels))
    if pred.shape[-1] != lab.shape[-1]:
        raise ValueError(f"predictions cover {pred.shape[-1]} images, labels {lab.shape[-1]}")
    return pred == lab


def _unit_matrix(unit) -> np.ndarray:
    """sum of weight x correctness over one unit's terms: (seeds, images), in points."""
    arrays = [(w, np.atleast_2d(np.asarray(c, dtype=np.float64))) for w, c in unit]
    shapes = {a.shape for _, a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"the terms of one unit are paired seed by seed and image by image, so "
                         f"they need the same (seeds, images) shape; got {sorted(shapes)}")
    return 100.0 * sum(w * a for w, a in arrays)


def contrast_interval(units, level: float = LEVEL, welch: bool = False) -> Interval:
    """Interval of the sum over units of (sum of weight x accuracy). A pretrained encoder minus
    its twin is one unit [[(1, pre), (-1, rnd)]]; model A minus model B is two units
    [[(1, a)], [(-1, b)]]; MAE's fine-tuning gain minus SimCLR's is
    [[(1, mae_ft), (-1, mae_probe)], [(-1, sim_ft), (1, sim_probe)]]. Units have independent
    seeds (any counts) and the same test images."""
    ys = [_unit_matrix(u) for u in units]
    if len({y.shape[1] for y in ys}) != 1:
        raise ValueError(f"a paired contrast needs the same test images: "
                         f"{[y.shape[1] for y in ys]}")
    n_images = ys[0].shape[1]
    value = float(sum(y.mean() for y in ys))
    per_image = sum(y.mean(axis=0) for y in ys)
    shared = float(per_image.var(ddof=1)) if n_images > 1 else 0.0
    seed_parts = []
    for y in ys:
        n = y.shape[0]
        if n < 2:
            continue  # one seed: its own noise stays in the image part, its seed effect unknown
        seed_means, image_means, grand = y.mean(axis=1), y.mean(axis=0), y.mean()
        resid = y - seed_means[:, None] - image_means[None, :] + grand
        ms_res = float((resid ** 2).sum()) / ((n - 1) * (n_images - 1)) if n_images > 1 else 0.0
        shared -= ms_res / n  # the seed-specific noise is counted in the seed part instead
        seed_parts.append((float(seed_means.var(ddof=1)) / n, n - 1))
    parts = ((max(shared, 0.0) / n_images, math.inf), *seed_parts)
    return Interval.of(value, parts, level, welch)


def accuracy_interval(correct, level: float = LEVEL) -> Interval:
    """Accuracy (%) of (seeds, images) or (images,) correctness with its interval over images
    and seeds."""
    return contrast_interval([[(1.0, correct)]], level)


def difference_interval(correct_a, correct_b, paired_seeds: bool = False,
                        level: float = LEVEL, welch: bool = False) -> Interval:
    """Accuracy of a minus accuracy of b (points) on the same test images. paired_seeds: a and b
    come from the same runs seed by seed (a model and its random-init twin, fine-tuning and
    probe of one run); otherwise each side's seeds vary on their own."""
    units = ([[(1.0, correct_a), (-1.0, correct_b)]] if paired_seeds
             else [[(1.0, correct_a)], [(-1.0, correct_b)]])
    return contrast_interval(units, level, welch)


def holm(intervals: list[Interval], level: float = LEVEL) -> list[Interval]:
    """Holm's step-down adjustment (Holm 1979) of a family of differences, as intervals: the one
    with the i-th smallest p-value is read at level 1 - alpha / (m - i + 1) while every smaller
    p-value was rejected, and at the level where the step-down stopped after that; so an
    adjusted interval excludes 0 exactly when Holm rejects (family-wise error <= alpha)."""
    alpha, m = 1 - level, len(intervals)
    order = sorted(range(m), key=lambda i: intervals[i].p_value)
    out: list = [None] * m
    stopped = None
    for rank, i in enumerate(order):
        divisor = m - rank
        if stopped is None and intervals[i].p_value > alpha / divisor:
            stopped = divisor
        out[i] = intervals[i].at(1 - alpha / (stopped or divisor))
    return out


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and n of per-seed numbers."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def compare(name_a: str, name_b: str, d: Interval, what: str = "") -> str:
    """A sentence for a difference a - b: who is ahead and by how much, or, when the interval
    contains 0, that this interval cannot order them (not that they are equal: that needs an
    equivalence test, sslnb.verdicts)."""
    on = f" {what}" if what else ""
    if not d.excludes_zero:
        return (f"{name_a} minus {name_b}{on}: {d.value:+.1f} points ({d.level:.0%} CI "
                f"{d.low:+.1f} to {d.high:+.1f}, which contains 0: this interval cannot order "
                f"them).")
    ahead, behind, low, high = ((name_a, name_b, d.low, d.high) if d.value > 0
                                else (name_b, name_a, -d.high, -d.low))
    by = f"by {abs(d.value):.1f} points ({d.level:.0%} CI {low:.1f} to {high:.1f})."
    if not ahead[:1].isupper():  # "its random-init twin" ahead: the model is the subject
        return f"{behind} falls behind {ahead}{on} {by}"
    return f"{ahead} beats {behind}{on} {by}"


def effective_rank(features) -> float:
    """RankMe (Garrido et al. 2023): exp of the entropy of the centred features' normalised
    singular values, from 1 (every image on one line) to the feature width. A pretraining that
    collapses its features (BYOL or DINO failing) shows it here before a probe does."""
    import torch
    x = torch.as_tensor(features, dtype=torch.float64)
    s = torch.linalg.svdvals(x - x.mean(dim=0))
    q = s / s.sum()
    return float(torch.exp(-(q * torch.log(q.clamp_min(1e-300))).sum()))
