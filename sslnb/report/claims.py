"""The study's four claims, each tested on what a report contains: the comparison that decides it,
a paired bootstrap interval, and a verdict read off the interval. Nothing here is typed per
report: the quotes are the study's, every number and verdict comes from the runs.

Verdicts: `supported` (the interval excludes 0 on the claimed side), `contradicted` (it excludes 0
on the other side), `no detectable difference` (it contains 0), `mixed` (the comparisons that
decide a claim disagree), `depends on budget` (claim 1 read at matched steps, FLOPs and time
disagrees) and `not tested` (the report lacks the runs that would decide it).
"""
from __future__ import annotations

import json

from .. import encoders, methods
from ..params import flatten
from ..stats import Interval, contrast_interval, holm
from .costs import time_cell
from .wording import data_description, listing, plural

SUPPORTED, CONTRADICTED, NO_DIFFERENCE = "supported", "contradicted", "no detectable difference"
MIXED, NOT_TESTED, DEPENDS = "mixed", "not tested", "depends on budget"

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


def verdict(d: Interval, claimed_sign: int = 1) -> str:
    """supported / contradicted / no detectable difference, for a claim that d has claimed_sign."""
    if not d.excludes_zero:
        return NO_DIFFERENCE
    return SUPPORTED if (d.value > 0) == (claimed_sign > 0) else CONTRADICTED


def combine(verdicts: list[str], disagree: str = MIXED) -> str:
    """One verdict of several comparisons: theirs when they agree, else `disagree`."""
    if not verdicts:
        return NOT_TESTED
    return verdicts[0] if len(set(verdicts)) == 1 else disagree


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
    """{(method, encoder): group} of the main groups."""
    return {(g["method"], _encoder_key(g)): g for g in main_groups(groups)}


def _objective(method: str) -> str:
    return methods.get(method).objective


# The four tests ------------------------------------------------------------------------------
# Each test returns entries {text, interval, decides, sign}: the intervals that decide its verdict
# (a family across the four claims, Holm-adjusted together in evaluate_claims) and descriptive
# ones shown beside them (unadjusted, labelled).
def _diff(a: dict, b: dict, key: str) -> Interval | None:
    """a - b for two configurations (independent seeds) on the same test set."""
    if key in a["correct"] and key in b["correct"] and a.get("test_set") == b.get("test_set"):
        return contrast_interval([[(1.0, a["correct"][key])], [(-1.0, b["correct"][key])]])
    return None


def _line(text: str, d: Interval, note: str = "") -> str:
    level = "" if abs(d.level - 0.95) < 1e-9 else f"{d.level:.1%} "
    return (f"{text}: {d.value:+.1f} points ({level}CI {d.low:+.1f} to {d.high:+.1f}"
            + (", which contains 0" if not d.excludes_zero else "") + (f"; {note}" if note else "")
            + ")")


def _entry(text: str, d: Interval, decides: bool, sign: int = 1, note: str = "unadjusted",
           groups: tuple = ()) -> dict:
    """One comparison; `groups` are the configurations a deciding one reads (its scope)."""
    return {"text": text, "interval": d, "decides": decides, "sign": sign, "note": note,
            "groups": groups}


CONFOUNDED = "objective and encoder both differ: shown, not used for the verdict"
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
    of it, or a clock that shared its cores, is listed and decides nothing."""
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
                             f"{show(MATCHED * budget)} and {show(budget)}: keep more snapshots"})
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


def probe_claim(groups: list[dict]) -> dict:
    """SimCLR minus MAE under the linear probe on the same encoder decides, read at matched
    optimizer steps, training FLOPs and pretraining time (the verdict holds when the readings
    agree, else it depends on the budget). A pair on different encoders (the study's
    comparison) changes objective and architecture together, so alone it leaves the claim not
    tested, and is shown labelled."""
    entries = []
    for mae, sim, same_encoder in _pairs(groups):
        if not same_encoder:
            d = _diff(sim, mae, "pretrained/probe")
            if d is not None:
                entries.append(_entry(f"{sim['model']} - {mae['model']}, each at the end of its "
                                      f"pretraining", d, False, note=CONFOUNDED))
            continue
        for r in budget_readings(mae, sim):
            if "skip" in r:
                entries.append({"text": f"at matched {r['name']}: not read ({r['skip']})"})
                continue
            d = contrast_interval([[(1.0, sim["correct"][r["keys"][1]])],
                                   [(-1.0, mae["correct"][r["keys"][0]])]])
            entries.append(_entry(f"at matched {r['name']}: {r['where'][0]} - {r['where'][1]}",
                                  d, True, groups=(mae, sim)))
    confounded = bool(entries) and not any(e.get("decides") for e in entries)
    return {"entries": entries, "confounded": confounded, "disagree": DEPENDS,
            "evidence": [("Table", "objective")]}


STARTING_PROBE = "pretrained/finetune_k0"  # the probe fine-tuning starts from, on its images


def finetune_depths(g: dict) -> list[tuple[str, str]]:
    """(depth as a reader names it, evaluator) of each fine-tuning of g, fewest layers first."""
    unit = "stage" if encoders.family(g.get("encoder", "")) == "resnet" else "block"
    c = g["correct"]
    ks = sorted(int(k.rsplit("_k", 1)[1]) for k in c if k.startswith("pretrained/finetune_k"))
    out = [(f"last {k} {unit}{'s' if k > 1 else ''}", f"pretrained/finetune_k{k}")
           for k in ks if k > 0]
    return out + ([(f"all {unit}s", "pretrained/finetune")] if "pretrained/finetune" in c else [])


def finetune_claim(groups: list[dict]) -> dict:
    """At every depth, (MAE fine-tuned - the probe it started from) - (the same for SimCLR) on
    the same encoder decides, each side paired seed by seed within its runs; a gain is measured
    against the probe trained on the very labelled images fine-tuning used (its starting head).
    The verdict holds when the depths agree, else mixed. Runs without that probe (fine-tuning
    and the probe on different label sets) are shown and decide nothing."""
    table = _by_method_and_encoder(groups)
    entries = []
    for g in table.values():
        c = g["correct"]
        for depth, key in finetune_depths(g):
            if STARTING_PROBE in c:
                gain = contrast_interval([[(1.0, c[key]), (-1.0, c[STARTING_PROBE])]])
                entries.append(_entry(f"{g['model']}, {depth}: fine-tuned - the probe it "
                                      f"started from (same labelled images)", gain, False))
            elif "pretrained/probe" in c:
                gain = contrast_interval([[(1.0, c[key]), (-1.0, c["pretrained/probe"])]])
                entries.append(_entry(f"{g['model']}, {depth}: fine-tuned - linear probe", gain,
                                      False, note=LABELS_DIFFER))
    for mae, sim, same_encoder in _pairs(groups):
        if not same_encoder or STARTING_PROBE not in mae["correct"] or \
                STARTING_PROBE not in sim["correct"]:
            continue
        a, b = mae["correct"], sim["correct"]
        titles = [methods.get(g["method"]).title for g in (mae, sim)]
        for depth, key in finetune_depths(mae):
            if key in b:
                d = contrast_interval([[(1.0, a[key]), (-1.0, a[STARTING_PROBE])],
                                       [(-1.0, b[key]), (1.0, b[STARTING_PROBE])]])
                entries.append(_entry(f"{titles[0]}'s gain - {titles[1]}'s gain on "
                                      f"{_encoder_key(mae)}, {depth}", d, True,
                                      groups=(mae, sim)))
    return {"entries": entries, "evidence": [("Figure", "partial")]}


LABELS_DIFFER = ("unadjusted; fine-tuning and the probe trained on different labelled images: "
                 "decides nothing")


def data_claim(groups: list[dict]) -> dict:
    """Per sweep, the full pretraining set minus the smallest at equal optimizer steps decides
    (a smaller set run for more epochs); other sizes are shown, and sets run for the same
    epochs as the full one (so fewer steps: data and compute change together) are shown
    labelled and decide nothing. The verdict holds when the sweeps agree, else mixed."""
    entries = []
    for s in sweeps(groups):
        images = lambda g: g["mean"]["pretrain_images"]  # noqa: E731
        full = full_set(s)
        smaller = [g for g in s if images(g) < images(full)]
        equal = [g for g in smaller if steps(g) == steps(full)]
        for g in smaller:
            d = _diff(full, g, "pretrained/probe")
            if d is None:
                continue
            same_steps = steps(g) == steps(full)
            text = (f"{full['model']}: {images(full):,.0f} vs {images(g):,.0f} pretraining images, "
                    + (f"both {steps(full):,.0f} steps" if same_steps else
                       f"{steps(full):,.0f} vs {steps(g):,.0f} steps"))
            entries.append(_entry(text, d, decides=bool(equal) and g is equal[0],
                                  note="unadjusted" if same_steps else FEWER_STEPS,
                                  groups=(full, g)))
    return {"entries": entries, "evidence": [("Figure", "data")]}


FEWER_STEPS = "unadjusted; the smaller set also had fewer steps: decides nothing"


def efficiency_claim(groups: list[dict]) -> dict:
    """The trade-off holds when the method that costs less probes worse. Cost is read two ways,
    never off a clock that shared its cores: training FLOPs per image (hardware-independent) and
    the isolated time per epoch (epochs not flagged as contended). Each reading that names a
    cheaper method decides; when they disagree on which is cheaper the verdict is mixed."""
    entries = []
    for mae, sim, _ in _pairs(groups):
        d = _diff(sim, mae, "pretrained/probe")
        if d is None:
            continue
        readings = [("training FLOPs per image", "train_flops_per_image", "{:.3g} vs {:.3g} GFLOP",
                     1e9)]
        if all(g["mean"].get("isolated_epoch_time_s") for g in (mae, sim)):
            readings.append(("isolated time per epoch", "isolated_epoch_time_s",
                             "{:.0f} vs {:.0f} s", 1.0))
        for what, key, fmt, unit in readings:
            mae_cheaper = mae["mean"][key] < sim["mean"][key]
            cheap, dear = (mae, sim) if mae_cheaper else (sim, mae)
            ratio = dear["mean"][key] / cheap["mean"][key]
            signed = d if mae_cheaper else Interval.of(-d.value, d.parts, d.level)
            shown = fmt.format(dear["mean"][key] / unit, cheap["mean"][key] / unit)
            if ratio < SAME_COST:  # neither is cheaper: this reading has no trade-off to test
                entries.append(_entry(f"by {what}, {dear['model']} and {cheap['model']} cost "
                                      f"about the same ({shown}); probe accuracy difference",
                                      signed, False, note="equal cost: decides nothing"))
                continue
            entries.append(_entry(f"by {what}, {dear['model']} costs {ratio:.1f}x "
                                  f"{cheap['model']} ({shown}); its probe accuracy minus the "
                                  f"cheaper one's", signed, True, groups=(mae, sim)))
    return {"entries": entries, "evidence": [("Table", "efficiency")]}


SAME_COST = 1.1  # costs within 10% of each other name no cheaper method


def evaluate_claims(groups: list[dict]) -> list[dict]:
    """Every claim's verdict, read off its deciding intervals after Holm's adjustment over all
    of them (one family); the descriptive intervals beside them are unadjusted and say so."""
    tests = [(key, test(groups)) for key, test in (
        ("probe", probe_claim), ("finetune", finetune_claim), ("data", data_claim),
        ("efficiency", efficiency_claim))]
    deciding = [e for _, r in tests for e in r["entries"] if e.get("decides")]
    for e, adj in zip(deciding, holm([e["interval"] for e in deciding])):
        e["adjusted"] = adj
    out = []
    for key, r in tests:
        decide = [e for e in r["entries"] if e.get("decides")]
        lines = [_line(e["text"], e["adjusted"], "Holm-adjusted") for e in decide] + \
            [_line(e["text"], e["interval"], e["note"]) if "interval" in e else e["text"]
             for e in r["entries"] if not e.get("decides")]
        used = list({id(g): g for e in decide for g in e["groups"]}.values())
        out.append({"claim": key, "quote": CLAIMS[key], "short": SHORT[key],
                    "full_scale": FULL_SCALE[key], "scope": scope(used, key),
                    "short_scope": scope(used, key, short=True),
                    "verdict": combine([verdict(e["adjusted"], e["sign"]) for e in decide],
                                       r.get("disagree", MIXED)),
                    "lines": lines, "confounded": bool(r.get("confounded")),
                    "family": len(deciding), "evidence": r["evidence"],
                    "deciding": [{"text": e["text"], "value": e["interval"].value,
                                  "low": e["adjusted"].low, "high": e["adjusted"].high,
                                  "level": e["adjusted"].level,
                                  "p_unadjusted": e["interval"].p_value} for e in decide]})
    return out


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
            row[enc] = f"{ci.value:.1f} ({ci.low:.1f} to {ci.high:.1f})" if ci else "not run"
        rows.append(row)
    return pd.DataFrame(rows).style.hide(axis="index")


def efficiency_rows(groups: list[dict]) -> list[dict]:
    """Table 2: the cost of each pretraining and the accuracy it bought (compute in the unit that
    makes the largest run at least 1: TFLOP, PFLOP or EFLOP)."""
    main = main_groups(groups)
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
                     "Probe (%)": round(mean["test_top1"], 1),
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


def markdown(results: list[dict], extra: dict | None = None, ref=None) -> str:
    """The Claims section's text: each claim quoted, its verdict, the comparisons behind it.
    ref(kind, key) numbers the evidence (report.paper.Paper.ref)."""
    parts = []
    ref = ref or (lambda kind, key: f"the {key} {kind.lower()}")
    for i, r in enumerate(results, 1):
        full = r["full_scale"] + (f" {extra[r['claim']]}" if extra and r["claim"] in extra else "")
        body = "\n".join(f"  - {line}" for line in r["lines"]) or \
            "  - This report has no runs that decide it."
        note = (f" ({WHY_NOT_TESTED}: the report has no MAE and SimCLR run on the same "
                f"encoder.)" if r.get("confounded") else "")
        decided = (f" (decided by {' and '.join(ref(k, key) for k, key in r['evidence'])}"
                   f"{', ' + str(r['family']) + ' deciding differences Holm-adjusted as one family' if r.get('family', 0) > 1 else ''})"
                   if r["verdict"] != NOT_TESTED else "")
        scoped = f" {r['scope']}" if r.get("scope") else ""
        parts.append(f"**Claim {i}.** *\"{r['quote']}\"*  \n**Verdict: {r['verdict']}**"
                     f"{decided}.{note}{scoped}\n\n{body}\n\n*At full scale:* {full}")
    return "\n\n".join(parts)


INTRO = ("The study closes with four observations. Each is tested here on this report's runs: the "
         "comparison that decides it, its interval over the test images and seeds, and a verdict "
         "read off the interval (supported or contradicted when it excludes 0 on one side, no "
         "detectable difference when it contains 0, mixed when the deciding comparisons "
         "disagree, depends on budget when the two objectives on one encoder compare "
         "differently at matched optimizer steps, training FLOPs and pretraining time, not "
         "tested when the report has no runs that decide it). The deciding "
         "differences of all four claims are one family: their intervals are Holm-adjusted "
         "together (Holm 1979), so the chance that any verdict rests on a chance difference stays "
         "within 5%; the other intervals are descriptive and unadjusted.")
WHY_NOT_TESTED = "objective and architecture change together"


def section(results: list[dict], ref=None) -> str:
    """The Claims section's markdown, with the FLOPs of the full-scale configurations."""
    from ..params import ROOT_PARAMS
    flops = full_scale_flops(sorted(ROOT_PARAMS.glob("imagenet100/*.yaml")))
    return "## Claims\n\n" + INTRO + "\n\n" + markdown(
        results, {"efficiency": "; ".join(flops) + "." if flops else ""}, ref)


def any_tested(results: list[dict]) -> bool:
    return any(r["verdict"] != NOT_TESTED for r in results)
