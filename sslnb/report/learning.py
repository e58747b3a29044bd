"""Did each configuration learn? A pretrained encoder whose probe is not above its random-init
twin's on val has not learned at its budget (its final loss against the level a constant output
scores, and the effective rank of its features against the twin's, say how): the report marks it
so and leaves it out of rankings and per-cost tables, instead of ranking a failure as a result."""
from __future__ import annotations

import json
import math
from pathlib import Path

from .. import methods
from ..stats import _quantile
from .records import Configuration, Learning, Margin

# a final loss within this fraction of the constant-output level counts as sitting on it
AT_LEVEL = 0.97
NOT_LEARNED = "did not learn"


def final_loss(run_dir: Path | str) -> float | None:
    """The mean pretraining loss over the last tenth of the logged steps (one step is noisy)."""
    path = Path(run_dir) / "metrics" / "steps.jsonl"
    if not path.is_file():
        return None
    losses = [json.loads(line)["loss"] for line in path.read_text().splitlines() if line.strip()]
    tail = losses[-max(1, len(losses) // 10):]
    return sum(tail) / len(tail) if tail else None


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def check(g: Configuration) -> Learning:
    """The margin's 95% interval is over seeds (t on n - 1 df); with one seed, over the val images
    (two binomial proportions), when the val size is known."""
    runs = [r for r in g.runs if r.val_top1 is not None and r.random_val_top1 is not None]
    diffs = [r.val_top1 - r.random_val_top1 for r in runs]
    margin, sd = None, None
    if diffs:
        n, mean = len(diffs), sum(diffs) / len(diffs)
        if n > 1:
            sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
            half = _quantile(0.95, n - 1) * sd / math.sqrt(n)
        else:
            images = g.params["data"].get("num_val")
            a, b = runs[0].val_top1 / 100, runs[0].random_val_top1 / 100
            half = (1.959964 * 100 * math.sqrt((a * (1 - a) + b * (1 - b)) / images)
                    if images else None)
        margin = Margin(mean, n, mean - half if half is not None else None,
                        mean + half if half is not None else None, sd)
    loss = _mean([final_loss(r.run_dir) for r in g.runs])
    level = methods.get(g.params).constant_loss(g.params)
    # The probe decides: a short run can learn while its loss is still near the constant level
    # (SimCLR at 128 steps); the loss and the rank only say why a failure failed.
    why = []
    if margin is not None:
        above = margin.low > 0 if margin.low is not None else margin.value > 0
        if not above:
            why.append("its probe is not above its random-init twin's on val")
            if loss is not None and level is not None and loss >= AT_LEVEL * level:
                why.append("its pretraining loss ends at the level a constant output scores")
    return Learning(not why, margin, loss, level, why,
                    _mean([r.effective_rank for r in g.runs]),
                    _mean([r.random_effective_rank for r in g.runs]))


def learned(g: Configuration) -> bool:
    return g.learning is None or g.learning.learned


def label(g: Configuration) -> str:
    """The model's name in a table, marked when it did not learn."""
    return g.model + ("" if learned(g) else f" ({NOT_LEARNED})")


def sentence(g: Configuration) -> str:
    """One "did it learn?" line, with its numbers."""
    c, parts = g.learning, []
    m = c.margin
    if m:
        over = f"over {m.n} seeds" if m.n > 1 else "over the val images"
        ci = f" (95% CI {m.low:+.1f} to {m.high:+.1f} {over})" if m.low is not None else ""
        parts.append(f"probe on val {m.value:+.1f} points against its random-init twin{ci}")
    if c.final_loss is not None:
        parts.append(f"final pretraining loss {c.final_loss:.2f}" + (
            f" against {c.constant_loss:.2f} for a constant output"
            if c.constant_loss is not None else ""))
    if c.effective_rank is not None and c.twin_effective_rank is not None:
        parts.append(f"effective rank of its val features {c.effective_rank:.1f} against the "
                     f"twin's {c.twin_effective_rank:.1f}")
    verdict = ("Learned." if c.learned else
               "**Did not learn at this budget**: " + " and ".join(c.why) + ".")
    return f"{g.model}: " + "; ".join(parts) + f". {verdict}" + (
        "" if c.learned else " " + need(g))


def seeds_needed(mean: float, sd: float, most: int = 100) -> int | None:
    """The fewest seeds whose 95% interval (t on n - 1 df) clears 0 at this mean and sd."""
    if mean <= 0:
        return None
    for n in range(2, most + 1):
        if _quantile(0.95, n - 1) * sd / math.sqrt(n) < mean:
            return n
    return None


def need(g: Configuration) -> str:
    """What a configuration that did not learn would need, from its own numbers: the mean margin
    its seeds' spread asks for, the seeds its mean asks for, what its probe on test did over its
    last two snapshots, and what its steps cost on this machine. Why: a failure the report
    cannot fix at its budget should say what the next build would have to buy."""
    m, parts = g.learning.margin, []
    if m is not None and m.sd is not None:
        half = m.value - m.low  # the interval's half-width, as check() computed it
        parts.append(f"at the spread of its {m.n} seeds (sd {m.sd:.1f}) an interval above 0 "
                     f"needs a mean margin above {half:.1f} points")
        k = seeds_needed(m.value, m.sd)
        parts.append(f"at its mean margin, {k} seeds" if k else
                     "no number of seeds at its mean margin")
    pts = g.curve
    if len(pts) >= 3 and pts[0].step == 0:
        twin = pts[0].probe.value
        (a, b) = pts[-2], pts[-1]
        parts.append(f"its probe on test moved from {a.probe.value - twin:+.1f} to "
                     f"{b.probe.value - twin:+.1f} points over its twin between steps {a.step:,} "
                     f"and {b.step:,}")
    timed = [r for r in g.runs if r.steps and r.pretrain_time_s]
    if timed:
        per_1k = sum(r.pretrain_time_s / r.steps for r in timed) / len(timed) * 1000 / 60
        parts.append(f"1,000 more steps cost about {per_1k:.0f} minutes per seed on "
                     f"{g.device}")
    return ("What it would need: " + "; ".join(parts) + ".") if parts else ""


def table(groups: list[Configuration]):
    """One row per configuration: its val margin over the twin, final loss against the constant
    level, effective rank against the twin's (where the runs measured it)."""
    import pandas as pd
    rows = []
    ranks = any(g.learning.effective_rank is not None for g in groups)
    for g in groups:
        c, m = g.learning, g.learning.margin
        row = {
            "Model": g.model,
            "Probe on val minus twin (points)": (
                f"{m.value:+.1f}" + (f" ({m.low:+.1f} to {m.high:+.1f})"
                                     if m.low is not None else "")) if m else "not run",
            "Final loss": f"{c.final_loss:.2f}" if c.final_loss is not None else "",
            "Constant-output loss": (f"{c.constant_loss:.2f}"
                                     if c.constant_loss is not None else "depends on data")}
        if ranks:
            row["Effective rank (twin)"] = (
                f"{c.effective_rank:.1f} ({c.twin_effective_rank:.1f})"
                if c.effective_rank is not None and c.twin_effective_rank is not None
                else "not measured")
        row["Learned"] = "yes" if c.learned else f"no: {'; '.join(c.why)}"
        rows.append(row)
    return pd.DataFrame(rows).style.hide(axis="index")


def overtakes_twin(g: Configuration) -> int | None:
    """The first kept snapshot step at which the probe on test is above step 0's (the
    random-init twin's), and stays above at every later snapshot; None if it never does."""
    pts = g.curve
    if len(pts) < 2 or pts[0].step != 0:
        return None
    twin = pts[0].probe.value
    for i, pt in enumerate(pts[1:], 1):
        if all(q.probe.value > twin for q in pts[i:]):
            return pt.step
    return None
