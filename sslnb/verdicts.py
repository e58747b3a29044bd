"""A claim's verdict from its one registered primary comparison, in words a test can earn.

A report registers, before it is built, one primary comparison per claim: the two configurations,
the metric, the budget, the direction the claim predicts and an equivalence margin delta (default
2 points). The primaries form the Holm family, each comparison once. A primary decides:

- invalid test: a validity check failed (a pretrained arm did not beat its random-init twin,
  fine-tuning lowered the probe it starts from, ...): which check, with its numbers;
- supported / contradicted: the adjusted interval excludes 0, in the claim's direction or
  against it;
- equivalent within +-delta: two one-sided tests at the adjusted level (Schuirmann 1987), i.e.
  the interval at level 1 - 2 alpha lies inside (-delta, delta);
- inconclusive: the interval contains 0 and reaches past +-delta; its minimum detectable effect
  (80% power at the adjusted level) is stated beside it;
- not tested: no pair differs in the claim's factor alone.

"No detectable difference" is not a verdict: it does not say whether the design could tell.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .stats import Interval, _quantile

POWER = 0.8
DELTA = 2.0
WORDS = ("supported", "contradicted", "equivalent", "inconclusive", "invalid test", "not tested")


@dataclass(frozen=True)
class Primary:
    """One claim's registered comparison: a - b on `metric` at `budget`; `direction` +1 when the
    claim predicts a > b, -1 when a < b."""
    claim: str
    a: str
    b: str
    metric: str
    budget: str
    direction: int = 1
    delta: float = DELTA
    why: str = ""  # the design's reason, registered with it and printed beside the verdict

    @property
    def key(self) -> tuple:
        """What makes two primaries the same comparison (a - b and b - a are one)."""
        return frozenset((self.a, self.b)), self.metric, self.budget


@dataclass(frozen=True)
class Check:
    """A validity check: what it asks, whether it passed, and the numbers it read."""
    name: str
    passed: bool
    numbers: str


@dataclass(frozen=True)
class Verdict:
    word: str
    sentence: str
    mde: float | None = None


def family(primaries: list[Primary], most: int = 4) -> list[Primary]:
    """The Holm family: the registered primaries, each comparison once, at most `most`."""
    seen: dict = {}
    for p in primaries:
        if p.key in seen:
            raise ValueError(f"claims {seen[p.key]!r} and {p.claim!r} register the same "
                             f"comparison ({p.a} vs {p.b}, {p.metric}, {p.budget}): a "
                             f"difference enters the family once; give one claim another primary")
        seen[p.key] = p.claim
    if len(primaries) > most:
        raise ValueError(f"{len(primaries)} primaries registered; the family holds at most {most} "
                         f"(one per claim): make the others exploratory")
    return primaries


def mde(d: Interval, level: float | None = None, power: float = POWER) -> float:
    """The smallest true difference this comparison detects with probability `power` at `level`
    (two-sided): (t_{1 - alpha/2} + t_power) x se, on the interval's Welch-Satterthwaite df."""
    level = level if level is not None else d.level
    # _quantile(c, df) is the two-sided one: the one-sided power quantile is _quantile(2p - 1)
    return (_quantile(level, d.df) + _quantile(2 * power - 1, d.df)) * d.se


def percent(level: float) -> str:
    """A confidence level as readers write it: 95%, 97.5%, 98.3%."""
    return f"{100 * level:.1f}".removesuffix(".0") + "%"


def decide(primary: Primary, d: Interval, checks: list[Check] = ()) -> Verdict:
    """The verdict of `primary` from its difference a - b read at the family-adjusted level."""
    failed = [c for c in checks if not c.passed]
    if failed:
        why = "; ".join(f"{c.name} ({c.numbers})" for c in failed)
        return Verdict("invalid test", f"Invalid test: {why}.")
    reach = mde(d)
    at = f"{d.value:+.1f} points ({percent(d.level)} CI {d.low:+.1f} to {d.high:+.1f})"
    if d.excludes_zero:
        word = "supported" if d.value * primary.direction > 0 else "contradicted"
        return Verdict(word, f"{word.capitalize()}: {primary.a} - {primary.b} = {at}.", reach)
    tost = d.at(1 - 2 * (1 - d.level))
    if -primary.delta < tost.low and tost.high < primary.delta:
        return Verdict("equivalent", f"Equivalent within +-{primary.delta:g} points: "
                                     f"{primary.a} - {primary.b} = {at}; its "
                                     f"{percent(tost.level)} interval {tost.low:+.1f} to "
                                     f"{tost.high:+.1f} lies inside the margin.", reach)
    return Verdict("inconclusive", f"Inconclusive: {primary.a} - {primary.b} = {at} contains 0 "
                                   f"and reaches past +-{primary.delta:g}; this design detects "
                                   f"{reach:.1f} points with {POWER:.0%} power.", reach)


def not_tested(primary: Primary, why: str) -> Verdict:
    return Verdict("not tested", f"Not tested: {why}.")


def seeds_for(target: float, seed_sd: float, image_var: float, level: float,
              power: float = POWER, paired: bool = True, most: int = 50) -> int | None:
    """Seeds per arm so that the minimum detectable effect is at most `target` points, given
    the per-seed sd (of the paired differences when paired, of one arm's accuracy when not) and
    the test-image variance of the difference: the power plan behind a report's seed count.
    None when `most` seeds do not reach it (the test images alone may not: more seeds cannot
    shrink their part)."""
    for n in range(2, most + 1):
        if mde(planned(n, seed_sd, image_var, level, paired)) <= target:
            return n
    return None


def planned(n: int, seed_sd: float, image_var: float, level: float,
            paired: bool = True) -> Interval:
    """The interval (around 0) a difference would have with n seeds per arm."""
    seed_var = seed_sd ** 2 / n * (1 if paired else 2)
    parts = ((image_var, math.inf), (seed_var, n - 1 if paired else 2 * (n - 1)))
    return Interval.of(0.0, parts, level, welch=True)
