"""Uncertainty of accuracies and of their differences, from saved test predictions (no retraining).

A percentile bootstrap over test images (Efron & Tibshirani 1993): resample the images with
replacement, recompute the accuracy, read the 2.5th and 97.5th percentiles. With several seeds
(independent pretraining + evaluation runs, shape (seeds, images)), each resample also draws the
seeds with replacement and averages over them, so the interval covers both the choice of test
images and run-to-run variation (a two-level bootstrap, Davison & Hinkley 1997, ch. 3.8).

A difference between two evaluators on the same test images is *paired*: every resample uses the
same images (and the same seed indices) for both, so what the two share cancels out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """A point estimate (percentage points) and its bootstrap confidence interval."""
    value: float
    low: float
    high: float
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

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


def _draws(n_seeds: int, n_images: int, resamples: int, seed: int):
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, n_seeds, size=(resamples, n_seeds))
    images = rng.integers(0, n_images, size=(resamples, n_images))
    return seeds, images


def _resampled_accuracy(correct: np.ndarray, seeds, images) -> np.ndarray:
    """(resamples,) accuracy in %: per resample, the drawn seeds' mean over the drawn images."""
    per_seed = np.stack([c[images].mean(axis=1) for c in correct.astype(np.float64)], axis=1)
    return 100.0 * np.take_along_axis(per_seed, seeds, axis=1).mean(axis=1)


def _interval(value: float, samples: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high), level)


def accuracy_interval(correct, resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> Interval:
    """Accuracy (%) of (seeds, images) or (images,) correctness with its bootstrap interval."""
    correct = np.atleast_2d(np.asarray(correct, dtype=bool))
    seeds, images = _draws(correct.shape[0], correct.shape[1], resamples, seed)
    return _interval(100.0 * correct.mean(), _resampled_accuracy(correct, seeds, images), level)


def difference_interval(correct_a, correct_b, resamples: int = RESAMPLES, seed: int = 0,
                        level: float = LEVEL) -> Interval:
    """Accuracy of a minus accuracy of b (points), paired over the same test images and seed
    indices, with its bootstrap interval."""
    return contrast_interval([(1.0, correct_a), (-1.0, correct_b)], resamples, seed, level)


def contrast_interval(terms: list[tuple[float, object]], resamples: int = RESAMPLES, seed: int = 0,
                      level: float = LEVEL) -> Interval:
    """sum of weight x accuracy (points) over (weight, correctness) terms, e.g. a difference of
    differences [(1, a), (-1, b), (-1, c), (1, d)]: how much more a gains over b than c over d.
    Every term is resampled on the same test images and seed indices (paired)."""
    arrays = [np.atleast_2d(np.asarray(c, dtype=bool)) for _, c in terms]
    if len({a.shape[1] for a in arrays}) != 1:
        raise ValueError(f"a paired contrast needs the same test images: "
                         f"{[a.shape[1] for a in arrays]}")
    seeds, images = _draws(max(a.shape[0] for a in arrays), arrays[0].shape[1], resamples, seed)
    samples = sum(w * _resampled_accuracy(a, seeds % a.shape[0], images)
                  for (w, _), a in zip(terms, arrays))
    value = sum(w * 100.0 * a.mean() for (w, _), a in zip(terms, arrays))
    return _interval(float(value), samples, level)


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample standard deviation (0 for one value) and n of per-seed numbers."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def compare(name_a: str, name_b: str, d: Interval, what: str = "") -> str:
    """A sentence for a difference a - b: who is ahead and by how much, or 'no detectable
    difference' when the interval contains 0."""
    on = f" {what}" if what else ""
    if not d.excludes_zero:
        return (f"No detectable difference between {name_a} and {name_b}{on} "
                f"({d.value:+.1f} points, {d.level:.0%} CI {d.low:+.1f} to {d.high:+.1f}, "
                f"which contains 0).")
    ahead, behind, low, high = ((name_a, name_b, d.low, d.high) if d.value > 0
                                else (name_b, name_a, -d.high, -d.low))
    return (f"{ahead} beats {behind}{on} by {abs(d.value):.1f} points ({d.level:.0%} CI "
            f"{low:.1f} to {high:.1f}).")
