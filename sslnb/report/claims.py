"""The study's four claims, each decided on the one primary comparison a report registers for it
(its params' `primaries`, sslnb.report.primaries) and nothing else: the two configurations'
difference on the metric, paired seed by seed where they share an encoder and seeds (Welch-
Satterthwaite df otherwise), Holm-adjusted over the primaries, its validity checks read on val,
and a verdict in sslnb.verdicts' words with the minimum detectable effect beside it. Every other
reading is exploratory: shown, unadjusted, labelled, deciding nothing. Nothing here is typed per
report: the quotes are the study's, every number and verdict comes from the runs.
"""
from __future__ import annotations

import json

import dataclasses
import math

import numpy as np

from .. import encoders, methods, verdicts as vd
from ..params import flatten
from ..stats import Interval, _quantile, contrast_interval, holm
from . import learning
from .costs import time_cell
from .wording import data_description, listing, plural

NOT_TESTED = "not tested"
EXPLORATORY = "exploratory, unadjusted: decides nothing"

# The study's closing observations, quoted, and what its full scale could change (prose only).
CLAIMS = {
    "probe": ("SimCLR is better for linear probing tasks due to contrastive learning's emphasis on "
              "separability."),
    "finetune": ("MAE benefits more from full fine-tuning, as linear probing underestimates its "
                 "potential."),
    "data": ("Dataset scale heavily influences SSL effectiveness: larger datasets yield better "
             "representations."),
    "efficiency": ("Efficiency vs. accuracy trade-offs: MAE trains faster per epoch (about 3-4.5 "
                   "minutes) than SimCLR (about 12), SimCLR probes better."),
}
SHORT = {"probe": "SimCLR probes better", "finetune": "MAE gains more from fine-tuning",
         "data": "more data, better features", "efficiency": "the efficiency trade-off"}
FULL_SCALE = {
    "probe": ("At ImageNet scale and long schedules MAE's features become more linearly "
              "separable (68% on ImageNet-1k for ViT-B after 1600 epochs), and with the same "
              "ViT-S/16 on Imagenette MAE probed above SimCLR, so the sign may flip with scale "
              "and schedule."),
    "finetune": ("The MAE paper's gains from fine-tuning come at full budgets (its Figure 9: one "
                 "tuned block lifts ViT-L from 73.5% to 81.0%); short schedules on small data "
                 "understate what every encoder gains."),
    "data": ("Here a smaller set is a random subset of the same classes; at full scale (25, 50, "
             "100 classes) the sets also differ in which classes they hold, and the study's "
             "sizes were each trained for the same epochs, so fewer images also meant fewer "
             "optimizer steps."),
    "efficiency": ("On a GPU, time follows FLOPs more closely than on this CPU; the FLOPs per "
                   "image of the full-scale configurations are below."),
}


# Which runs are which ------------------------------------------------------------------------
PRETRAINING_SET = ("data.pretrain_fraction", "data.pretrain_classes")
NOT_PRETRAINING = ("name", "seed", "eval.finetune_")  # evaluation and naming, not the features


def _identity(p: dict, drop: tuple) -> dict:
    return {k: v for k, v in flatten(p).items() if not k.startswith(drop)}


# A smaller set may run more epochs (with its warm-up scaled) so that every set of a sweep gets
# the same optimizer steps; the schedule is what makes that possible, not a different recipe.
SCHEDULE = ("train.epochs", "train.steps", "train.warmup_epochs")


def _sweep_key(p: dict) -> str:
    return json.dumps(_identity(p, NOT_PRETRAINING + PRETRAINING_SET + SCHEDULE), sort_keys=True,
                      default=str)


def sweeps(groups: list[dict]) -> list[list[dict]]:
    """Groups that pretrain the same way on two or more different pretraining sets (the set,
    and with it the epochs, aside), smallest set first, then fewest steps."""
    families: dict[str, list[dict]] = {}
    for g in groups:
        families.setdefault(_sweep_key(g["params"]), []).append(g)
    return [sorted(f, key=lambda g: (g["mean"]["pretrain_images"], steps(g)))
            for f in families.values()
            if len({g["mean"]["pretrain_images"] for g in f}) > 1]


def steps(g: dict) -> float:
    """A configuration's optimizer steps (the same for every seed)."""
    return g["mean"].get("steps", 0)


def smaller_sets(groups: list[dict]) -> list[dict]:
    """The groups of a sweep on fewer images than its largest set."""
    return [m for s in sweeps(groups) for m in s
            if m["mean"]["pretrain_images"] < s[-1]["mean"]["pretrain_images"]]


def main_groups(groups: list[dict]) -> list[dict]:
    """Every group but the smaller pretraining sets of a sweep (those only answer the data claim)."""
    smaller = {id(m) for m in smaller_sets(groups)}
    return [g for g in groups if id(g) not in smaller]


def full_set(sweep: list[dict]) -> dict:
    """A sweep's reference: its largest pretraining set (the longest run of it)."""
    most = sweep[-1]["mean"]["pretrain_images"]
    return max((g for g in sweep if g["mean"]["pretrain_images"] == most), key=steps)


def _encoder_key(g: dict) -> str:
    return g["architecture"]


# The study's claims compare two kinds of objective, MAE's masked image modelling and SimCLR's
# contrastive learning; each method's file says which kind it is (Method.objective), so a method
# of another kind (self-distillation...) is shown in the tables and decides no claim.
MASKED, CONTRASTIVE = "masked image modelling", "contrastive"


def _by_method_and_encoder(groups: list[dict]) -> dict[tuple, dict]:
    """{(method, encoder): group} of the main groups; of several schedules of one method on one
    encoder (a run trained to another's FLOPs), the longest."""
    out: dict[tuple, dict] = {}
    for g in main_groups(groups):
        key = (g["method"], _encoder_key(g))
        if key not in out or steps(g) > steps(out[key]):
            out[key] = g
    return out


def _objective(method: str) -> str:
    return methods.get(method).objective


# Exploratory readings ----------------------------------------------------------------------
# Each returns entries {text, interval, note, sig}: shown unadjusted beside a claim's primary,
# deciding nothing; `sig` (the two configurations and the metric) drops a reading that is the
# primary itself, so no difference is stated twice.
def _diff(a: dict, b: dict, key: str) -> Interval | None:
    """a - b for two configurations (independent seeds) on the same test set."""
    if key in a["correct"] and key in b["correct"] and a.get("test_set") == b.get("test_set"):
        return contrast_interval([[(1.0, a["correct"][key])], [(-1.0, b["correct"][key])]],
                                 welch=True)
    return None


def _line(text: str, d: Interval, note: str = "") -> str:
    level = "" if abs(d.level - 0.95) < 1e-9 else f"{vd.percent(d.level)} "
    return (f"{text}: {d.value:+.1f} points ({level}CI {d.low:+.1f} to {d.high:+.1f}"
            + (", which contains 0" if not d.excludes_zero else "") + (f"; {note}" if note else "")
            + ")")


def _entry(text: str, d: Interval | None, sig: tuple = (), note: str = EXPLORATORY) -> dict:
    return {"text": text, "interval": d, "note": note, "sig": sig}


def _sig(a: dict, b: dict, metric: str) -> tuple:
    return frozenset((a["group"], b["group"])), metric


CONFOUNDED = "objective and encoder both differ; exploratory, unadjusted: decides nothing"
# The budgets a same-encoder pair is read at, from the curves across pretraining (each point a
# kept snapshot): (name, curve key, how a budget is printed).
BUDGETS = (("optimizer steps", "step", lambda v: f"{v:,.0f} steps"),
           ("training FLOPs", "train_flops", lambda v: f"{v / 1e12:.3g} TFLOP"),
           ("pretraining time", "train_seconds", lambda v: f"{v:,.0f} s"))
MATCHED = 0.8  # a reading is matched when the point read reached >= 80% of the shared budget


def at_budget(g: dict, axis: str, budget: float) -> dict | None:
    """The last point of g's curve across pretraining within `budget` (never step 0)."""
    within = [pt for pt in g.get("curve", []) if pt["step"] > 0 and pt.get(axis) is not None
              and pt[axis] <= budget * (1 + 1e-9)]
    return within[-1] if within else None


def budget_readings(a: dict, b: dict) -> list[dict]:
    """b - a under the probe at each budget both reached: each run read at its last snapshot
    within the smaller run's budget (its end, or a kept snapshot before it: never extrapolated).
    Readings of the same two snapshots merge; a budget whose nearest snapshot is below MATCHED
    of it, or a clock that shared its cores, is listed and not read. A snapshot read mid-schedule
    is half-annealed: these readings are exploratory curves, never a primary."""
    readings = []
    for name, axis, show in BUDGETS:
        if axis == "train_seconds" and any(g["mean"].get("epochs_contended") for g in (a, b)):
            readings.append({"name": name, "skip": "a pretraining clock shared its cores"})
            continue
        ends = [g["curve"][-1].get(axis) if g.get("curve") else None for g in (a, b)]
        if None in ends:
            continue
        budget = min(ends)
        pa, pb = at_budget(a, axis, budget), at_budget(b, axis, budget)
        short = [g for g, pt in ((a, pa), (b, pb)) if pt is None or pt[axis] < MATCHED * budget]
        if short:
            readings.append({"name": name, "skip": f"{short[0]['model']} kept no snapshot between "
                             f"{show(MATCHED * budget)} and {show(budget)}"})
            continue
        keys = (f"{pa['kind']}/probe", f"{pb['kind']}/probe")
        same = next((r for r in readings if r.get("keys") == keys), None)
        if same:
            same["name"] += f" and {name}"
            continue
        where = [f"{g['model']} at step {p['step']:,} ({show(p[axis])})"
                 for g, p in ((b, pb), (a, pa))]
        readings.append({"name": name, "keys": keys, "where": where})
    return readings


def _pairs(groups: list[dict]):
    """(masked group, contrastive group, same encoder?) for every pair tested on the same
    images."""
    table = _by_method_and_encoder(groups)
    for (m, enc), masked in table.items():
        for (m2, enc2), contrastive in table.items():
            if (_objective(m), _objective(m2)) == (MASKED, CONTRASTIVE) and \
                    masked.get("test_set") == contrastive.get("test_set"):
                yield masked, contrastive, enc == enc2


def probe_readings(groups: list[dict]) -> list[dict]:
    """SimCLR minus MAE under the probe: each pair at the end of its pretraining (a pair on
    different encoders changes objective and architecture together, and says so), and a
    same-encoder pair at the budgets its snapshots allow."""
    entries = []
    for mae, sim, same_encoder in _pairs(groups):
        d = _diff(sim, mae, "pretrained/probe")
        if d is not None:
            entries.append(_entry(f"{sim['model']} - {mae['model']}, each at the end of its "
                                  f"pretraining", d, _sig(sim, mae, "probe"),
                                  EXPLORATORY if same_encoder else CONFOUNDED))
        if not same_encoder:
            continue
        for r in budget_readings(mae, sim):
            if "skip" in r or r["keys"] == ("pretrained/probe", "pretrained/probe"):
                continue  # no snapshot near the budget, or the end-of-pretraining reading above
            d = contrast_interval([[(1.0, sim["correct"][r["keys"][1]])],
                                   [(-1.0, mae["correct"][r["keys"][0]])]], welch=True)
            entries.append(_entry(f"at matched {r['name']}, read off snapshots: "
                                  f"{r['where'][0]} - {r['where'][1]}", d))
    return entries


STARTING_PROBE = "pretrained/finetune_k0"  # the probe fine-tuning starts from, on its images


def finetune_depths(g: dict) -> list[tuple[str, str]]:
    """(depth as a reader names it, evaluator) of each fine-tuning of g, fewest layers first."""
    unit = "stage" if encoders.family(g.get("encoder", "")) == "resnet" else "block"
    c = g["correct"]
    ks = sorted(int(k.rsplit("_k", 1)[1]) for k in c if k.startswith("pretrained/finetune_k"))
    out = [(f"last {k} {unit}{'s' if k > 1 else ''}", f"pretrained/finetune_k{k}")
           for k in ks if k > 0]
    return out + ([(f"all {unit}s", "pretrained/finetune")] if "pretrained/finetune" in c else [])


def _gain_metric(key: str) -> str:
    return "finetune_gain" if key == "pretrained/finetune" else \
        f"finetune_gain_k{key.rsplit('_k', 1)[1]}"


def finetune_readings(groups: list[dict]) -> list[dict]:
    """Each fine-tuned configuration's gain over the probe it started from (the same labelled
    images), paired seed by seed within its runs, and the MAE-minus-SimCLR gain on one encoder
    at each depth."""
    entries = []
    for g in _by_method_and_encoder(groups).values():
        c = g["correct"]
        for depth, key in finetune_depths(g):
            if STARTING_PROBE in c:
                gain = contrast_interval([[(1.0, c[key]), (-1.0, c[STARTING_PROBE])]],
                                         welch=True)
                entries.append(_entry(f"{g['model']}, {depth}: fine-tuned - the probe it "
                                      f"started from (same labelled images)", gain))
    for mae, sim, same_encoder in _pairs(groups):
        if not same_encoder or STARTING_PROBE not in mae["correct"] or \
                STARTING_PROBE not in sim["correct"]:
            continue
        for depth, key in finetune_depths(mae):
            if key in sim["correct"]:
                d = _contrast(mae, sim, _gain_metric(key))
                entries.append(_entry(f"{mae['model']}'s gain - {sim['model']}'s gain, {depth}",
                                      d, _sig(mae, sim, _gain_metric(key))))
    return entries


def data_readings(groups: list[dict]) -> list[dict]:
    """Per sweep, the full pretraining set minus each smaller one (at equal steps, or labelled
    when the smaller set also had fewer steps)."""
    entries = []
    for s in sweeps(groups):
        images = lambda g: g["mean"]["pretrain_images"]  # noqa: E731
        full = full_set(s)
        for g in (g for g in s if images(g) < images(full)):
            d = _contrast(full, g, "probe")
            same_steps = steps(g) == steps(full)
            text = (f"{full['model']}: {images(full):,.0f} vs {images(g):,.0f} pretraining images, "
                    + (f"both {steps(full):,.0f} steps" if same_steps else
                       f"{steps(full):,.0f} vs {steps(g):,.0f} steps"))
            entries.append(_entry(text, d, _sig(full, g, "probe"),
                                  EXPLORATORY if same_steps else FEWER_STEPS))
    return entries


FEWER_STEPS = "the smaller set also had fewer steps; exploratory, unadjusted: decides nothing"


def efficiency_readings(groups: list[dict]) -> list[dict]:
    """What each pretraining of a MAE-SimCLR pair costs (training FLOPs per image; the isolated
    time per epoch, never a contended clock), as text: the costs are measured, not estimated."""
    entries = []
    for mae, sim, _ in _pairs(groups):
        parts = [f"{sim['mean']['train_flops_per_image'] / mae['mean']['train_flops_per_image']:.1f}"
                 f"x the training FLOPs per image"]
        if all(g["mean"].get("isolated_epoch_time_s") for g in (mae, sim)):
            ratio = sim["mean"]["isolated_epoch_time_s"] / mae["mean"]["isolated_epoch_time_s"]
            spread = "; ".join(f"{g['model']} {_span(t)} s" for g in (mae, sim)
                               if len(t := _clock(g)) > 1)
            parts.append(f"{ratio:.1f}x the time per epoch measured alone (time decides "
                         f"nothing: a clock moves between builds"
                         + (f"; across this build's seeds {spread}" if spread else "") + ")")
        entries.append(_entry(f"{sim['model']} against {mae['model']}: {' and '.join(parts)}",
                              None))
    return entries


def _clock(g: dict) -> list[float]:
    return [r["isolated_epoch_time_s"] for r in g["runs"] if r.get("isolated_epoch_time_s")]


READINGS = {"probe": probe_readings, "finetune": finetune_readings, "data": data_readings,
            "efficiency": efficiency_readings}


# The primaries -----------------------------------------------------------------------------
def _terms(g: dict, metric: str) -> list[tuple] | None:
    """The (weight, correctness) terms of `metric` for configuration g; None when g lacks it."""
    c = g["correct"]
    if metric in ("probe", "knn"):
        keys = [(1.0, f"pretrained/{metric}")]
    else:
        k = metric.removeprefix("finetune_gain")
        keys = [(1.0, f"pretrained/finetune{k}" if k else "pretrained/finetune"),
                (-1.0, STARTING_PROBE)]
    if any(key not in c for _, key in keys):
        return None
    return [(w, c[key]) for w, key in keys]


def paired(a: dict, b: dict) -> bool:
    """Two configurations are analysed paired when they share the encoder and the seeds: seed
    index i of both started from the same weights, image order and probe seed."""
    return _encoder_key(a) == _encoder_key(b) and list(a["seeds"]) == list(b["seeds"])


def _contrast(a: dict, b: dict, metric: str) -> Interval | None:
    """a - b on `metric`: per-seed differences (t on n - 1 df) plus the test-image part when
    paired, else each side's seeds on their own (Welch-Satterthwaite df)."""
    ta, tb = _terms(a, metric), _terms(b, metric)
    if ta is None or tb is None or a.get("test_set") != b.get("test_set"):
        return None
    tb = [(-w, c) for w, c in tb]
    units = [ta + tb] if paired(a, b) else [ta, tb]
    return contrast_interval(units, welch=True)


def seed_sd(a: dict, b: dict, metric: str) -> float:
    """The per-seed sd the power plan reads: of the paired per-seed differences, or, unpaired,
    sqrt((sd_a^2 + sd_b^2) / 2) (one arm's, so that n per arm enters as 2 sd^2 / n)."""
    per = lambda g: sum(w * 100.0 * c.mean(axis=1) for w, c in _terms(g, metric))  # noqa: E731
    if paired(a, b):
        return float(np.std(per(a) - per(b), ddof=1)) if a["n"] > 1 else math.nan
    sds = [float(np.std(per(g), ddof=1)) if g["n"] > 1 else math.nan for g in (a, b)]
    return math.sqrt((sds[0] ** 2 + sds[1] ** 2) / 2)


def _per_seed_val(g: dict, fn) -> np.ndarray:
    return np.array([fn(r) for r in g["runs"]], dtype=np.float64)


def _span(values) -> str:
    """'15-16' for a spread of values, '8' when they round alike."""
    lo, hi = f"{min(values):.0f}", f"{max(values):.0f}"
    return lo if lo == hi else f"{lo}-{hi}"


def _val_check(name: str, g: dict, what: str, diffs: np.ndarray) -> vd.Check:
    """Passes when the mean per-seed val difference is above 0; states it with its seed
    interval (95%, t on n - 1 df)."""
    mean = float(diffs.mean())
    ci = ""
    if len(diffs) > 1:
        half = _quantile(0.95, len(diffs) - 1) * float(diffs.std(ddof=1)) / math.sqrt(len(diffs))
        ci = f", 95% CI over {len(diffs)} seeds {mean - half:+.1f} to {mean + half:+.1f}"
    return vd.Check(name, mean > 0, f"{g['model']}: {what} {mean:+.1f} points on val{ci}")


def learned(g: dict) -> vd.Check:
    """A pretrained arm must beat its random-init twin under the probe on val."""
    diffs = _per_seed_val(g, lambda r: r["val_top1"] - r["random_val_top1"])
    return _val_check(f"{g['model']} did not learn at this budget", g,
                      "probe minus its random-init twin's", diffs)


def finetune_raises(g: dict, metric: str) -> vd.Check:
    """Fine-tuning must raise the probe it starts from, on val, for a gain to mean anything."""
    k = metric.removeprefix("finetune_gain").removeprefix("_k") or "all"
    diffs = _per_seed_val(g, lambda r: r["finetune_val"][k] - r["finetune_val"]["0"])
    return _val_check("fine-tuning does not raise the probe it starts from at this size", g,
                      "fine-tuned minus its starting probe", diffs)


FACTOR = {"probe": "objective", "finetune": "objective", "efficiency": "objective",
          "data": "pretraining set"}


def untested_because(p: vd.Primary, a: dict, b: dict) -> str | None:
    """Why the pair cannot test the claim (it differs in more than the claim's factor, or its
    budgets do not match), or None."""
    if a.get("test_set") != b.get("test_set"):
        return "the two configurations were tested on different test images"
    other = []
    if _encoder_key(a) != _encoder_key(b):
        other.append(f"encoder ({_encoder_key(a)} vs {_encoder_key(b)})")
    if FACTOR[p.claim] == "objective":
        if _objective(a["method"]) == _objective(b["method"]):
            return f"both configurations have a {_objective(a['method'])} objective"
        if a["mean"]["pretrain_images"] != b["mean"]["pretrain_images"]:
            other.append("pretraining set")
    else:
        if a["method"] != b["method"]:
            other.append(f"method ({a['method']} vs {b['method']})")
        if a["mean"]["pretrain_images"] == b["mean"]["pretrain_images"]:
            return "both configurations pretrain on the same images"
    if other:
        return (f"the pair differs in {listing(other)} besides the {FACTOR[p.claim]} the claim "
                f"tests")
    if p.budget == "steps" and (steps(a), _batch(a)) != (steps(b), _batch(b)):
        return (f"the budgets differ: {steps(a):,.0f} steps of {_batch(a)} images against "
                f"{steps(b):,.0f} of {_batch(b)}")
    if p.budget == "flops":
        ratio = a["mean"]["train_flops"] / b["mean"]["train_flops"]
        if abs(ratio - 1) > FLOPS_TOLERANCE:
            return (f"the training FLOPs differ by {abs(ratio - 1):.0%} (more than "
                    f"{FLOPS_TOLERANCE:.0%}): train one arm to the other's FLOPs")
    return None


FLOPS_TOLERANCE = 0.05
TARGET_MDE = 3.0  # points: the power plan sizes the seeds so every primary detects this


def evaluate_claims(groups: list[dict], primaries: list[vd.Primary] = ()) -> list[dict]:
    """Every claim: its registered primary's verdict (Holm-adjusted over the primaries whose
    checks passed), its power, and the exploratory readings beside it."""
    by_name = {g["group"]: g for g in groups}
    registered = {p.claim: p for p in vd.family(list(primaries))}
    plans: dict[str, dict] = {}
    for claim, p in registered.items():
        a, b = by_name.get(p.a), by_name.get(p.b)
        plan = {"primary": p, "a": a, "b": b}
        plans[claim] = plan
        if a is None or b is None:
            plan["why"] = f"the report has no runs of {p.a if a is None else p.b}"
            continue
        plan["why"] = untested_because(p, a, b)
        if plan["why"]:
            continue
        plan["interval"] = _contrast(a, b, p.metric)
        if plan["interval"] is None:
            plan["why"] = f"{a['model']} or {b['model']} has no {p.metric.replace('_', ' ')}"
            continue
        checks = [learned(a), learned(b)]
        if p.metric.startswith("finetune_gain"):
            checks += [finetune_raises(a, p.metric), finetune_raises(b, p.metric)]
        plan["checks"] = checks
    valid = [c for c, pl in plans.items() if "checks" in pl and all(x.passed for x in pl["checks"])]
    for claim, adj in zip(valid, holm([plans[c]["interval"] for c in valid])):
        plans[claim]["adjusted"] = adj
    out = []
    for key in CLAIMS:
        plan = plans.get(key)
        readings = READINGS[key](groups)
        sig = None
        if plan and plan.get("a") and plan.get("b"):
            sig = _sig(plan["a"], plan["b"], plan["primary"].metric)
        lines = [_line(e["text"], e["interval"], e["note"]) if e["interval"] else e["text"]
                 for e in readings if e["sig"] != sig]
        out.append({"claim": key, "quote": CLAIMS[key], "short": SHORT[key],
                    "full_scale": FULL_SCALE[key], "lines": lines, "family": len(valid),
                    **_decision(plan)})
    return out


def _decision(plan: dict | None) -> dict:
    """A claim's verdict, sentence, primary, power and scope, from its plan."""
    if plan is None:
        return {"verdict": NOT_TESTED, "sentence": "Not tested: this report registers no primary "
                "comparison for it (params primaries).", "primary": None, "scope": "",
                "short_scope": ""}
    p, a, b = plan["primary"], plan["a"], plan["b"]
    if plan.get("why"):
        v = vd.not_tested(p, plan["why"])
        return {"verdict": v.word, "sentence": v.sentence, "primary": _primary_doc(p, a, b),
                "scope": "", "short_scope": ""}
    named = dataclasses.replace(p, a=a["model"], b=b["model"])
    d = plan["interval"]
    adjusted = plan.get("adjusted", d)
    v = vd.decide(named, adjusted, plan["checks"])
    sd = seed_sd(a, b, p.metric)
    image_var = sum(v_ for v_, df in d.parts if math.isinf(df))
    power = {"paired": paired(a, b), "n": min(a["n"], b["n"]), "seed_sd": sd,
             "level": adjusted.level, "mde": vd.mde(adjusted),
             "seeds_for_target": (vd.seeds_for(TARGET_MDE, sd, image_var, adjusted.level,
                                               paired=paired(a, b))
                                  if math.isfinite(sd) else None)}
    return {"verdict": v.word, "sentence": v.sentence, "mde": v.mde, "power": power,
            "primary": _primary_doc(p, a, b),
            "deciding": {"value": d.value, "low": adjusted.low, "high": adjusted.high,
                         "level": adjusted.level, "p_unadjusted": d.p_value,
                         "unadjusted_low": d.low, "unadjusted_high": d.high},
            "checks": [{"name": c.name, "passed": c.passed, "numbers": c.numbers}
                       for c in plan["checks"]],
            "scope": scope([a, b], p.claim), "short_scope": scope([a, b], p.claim, short=True)}


def _primary_doc(p: vd.Primary, a: dict | None, b: dict | None) -> dict:
    name = lambda g, fallback: g["model"] if g else fallback  # noqa: E731
    return {"a": name(a, p.a), "b": name(b, p.b), "metric": p.metric, "budget": p.budget,
            "direction": p.direction, "delta": p.delta, "why": p.why}


def scope(used: list[dict], claim: str, short: bool = False) -> str:
    """What a verdict was decided on: the data, each configuration with its optimizer steps and
    batch, the seeds (and for claim 2 the fine-tuning budget); short, as the abstract says it:
    the models, their steps and the seeds. Empty when nothing decided."""
    if not used:
        return ""
    runs = [f"{g['model']} ({steps(g):,.0f} steps of {_batch(g)} images)" for g in used]
    seeds = sorted({g.get("n", 1) for g in used})
    seeds_text = (f"{seeds[0]} seed{'s' if seeds[0] > 1 else ''} each" if len(seeds) == 1
                  else f"{' or '.join(map(str, seeds))} seeds")
    if short:
        names = listing(list(dict.fromkeys(g["model"].split(",")[0] for g in used)))
        steps_text = listing(list(dict.fromkeys(f"{steps(g):,.0f}" for g in used)))
        return f"{names}, {steps_text} steps, {seeds_text}"
    e = used[0]["params"]["eval"]
    labelled = f"{e['finetune_max_train']:,}" if e["finetune_max_train"] else "all the"
    tuned = (f"; fine-tuned for {plural(e['finetune_epochs'], 'epoch')} on {labelled} labelled "
             f"images" if claim == "finetune" else "")
    images = max(g["mean"]["pretrain_images"] for g in used)
    return (f"Decided on {data_description(used[0]['params'], images)} with {listing(runs)}, "
            f"{seeds_text}{tuned}.")


def _batch(g: dict) -> int:
    t = g["params"]["train"]
    return t["batch_size"] * t.get("accum_steps", 1)


def objective_by_encoder(groups: list[dict]):
    """Table 1: linear-probe test top-1 with its 95% CI, one row per method (grouped by the kind
    of objective its file declares), encoder as columns."""
    import pandas as pd
    table = _by_method_and_encoder(groups)
    encoders_ = sorted({enc for _, enc in table})
    rows = []
    for m in sorted({m for m, _ in table}, key=lambda m: (_objective(m), m)):
        row = {"Objective": _objective(m), "Method": methods.get(m).title}
        for enc in encoders_:
            g = table.get((m, enc))
            ci = g["ci"].get("test_top1") if g else None
            row[enc] = (f"{ci.value:.1f} ({ci.low:.1f} to {ci.high:.1f})" + (
                "" if learning.learned(g) else f", {learning.NOT_LEARNED}") if ci else "not run")
        rows.append(row)
    return pd.DataFrame(rows).style.hide(axis="index")


def finetuning_readout(groups: list[dict]) -> str:
    """What the partial fine-tuning figure shows, in words: for each pretrained model, the test
    top-1 after fine-tuning its deepest fine-tuned depth minus the probe it started from, so a
    caption says so when fine-tuning lowers accuracy."""
    from ..stats import accuracy_interval
    said = []
    for g in main_groups(groups):
        c = g["correct"]
        start = "pretrained/finetune_k0" if "pretrained/finetune_k0" in c else "pretrained/probe"
        ends = ["pretrained/finetune"] + sorted(k for k in c if k.startswith("pretrained/finetune_k")
                                                and k != "pretrained/finetune_k0")
        end = next((k for k in ends if k in c), None)
        if end is None or start not in c:
            continue
        d = accuracy_interval(c[end]).value - accuracy_interval(c[start]).value
        k = None if end == "pretrained/finetune" else int(end.rsplit("_k", 1)[1])
        depth = ("every block" if k is None else "the last block" if k == 1
                 else f"the last {k} blocks")
        said.append(f"{g['model']} {'gains' if d > 0 else 'loses'} {abs(d):.1f} points "
                    f"fine-tuning {depth}")
    if not said:
        return ""
    return "Here " + listing(said) + " (test top-1 against the probe it starts from)."


def efficiency_rows(groups: list[dict]) -> list[dict]:
    """Table 2: the cost of each pretraining and the accuracy it bought (compute in the unit that
    makes the largest run at least 1: TFLOP, PFLOP or EFLOP)."""
    # a run that did not learn bought nothing to divide by its cost: left out
    main = [g for g in main_groups(groups) if learning.learned(g)]
    if not main:
        return []
    largest = max(g["mean"]["train_flops"] for g in main)
    scale, unit = next(((s, u) for s, u in ((1e18, "EFLOP"), (1e15, "PFLOP"))
                        if largest >= s), (1e12, "TFLOP"))
    rows = []
    for g in main:
        mean = g["mean"]
        gain = mean["test_top1"] - mean["random_test_top1"]
        compute = mean["train_flops"] / scale
        rows.append({"Model": g["model"], "Time/epoch alone (s)": time_cell(g),
                     "Images/s alone": time_cell(g, "isolated_images_per_s"),
                     "Training GFLOP/image": round(mean["train_flops_per_image"] / 1e9, 2),
                     f"Pretraining {unit}": round(compute, 2),
                     "Probe (%)": f"{mean['test_top1']:.1f}",  # as every table prints it
                     f"Points over random init per {unit}":
                         round(gain / compute, 2) if compute else "n/a"})
    return rows


def efficiency_table(groups: list[dict]):
    import pandas as pd
    return pd.DataFrame(efficiency_rows(groups)).style.hide(axis="index").format(precision=2)


def full_scale_flops(params_files: list) -> list[str]:
    """Training GFLOP per image of full-scale configurations (sslnb.flops), for the efficiency
    claim's full-scale sentence."""
    from ..params import resolve
    out = []
    for f in params_files:
        p = resolve(f)
        gflop = methods.train_flops_per_image(p) / 1e9
        out.append(f"{methods.get(p).title} {methods.get(p).architecture(p)} "
                   f"{gflop:.0f} GFLOP per image")
    return out


METRICS = {"probe": "linear-probe test top-1", "knn": "kNN test top-1"}
BUDGET_WORDS = {"steps": "at equal optimizer steps and batch", "flops": "at equal training FLOPs"}


def metric_words(metric: str) -> str:
    if metric in METRICS:
        return METRICS[metric]
    k = metric.removeprefix("finetune_gain").removeprefix("_k")
    depth = f"the last {plural(int(k), 'block')}" if k else "every block"
    return f"the gain of fine-tuning {depth} over the probe it starts from (test top-1)"


def _primary_line(r: dict) -> str:
    p = r["primary"]
    sign = ">" if p["direction"] > 0 else "<"
    text = (f"*Primary (registered before the build):* {p['a']} - {p['b']}, "
            f"{metric_words(p['metric'])}, {BUDGET_WORDS[p['budget']]}; the claim predicts "
            f"{p['a']} {sign} {p['b']}; equivalence margin +-{p['delta']:g} points."
            + (f" Why this design: {p['why'].strip()}" if p.get("why") else ""))
    w = r.get("power")
    if w:
        how = ("Paired seed by seed (one encoder, shared seeds)" if w["paired"] else
               "Unpaired (Welch-Satterthwaite df)")
        text += (f" {how}, {w['n']} seeds, read at {vd.percent(w['level'])} (Holm over "
                 f"{r['family']} primar{'y' if r['family'] == 1 else 'ies'}); per-seed sd "
                 f"{w['seed_sd']:.2f} points; minimum detectable effect {w['mde']:.1f} points "
                 f"at 80% power")
        need = w.get("seeds_for_target")
        text += (f" ({TARGET_MDE:g} points would need {need} seeds)." if need and need > w["n"]
                 else ".")
    return text


def markdown(results: list[dict], extra: dict | None = None, ref=None,
             decided: bool = True) -> str:
    """The Claims section's text: each claim quoted, its verdict from its primary, the checks
    and power behind it, and the exploratory readings beside it; a report that decides no claim
    (decided=False) quotes each with its readings and no verdict."""
    parts = []
    for i, r in enumerate(results, 1):
        full = r["full_scale"] + (f" {extra[r['claim']]}" if extra and r["claim"] in extra else "")
        body = [f"**Claim {i}.** *\"{r['quote']}\"*" + (
            f"  \n**Verdict: {r['verdict']}.** {r['sentence']}"
            + (f" {r['scope']}" if r.get("scope") else "") if decided else "")]
        if r.get("primary"):
            body.append(_primary_line(r))
        if r.get("checks"):
            body.append("*Checks on val:* " + "; ".join(
                f"{'passed' if c['passed'] else 'FAILED'}: {c['numbers']}" for c in r["checks"])
                + ".")
        if r["lines"]:
            body.append("*Exploratory (unadjusted, decide nothing):*\n\n"
                        + "\n".join(f"  - {line}" for line in r["lines"]))
        body.append(f"*At full scale:* {full}")
        parts.append("\n\n".join(body))
    return "\n\n".join(parts)


def power_table(results: list[dict]):
    """One row per registered primary: seeds, pairing, per-seed sd, the adjusted level, the
    minimum detectable effect and the seeds a 3-point MDE would need."""
    import pandas as pd
    rows = [{"Claim": f"{i}. {r['short']}", "Primary": f"{r['primary']['a']} - {r['primary']['b']}",
             "Seeds": r["power"]["n"], "Paired": "yes" if r["power"]["paired"] else "no",
             "Per-seed sd": round(r["power"]["seed_sd"], 2),
             "Level": vd.percent(r["power"]["level"]), "MDE (points)": round(r["power"]["mde"], 1),
             f"Seeds for {TARGET_MDE:g}": r["power"]["seeds_for_target"] or "over 50",
             "Verdict": r["verdict"]}
            for i, r in enumerate(results, 1) if r.get("power")]
    return pd.DataFrame(rows).style.hide(axis="index") if rows else None


UNDECIDED = ("This report registers no primary comparison, so it decides none of the study's "
             "four claims: the claims report (`make report REPORT=claims`, "
             "report/claims/report.html) decides each on one comparison registered before its "
             "build, with paired seeds and a stated minimum detectable effect. Below, each claim "
             "with the readings of this report that bear on it: exploratory, unadjusted, "
             "deciding nothing.")


INTRO = ("The study closes with four observations. Each is decided on one primary comparison "
         "registered in this report's params before it was built, and on nothing else: the two "
         "configurations' difference with its interval over test images and seeds (paired seed "
         "by seed where they share an encoder and seeds; Welch-Satterthwaite degrees of freedom "
         "otherwise), Holm-adjusted over the primaries (Holm 1979). Verdicts: supported or "
         "contradicted (the adjusted interval excludes 0, in the claim's direction or against "
         "it); equivalent (two one-sided tests at the adjusted level put the difference within "
         "the margin; Schuirmann 1987); inconclusive (the interval contains 0 and reaches past "
         "the margin: the design could not tell, its minimum detectable effect stated); invalid "
         "test (a check on val failed: a pretrained arm not above its random-init twin, or "
         "fine-tuning not above the probe it starts from); not tested (no registered primary, or "
         "its pair differs in more than the claim's factor). Every other reading is exploratory: "
         "unadjusted, labelled, deciding nothing.")


def section(results: list[dict], ref=None, groups: list[dict] | None = None) -> str:
    """The Claims section's markdown, with the FLOPs of the full-scale configurations of the
    methods this report compares (groups; all of them when not given)."""
    from ..params import ROOT_PARAMS, resolve
    files = sorted(ROOT_PARAMS.glob("imagenet100/*.yaml"))
    if groups is not None:
        shown = {g["method"] for g in groups}
        files = [f for f in files if resolve(f)["method"] in shown]
    flops = full_scale_flops(files)
    extra = {"efficiency": "; ".join(flops) + "." if flops else ""}
    if not any(r.get("primary") for r in results):
        return "## Claims\n\n" + UNDECIDED + "\n\n" + markdown(results, extra, ref, decided=False)
    return "## Claims\n\n" + INTRO + "\n\n" + markdown(results, extra, ref)


def any_tested(results: list[dict]) -> bool:
    """Whether the Claims section has anything to say: a registered primary or a reading."""
    return any(r.get("primary") or r["lines"] for r in results)
