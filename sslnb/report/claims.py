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
from ..stats import Interval, contrast_interval

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
def _diff(a: dict, b: dict, key: str) -> Interval | None:
    if key in a["correct"] and key in b["correct"] and len(a["labels"]) == len(b["labels"]) \
            and (a["labels"] == b["labels"]).all():
        return contrast_interval([(1.0, a["correct"][key]), (-1.0, b["correct"][key])])
    return None


def _line(text: str, d: Interval) -> str:
    return (f"{text}: {d.value:+.1f} points (95% CI {d.low:+.1f} to {d.high:+.1f}"
            + (", which contains 0)" if not d.excludes_zero else ")"))


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


def probe_claim(groups: list[dict]) -> dict:
    """SimCLR minus MAE under the linear probe on the same encoder (the test); across encoders
    (the study's confounded comparison) shown beside it."""
    same, across = [], []
    for mae, sim, same_encoder, d in _pairs(groups):
        (same if same_encoder else across).append((f"{sim['model']} - {mae['model']}", d))
    decide = same or across
    lines = [_line(t, d) for t, d in same] + [_line(t, d) + " (objective and encoder both differ)"
                                              for t, d in across]
    return {"verdict": combine([verdict(d) for _, d in decide]), "lines": lines,
            "confounded": not same and bool(across), "evidence": [("Table", "objective")]}


def finetune_gain(g: dict) -> str | None:
    c = g["correct"]
    return "pretrained/finetune" if "pretrained/finetune" in c and "pretrained/probe" in c else None


def finetune_claim(groups: list[dict]) -> dict:
    """(MAE fine-tuned - MAE probe) - (SimCLR fine-tuned - SimCLR probe), on the same encoder;
    every group's own gain listed."""
    table = _by_method_and_encoder(groups)
    lines, decide = [], []
    for (m, enc), g in table.items():
        if finetune_gain(g):
            c = g["correct"]
            gain = contrast_interval([(1.0, c["pretrained/finetune"]), (-1.0, c["pretrained/probe"])])
            lines.append(_line(f"{g['model']}: fine-tuned - linear probe", gain))
    for (m, enc), mae in table.items():
        sim = table.get((CONTRASTIVE, enc))
        if m != MASKED or sim is None or not (finetune_gain(mae) and finetune_gain(sim)):
            continue
        a, b = mae["correct"], sim["correct"]
        d = contrast_interval([(1.0, a["pretrained/finetune"]), (-1.0, a["pretrained/probe"]),
                               (-1.0, b["pretrained/finetune"]), (1.0, b["pretrained/probe"])])
        decide.append(d)
        lines.append(_line(f"MAE's gain - SimCLR's gain on {enc}", d))
    return {"verdict": combine([verdict(d) for d in decide]), "lines": lines,
            "evidence": [("Figure", "partial")]}


def data_claim(groups: list[dict]) -> dict:
    """Largest minus smallest pretraining set under the linear probe, per sweep."""
    lines, decide = [], []
    for s in sweeps(groups):
        small, large = s[0], s[-1]
        d = _diff(large, small, "pretrained/probe")
        if d is None:
            continue
        decide.append(d)
        lines.append(_line(f"{large['model']}: {large['mean']['pretrain_images']:,.0f} vs "
                           f"{small['mean']['pretrain_images']:,.0f} pretraining images", d))
    return {"verdict": combine([verdict(d) for d in decide]), "lines": lines,
            "evidence": [("Figure", "data")]}


def efficiency_claim(groups: list[dict]) -> dict:
    """The trade-off holds when the method that costs less per epoch probes worse (interval
    excluding 0): supported; when it probes better, one method wins on both: contradicted."""
    lines, decide = [], []
    for mae, sim, _, d in _pairs(groups):
        mae_cheaper = mae["mean"]["epoch_time_s"] < sim["mean"]["epoch_time_s"]
        cheap, dear = (mae, sim) if mae_cheaper else (sim, mae)
        ratio = dear["mean"]["epoch_time_s"] / cheap["mean"]["epoch_time_s"]
        # the claim: the cheaper one probes worse, i.e. dear - cheap > 0
        signed = d if mae_cheaper else Interval(-d.value, -d.high, -d.low, d.level)
        decide.append(signed)
        lines.append(_line(f"{dear['model']} costs {ratio:.1f}x the time per epoch of "
                           f"{cheap['model']} ({dear['mean']['epoch_time_s']:.0f} vs "
                           f"{cheap['mean']['epoch_time_s']:.0f} s); its probe accuracy minus "
                           f"the cheaper one's", signed))
    return {"verdict": combine([verdict(d) for d in decide]), "lines": lines,
            "evidence": [("Table", "efficiency")]}


def evaluate_claims(groups: list[dict]) -> list[dict]:
    out = []
    for key, test in (("probe", probe_claim), ("finetune", finetune_claim), ("data", data_claim),
                      ("efficiency", efficiency_claim)):
        r = test(groups)
        out.append({"claim": key, "quote": CLAIMS[key], "short": SHORT[key],
                    "full_scale": FULL_SCALE[key], **r})
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
        rows.append({"Model": g["model"], "Time/epoch (s)": round(mean["epoch_time_s"]),
                     "Images/s": round(mean["images_per_s"]),
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
        note = (" The report has no SimCLR and MAE run on the same encoder: objective and "
                "architecture are confounded." if r.get("confounded") else "")
        decided = (f" (decided by {' and '.join(ref(k, key) for k, key in r['evidence'])})"
                   if r["verdict"] != NOT_TESTED else "")
        parts.append(f"**Claim {i}.** *\"{r['quote']}\"*  \n**Verdict: {r['verdict']}**"
                     f"{decided}.{note}\n\n{body}\n\n*At full scale:* {full}")
    return "\n\n".join(parts)


INTRO = ("The study closes with four observations. Each is tested here on this report's runs: the "
         "comparison that decides it, its paired 95% bootstrap interval over the test images, "
         "and a verdict read off the interval (supported or contradicted when it excludes 0 on "
         "one side, no detectable difference when it contains 0, not tested when the report has "
         "no runs that decide it).")


def section(results: list[dict], ref=None) -> str:
    """The Claims section's markdown, with the FLOPs of the full-scale configurations."""
    from ..params import ROOT_PARAMS
    flops = full_scale_flops(sorted(ROOT_PARAMS.glob("imagenet100/*.yaml")))
    return "## Claims\n\n" + INTRO + "\n\n" + markdown(
        results, {"efficiency": "; ".join(flops) + "." if flops else ""}, ref)


def any_tested(results: list[dict]) -> bool:
    return any(r["verdict"] != NOT_TESTED for r in results)
