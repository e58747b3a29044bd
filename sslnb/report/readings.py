"""Exploratory readings beside each claim: shown unadjusted and labelled, deciding nothing. Each
reads only the pairs the report's params name for that claim (`readings: {claim: [[a, b]]}`),
never pairs found by what a method calls its objective; the data claim also reads every
data-scale sweep (configurations whose params differ only in their pretraining set)."""
from __future__ import annotations

from dataclasses import dataclass

from .. import encoders, evaluators as ev
from ..stats import Interval, contrast_interval
from ..verdicts import percent
from .contrasts import STARTING_PROBE, contrast
from .records import Configuration, full_set, sweeps

EXPLORATORY = "exploratory, unadjusted: decides nothing"
CONFOUNDED = "objective and encoder both differ; exploratory, unadjusted: decides nothing"
FEWER_STEPS = "the smaller set also had fewer steps; exploratory, unadjusted: decides nothing"


@dataclass(frozen=True)
class Reading:
    """One exploratory line: its text, its interval (None for a cost), its label, and `sig` (the
    two configurations and the metric) so a reading that is a claim's primary is not stated
    twice."""
    text: str
    interval: Interval | None
    note: str = EXPLORATORY
    sig: tuple = ()

    def line(self) -> str:
        d = self.interval
        if d is None:
            return self.text
        level = "" if abs(d.level - 0.95) < 1e-9 else f"{percent(d.level)} "
        return (f"{self.text}: {d.value:+.1f} points ({level}CI {d.low:+.1f} to {d.high:+.1f}"
                + (", which contains 0" if not d.excludes_zero else "")
                + (f"; {self.note}" if self.note else "") + ")")


def sig(a: Configuration, b: Configuration, metric: str) -> tuple:
    return frozenset((a.group, b.group)), metric


def _diff(a: Configuration, b: Configuration, key: str) -> Interval | None:
    """a - b for two configurations (independent seeds) on the same test set."""
    if key in a.correct and key in b.correct and a.test_set == b.test_set:
        return contrast_interval([[(1.0, a.correct[key])], [(-1.0, b.correct[key])]], welch=True)
    return None


# The budgets a same-encoder pair is read at, from the curves across pretraining (each point a
# kept snapshot): (name, Point field, how a budget is printed).
BUDGETS = (("optimizer steps", "step", lambda v: f"{v:,.0f} steps"),
           ("training FLOPs", "train_flops", lambda v: f"{v / 1e12:.3g} TFLOP"),
           ("pretraining time", "train_seconds", lambda v: f"{v:,.0f} s"))
MATCHED = 0.8  # a reading is matched when the point read reached >= 80% of the shared budget


def at_budget(g: Configuration, axis: str, budget: float):
    """The last point of g's curve across pretraining within `budget` (never step 0)."""
    within = [pt for pt in g.curve if pt.step > 0 and getattr(pt, axis) is not None
              and getattr(pt, axis) <= budget * (1 + 1e-9)]
    return within[-1] if within else None


@dataclass
class BudgetReading:
    name: str
    keys: tuple = ()  # (a's evaluator, b's evaluator)
    where: tuple = ()
    skip: str = ""


def budget_readings(a: Configuration, b: Configuration) -> list[BudgetReading]:
    """b - a under the probe at each budget both reached: each run read at its last snapshot
    within the smaller run's budget (its end, or a kept snapshot before it: never extrapolated).
    Readings of the same two snapshots merge; a budget whose nearest snapshot is below MATCHED
    of it, or a clock that shared its cores, is listed and not read. A snapshot read mid-schedule
    is half-annealed: these readings are exploratory curves, never a primary."""
    readings: list[BudgetReading] = []
    for name, axis, show in BUDGETS:
        if axis == "train_seconds" and any(g.mean.get("epochs_contended") for g in (a, b)):
            readings.append(BudgetReading(name, skip="a pretraining clock shared its cores"))
            continue
        ends = [getattr(g.curve[-1], axis) if g.curve else None for g in (a, b)]
        if None in ends:
            continue
        budget = min(ends)
        pa, pb = at_budget(a, axis, budget), at_budget(b, axis, budget)
        short = [g for g, pt in ((a, pa), (b, pb))
                 if pt is None or getattr(pt, axis) < MATCHED * budget]
        if short:
            readings.append(BudgetReading(name, skip=f"{short[0].model} kept no snapshot "
                                          f"between {show(MATCHED * budget)} and {show(budget)}"))
            continue
        keys = (ev.probe(pa.kind).key, ev.probe(pb.kind).key)
        same = next((r for r in readings if r.keys == keys), None)
        if same:
            same.name += f" and {name}"
            continue
        where = tuple(f"{g.model} at step {p.step:,} ({show(getattr(p, axis))})"
                      for g, p in ((b, pb), (a, pa)))
        readings.append(BudgetReading(name, keys, where))
    return readings


Pairs = list[tuple[Configuration, Configuration]]


def probe_readings(pairs: Pairs, groups: list[Configuration]) -> list[Reading]:
    """a - b under the probe for each named pair, at the end of its pretraining (a pair on
    different encoders changes objective and architecture together, and says so); a
    same-encoder pair also at the budgets its snapshots allow."""
    out = []
    for a, b in pairs:
        same_encoder = a.architecture == b.architecture
        d = _diff(a, b, ev.probe().key)
        if d is not None:
            out.append(Reading(f"{a.model} - {b.model}, each at the end of its pretraining", d,
                               EXPLORATORY if same_encoder else CONFOUNDED, sig(a, b, "probe")))
        if not same_encoder:
            continue
        for r in budget_readings(b, a):
            if r.skip or r.keys == (ev.probe().key, ev.probe().key):
                continue  # no snapshot near the budget, or the end-of-pretraining reading above
            d = contrast_interval([[(1.0, a.correct[r.keys[1]])],
                                   [(-1.0, b.correct[r.keys[0]])]], welch=True)
            out.append(Reading(f"at matched {r.name}, read off snapshots: "
                               f"{r.where[0]} - {r.where[1]}", d))
    return out


def finetune_depths(g: Configuration) -> list[tuple[str, ev.Evaluator]]:
    """(depth as a reader names it, evaluator) of each fine-tuning of g, fewest layers first."""
    unit = "stage" if encoders.family(g.encoder) == "resnet" else "block"
    return [(f"all {unit}s" if e.depth == "all" else
             f"last {e.depth} {unit}{'s' if e.depth > 1 else ''}", e)
            for e in ev.finetunings(g.correct)]


def finetune_readings(pairs: Pairs, groups: list[Configuration]) -> list[Reading]:
    """Each fine-tuned configuration of the named pairs: its gain over the probe it started from
    (the same labelled images), paired seed by seed within its runs; and a's gain minus b's on
    one encoder at each depth."""
    out = []
    named = list({id(g): g for pair in pairs for g in pair}.values())
    for g in named:
        c = g.correct
        for depth, e in finetune_depths(g):
            if STARTING_PROBE.key in c:
                gain = contrast_interval([[(1.0, c[e.key]), (-1.0, c[STARTING_PROBE.key])]],
                                         welch=True)
                out.append(Reading(f"{g.model}, {depth}: fine-tuned - the probe it started "
                                   f"from (same labelled images)", gain))
    for a, b in pairs:
        if a.architecture != b.architecture or STARTING_PROBE.key not in a.correct or \
                STARTING_PROBE.key not in b.correct:
            continue
        for depth, e in finetune_depths(a):
            if e.key in b.correct:
                metric = ev.gain_metric(e.depth)
                d = contrast(a, b, metric)
                out.append(Reading(f"{a.model}'s gain - {b.model}'s gain, {depth}", d,
                                   sig=sig(a, b, metric)))
    return out


def data_readings(pairs: Pairs, groups: list[Configuration]) -> list[Reading]:
    """Per sweep, the full pretraining set minus each smaller one (at equal steps, or labelled
    when the smaller set also had fewer steps)."""
    out = []
    for s in sweeps(groups):
        full = full_set(s)
        for g in (g for g in s if g.pretrain_images < full.pretrain_images):
            d = contrast(full, g, "probe")
            same_steps = g.steps == full.steps
            text = (f"{full.model}: {full.pretrain_images:,.0f} vs {g.pretrain_images:,.0f} "
                    f"pretraining images, " + (f"both {full.steps:,.0f} steps" if same_steps else
                                               f"{full.steps:,.0f} vs {g.steps:,.0f} steps"))
            out.append(Reading(text, d, EXPLORATORY if same_steps else FEWER_STEPS,
                               sig(full, g, "probe")))
    return out


def _span(values) -> str:
    """'15-16' for a spread of values, '8' when they round alike."""
    lo, hi = f"{min(values):.0f}", f"{max(values):.0f}"
    return lo if lo == hi else f"{lo}-{hi}"


def clocks(g: Configuration) -> list[float]:
    return [r.isolated_epoch_time_s for r in g.runs if r.isolated_epoch_time_s]


def efficiency_readings(pairs: Pairs, groups: list[Configuration]) -> list[Reading]:
    """What a costs against b for each named pair (training FLOPs per image; the isolated time
    per epoch, never a contended clock), as text: the costs are measured, not estimated."""
    out = []
    for a, b in pairs:
        parts = [f"{a.mean['train_flops_per_image'] / b.mean['train_flops_per_image']:.1f}"
                 f"x the training FLOPs per image"]
        if all(g.mean.get("isolated_epoch_time_s") for g in (a, b)):
            ratio = a.mean["isolated_epoch_time_s"] / b.mean["isolated_epoch_time_s"]
            spread = "; ".join(f"{g.model} {_span(t)} s" for g in (b, a) if len(t := clocks(g)) > 1)
            parts.append(f"{ratio:.1f}x the time per epoch measured alone (time decides "
                         f"nothing: a clock moves between builds"
                         + (f"; across this build's seeds {spread}" if spread else "") + ")")
        out.append(Reading(f"{a.model} against {b.model}: {' and '.join(parts)}", None))
    return out


READINGS = {"probe": probe_readings, "finetune": finetune_readings, "data": data_readings,
            "efficiency": efficiency_readings}


def of_claim(claim: str, named: list[tuple[str, str]], groups: list[Configuration]) -> list[Reading]:
    """The readings of one claim over the pairs the report names for it (group names)."""
    by_name = {g.group: g for g in groups}
    pairs = [(by_name[a], by_name[b]) for a, b in named if a in by_name and b in by_name]
    return READINGS[claim](pairs, groups)
