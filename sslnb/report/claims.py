"""The study's four claims, each tested on what a report contains: the comparison that decides it,
a paired bootstrap interval, and a verdict read off the interval. Nothing here is typed per
report: the quotes are the study's, every number and verdict comes from the runs.

Verdicts: `supported` (the interval excludes 0 on the claimed side), `contradicted` (it excludes 0
on the other side), `no detectable difference` (it contains 0), `mixed` (the comparisons that
decide a claim disagree) and `not tested` (the report lacks the runs that would decide it).
"""
from __future__ import annotations

from .. import methods
from ..params import flatten
from ..stats import Interval, contrast_interval, holm
from .costs import time_cell

SUPPORTED, CONTRADICTED, NO_DIFFERENCE = "supported", "contradicted", "no detectable difference"
MIXED, NOT_TESTED = "mixed", "not tested"

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
    "data": ("Here each pretraining set size is trained for the same number of epochs, so a "
             "larger set also gets more optimizer steps; at full scale (25, 50, 100 classes) "
             "the sets also differ in which classes they hold."),
    "efficiency": ("On a GPU, time follows FLOPs more closely than on this CPU; the FLOPs per "
                   "image of the full-scale configurations are below."),
}


def verdict(d: Interval, claimed_sign: int = 1) -> str:
    """supported / contradicted / no detectable difference, for a claim that d has claimed_sign."""
    if not d.excludes_zero:
        return NO_DIFFERENCE
    return SUPPORTED if (d.value > 0) == (claimed_sign > 0) else CONTRADICTED


def combine(verdicts: list[str]) -> str:
    """One verdict of several comparisons: theirs when they agree, else mixed."""
    if not verdicts:
        return NOT_TESTED
    return verdicts[0] if len(set(verdicts)) == 1 else MIXED


# Which runs are which ------------------------------------------------------------------------
PRETRAINING_SET = ("data.pretrain_fraction", "data.pretrain_classes")
NOT_PRETRAINING = ("name", "seed", "eval.finetune_")  # evaluation and naming, not the features


def _identity(p: dict, drop: tuple) -> dict:
    return {k: v for k, v in flatten(p).items() if not k.startswith(drop)}


def differ_only_in_pretraining_set(a: dict, b: dict) -> bool:
    """Resolved params that pretrain the same way on different pretraining sets."""
    drop = NOT_PRETRAINING + PRETRAINING_SET
    return _identity(a, drop) == _identity(b, drop) and \
        _identity(a, NOT_PRETRAINING) != _identity(b, NOT_PRETRAINING)


def sweeps(groups: list[dict]) -> list[list[dict]]:
    """Groups that differ only in their pretraining set, smallest set first (two or more)."""
    out, placed = [], set()
    for i, g in enumerate(groups):
        if i in placed:
            continue
        same = [j for j in range(i + 1, len(groups)) if j not in placed
                and differ_only_in_pretraining_set(g["params"], groups[j]["params"])]
        if same:
            placed |= {i, *same}
            out.append(sorted([g, *(groups[j] for j in same)],
                              key=lambda m: m["mean"]["pretrain_images"]))
    return out


def main_groups(groups: list[dict]) -> list[dict]:
    """Every group but the smaller pretraining sets of a sweep (those only answer the data claim)."""
    smaller = {id(m) for s in sweeps(groups) for m in s[:-1]}
    return [g for g in groups if id(g) not in smaller]


def _encoder_key(g: dict) -> str:
    return g["architecture"]


# The study's claims name its two methods by what they are: MAE a masked-image model, SimCLR a
# contrastive one (each method file says which: Method.objective).
MASKED, CONTRASTIVE = "masked image modelling", "contrastive"


def _by_method_and_encoder(groups: list[dict]) -> dict[tuple, dict]:
    """{(objective, encoder): group} of the main groups."""
    return {(methods.get(g["method"]).objective, _encoder_key(g)): g for g in main_groups(groups)}


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


def _entry(text: str, d: Interval, decides: bool, sign: int = 1, note: str = "unadjusted") -> dict:
    return {"text": text, "interval": d, "decides": decides, "sign": sign, "note": note}


def _pairs(groups: list[dict]):
    """(masked group, contrastive group, same encoder?, contrastive - masked probe interval) for
    every pair tested on the same images."""
    table = _by_method_and_encoder(groups)
    for (m, enc), masked in table.items():
        for (m2, enc2), contrastive in table.items():
            if (m, m2) == (MASKED, CONTRASTIVE):
                d = _diff(contrastive, masked, "pretrained/probe")
                if d is not None:
                    yield masked, contrastive, enc == enc2, d


CONFOUNDED = "objective and encoder both differ: shown, not used for the verdict"


def probe_claim(groups: list[dict]) -> dict:
    """SimCLR minus MAE under the linear probe on the same encoder decides; a pair on different
    encoders (the study's comparison) changes objective and architecture together, so alone it
    leaves the claim not tested, and is shown labelled."""
    entries = []
    for mae, sim, same_encoder, d in _pairs(groups):
        entries.append(_entry(f"{sim['model']} - {mae['model']}", d, decides=same_encoder,
                              note="unadjusted" if same_encoder else CONFOUNDED))
    confounded = bool(entries) and not any(e["decides"] for e in entries)
    return {"entries": entries, "confounded": confounded, "evidence": [("Table", "objective")]}


def finetune_gain(g: dict) -> str | None:
    c = g["correct"]
    return "pretrained/finetune" if "pretrained/finetune" in c and "pretrained/probe" in c else None


def finetune_claim(groups: list[dict]) -> dict:
    """(MAE fine-tuned - MAE probe) - (SimCLR fine-tuned - SimCLR probe) on the same encoder
    decides (each side paired seed by seed within its runs); every group's own gain is shown."""
    table = _by_method_and_encoder(groups)
    entries = []
    for (m, enc), g in table.items():
        if finetune_gain(g):
            c = g["correct"]
            gain = contrast_interval([[(1.0, c["pretrained/finetune"]),
                                       (-1.0, c["pretrained/probe"])]])
            entries.append(_entry(f"{g['model']}: fine-tuned - linear probe", gain, False))
    for (m, enc), mae in table.items():
        sim = table.get((CONTRASTIVE, enc))
        if m != MASKED or sim is None or not (finetune_gain(mae) and finetune_gain(sim)) \
                or mae.get("test_set") != sim.get("test_set"):
            continue
        a, b = mae["correct"], sim["correct"]
        d = contrast_interval([[(1.0, a["pretrained/finetune"]), (-1.0, a["pretrained/probe"])],
                               [(-1.0, b["pretrained/finetune"]), (1.0, b["pretrained/probe"])]])
        entries.append(_entry(f"MAE's gain - SimCLR's gain on {enc}", d, True))
    return {"entries": entries, "evidence": [("Figure", "partial")]}


def data_claim(groups: list[dict]) -> dict:
    """Largest minus smallest pretraining set under the linear probe, per sweep."""
    entries = []
    for s in sweeps(groups):
        small, large = s[0], s[-1]
        d = _diff(large, small, "pretrained/probe")
        if d is not None:
            entries.append(_entry(f"{large['model']}: {large['mean']['pretrain_images']:,.0f} vs "
                                  f"{small['mean']['pretrain_images']:,.0f} pretraining images",
                                  d, True))
    return {"entries": entries, "evidence": [("Figure", "data")]}


def efficiency_claim(groups: list[dict]) -> dict:
    """The trade-off holds when the method that costs less probes worse. Cost is read two ways,
    never off a clock that shared its cores: training FLOPs per image (hardware-independent) and
    the isolated time per epoch (epochs not flagged as contended). Each reading that names a
    cheaper method decides; when they disagree on which is cheaper the verdict is mixed."""
    entries = []
    for mae, sim, _, d in _pairs(groups):
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
                                  f"cheaper one's", signed, True))
    return {"entries": entries, "evidence": [("Table", "efficiency")]}


SAME_COST = 1.1  # costs within 10% of each other name no cheaper method


def evaluate_claims(groups: list[dict]) -> list[dict]:
    """Every claim's verdict, read off its deciding intervals after Holm's adjustment over all
    of them (one family); the descriptive intervals beside them are unadjusted and say so."""
    tests = [(key, test(groups)) for key, test in (
        ("probe", probe_claim), ("finetune", finetune_claim), ("data", data_claim),
        ("efficiency", efficiency_claim))]
    deciding = [e for _, r in tests for e in r["entries"] if e["decides"]]
    for e, adj in zip(deciding, holm([e["interval"] for e in deciding])):
        e["adjusted"] = adj
    out = []
    for key, r in tests:
        decide = [e for e in r["entries"] if e["decides"]]
        lines = [_line(e["text"], e["adjusted"], "Holm-adjusted") for e in decide] + \
            [_line(e["text"], e["interval"], e["note"]) for e in r["entries"] if not e["decides"]]
        out.append({"claim": key, "quote": CLAIMS[key], "short": SHORT[key],
                    "full_scale": FULL_SCALE[key],
                    "verdict": combine([verdict(e["adjusted"], e["sign"]) for e in decide]),
                    "lines": lines, "confounded": bool(r.get("confounded")),
                    "family": len(deciding), "evidence": r["evidence"],
                    "deciding": [{"text": e["text"], "value": e["interval"].value,
                                  "low": e["adjusted"].low, "high": e["adjusted"].high,
                                  "level": e["adjusted"].level,
                                  "p_unadjusted": e["interval"].p_value} for e in decide]})
    return out


def objective_by_encoder(groups: list[dict]):
    """Table 1: linear-probe test top-1 with its 95% CI, objective as rows, encoder as columns."""
    import pandas as pd
    table = _by_method_and_encoder(groups)
    encoders_ = sorted({enc for _, enc in table})
    rows = []
    for m in sorted({m for m, _ in table}):
        title = next(g for (k, _), g in table.items() if k == m)["method"]
        row = {"Objective": methods.get(title).title}
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
        parts.append(f"**Claim {i}.** *\"{r['quote']}\"*  \n**Verdict: {r['verdict']}**"
                     f"{decided}.{note}\n\n{body}\n\n*At full scale:* {full}")
    return "\n\n".join(parts)


INTRO = ("The study closes with four observations. Each is tested here on this report's runs: the "
         "comparison that decides it, its interval over the test images and seeds, and a verdict "
         "read off the interval (supported or contradicted when it excludes 0 on one side, no "
         "detectable difference when it contains 0, mixed when the deciding comparisons "
         "disagree, not tested when the report has no runs that decide it). The deciding "
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
