"""The study's four claims, each decided on the one primary comparison a report registers for it
(its params' `primaries`, sslnb.report.primaries) and nothing else: the two configurations'
difference on the metric (sslnb.report.contrasts), Holm-adjusted over the primaries, its
validity checks read on val, and a verdict in sslnb.verdicts' words with the minimum detectable
effect beside it. Every other reading is exploratory (sslnb.report.readings): shown, unadjusted,
labelled, deciding nothing. Nothing here is typed per report: the quotes are the study's, every
number and verdict comes from the runs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from .. import evaluators as ev, methods, verdicts as vd
from ..params import ROOT_PARAMS, resolve
from ..stats import _quantile, holm
from . import readings as rd
from .contrasts import contrast, paired, seed_sd
from .records import Configuration
from .wording import data_description, listing, plural

NOT_TESTED = "not tested"

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


@dataclass
class Power:
    """What a primary could detect: its pairing, seeds, per-seed sd, the adjusted level, the
    minimum detectable effect (80% power) and the seeds a TARGET_MDE would need."""
    paired: bool
    n: int
    seed_sd: float
    level: float
    mde: float
    seeds_for_target: int | None


@dataclass
class Deciding:
    """The primary's difference, its adjusted interval and its unadjusted one."""
    value: float
    low: float
    high: float
    level: float
    p_unadjusted: float
    unadjusted_low: float
    unadjusted_high: float


@dataclass
class PrimaryDoc:
    """A registered primary as the report names it (its configurations by their models)."""
    a: str
    b: str
    metric: str
    budget: str
    direction: int
    delta: float
    why: str


@dataclass
class ClaimResult:
    """One claim: its verdict from its primary (when one is registered), and its readings."""
    claim: str
    quote: str
    short: str
    full_scale: str
    lines: list[str]
    family: int
    verdict: str
    sentence: str
    primary: PrimaryDoc | None = None
    scope: str = ""
    short_scope: str = ""
    mde: float | None = None
    power: Power | None = None
    deciding: Deciding | None = None
    checks: list[vd.Check] = field(default_factory=list)

    @property
    def decided(self) -> bool:
        return self.deciding is not None

    def to_json(self) -> dict:
        """As results.json keeps it (no full-scale prose; what a claim without a decision lacks
        is left out)."""
        doc = dataclasses.asdict(self)
        doc.pop("full_scale")
        if not self.decided:
            for key in ("mde", "power", "deciding", "checks"):
                doc.pop(key)
        return doc


# Validity checks on val --------------------------------------------------------------------
def _val_check(name: str, g: Configuration, what: str, diffs: np.ndarray) -> vd.Check:
    """Passes when the mean per-seed val difference is above 0; states it with its seed
    interval (95%, t on n - 1 df)."""
    mean = float(diffs.mean())
    ci = ""
    if len(diffs) > 1:
        half = _quantile(0.95, len(diffs) - 1) * float(diffs.std(ddof=1)) / math.sqrt(len(diffs))
        ci = f", 95% CI over {len(diffs)} seeds {mean - half:+.1f} to {mean + half:+.1f}"
    return vd.Check(name, mean > 0, f"{g.model}: {what} {mean:+.1f} points on val{ci}")


def learned(g: Configuration) -> vd.Check:
    """A pretrained arm must beat its random-init twin under the probe on val."""
    diffs = np.array([r.val_top1 - r.random_val_top1 for r in g.runs], dtype=np.float64)
    return _val_check(f"{g.model} did not learn at this budget", g,
                      "probe minus its random-init twin's", diffs)


def finetune_raises(g: Configuration, metric: str) -> vd.Check:
    """Fine-tuning must raise the probe it starts from, on val, for a gain to mean anything."""
    k = str(ev.gain_depth(metric))  # eval.json's fine-tuning depths: "0", "1", ..., "all"
    diffs = np.array([r.finetune_val[k] - r.finetune_val["0"] for r in g.runs], dtype=np.float64)
    return _val_check("fine-tuning does not raise the probe it starts from at this size", g,
                      "fine-tuned minus its starting probe", diffs)


FACTOR = {"probe": "objective", "finetune": "objective", "efficiency": "objective",
          "data": "pretraining set"}
FLOPS_TOLERANCE = 0.05
TARGET_MDE = 3.0  # points: the power plan sizes the seeds so every primary detects this


def _objective(g: Configuration) -> str:
    return methods.get(g.method).objective


def untested_because(p: vd.Primary, a: Configuration, b: Configuration) -> str | None:
    """Why the registered pair cannot test the claim (it differs in more than the claim's
    factor, or its budgets do not match), or None."""
    if a.test_set != b.test_set:
        return "the two configurations were tested on different test images"
    other = []
    if a.architecture != b.architecture:
        other.append(f"encoder ({a.architecture} vs {b.architecture})")
    if FACTOR[p.claim] == "objective":
        if _objective(a) == _objective(b):
            return f"both configurations have a {_objective(a)} objective"
        if a.pretrain_images != b.pretrain_images:
            other.append("pretraining set")
    else:
        if a.method != b.method:
            other.append(f"method ({a.method} vs {b.method})")
        if a.pretrain_images == b.pretrain_images:
            return "both configurations pretrain on the same images"
    if other:
        return (f"the pair differs in {listing(other)} besides the {FACTOR[p.claim]} the claim "
                f"tests")
    if p.budget == "steps" and (a.steps, a.batch) != (b.steps, b.batch):
        return (f"the budgets differ: {a.steps:,.0f} steps of {a.batch} images against "
                f"{b.steps:,.0f} of {b.batch}")
    if p.budget == "flops":
        ratio = a.mean["train_flops"] / b.mean["train_flops"]
        if abs(ratio - 1) > FLOPS_TOLERANCE:
            return (f"the training FLOPs differ by {abs(ratio - 1):.0%} (more than "
                    f"{FLOPS_TOLERANCE:.0%}): train one arm to the other's FLOPs")
    return None


@dataclass
class _Plan:
    primary: vd.Primary
    a: Configuration | None
    b: Configuration | None
    why: str | None = None
    interval: object = None
    checks: list[vd.Check] | None = None
    adjusted: object = None


def evaluate_claims(groups: list[Configuration], primaries: list[vd.Primary] = (),
                    named_readings: dict | None = None) -> list[ClaimResult]:
    """Every claim: its registered primary's verdict (Holm-adjusted over the primaries whose
    checks passed), its power, and the exploratory readings of the pairs the report names."""
    by_name = {g.group: g for g in groups}
    plans: dict[str, _Plan] = {}
    for p in vd.family(list(primaries)):
        plan = plans[p.claim] = _Plan(p, by_name.get(p.a), by_name.get(p.b))
        if plan.a is None or plan.b is None:
            plan.why = f"the report has no runs of {p.a if plan.a is None else p.b}"
            continue
        plan.why = untested_because(p, plan.a, plan.b)
        if plan.why:
            continue
        plan.interval = contrast(plan.a, plan.b, p.metric)
        if plan.interval is None:
            plan.why = f"{plan.a.model} or {plan.b.model} has no {p.metric.replace('_', ' ')}"
            continue
        plan.checks = [learned(plan.a), learned(plan.b)]
        if p.metric.startswith("finetune_gain"):
            plan.checks += [finetune_raises(plan.a, p.metric), finetune_raises(plan.b, p.metric)]
    valid = [c for c, pl in plans.items() if pl.checks and all(x.passed for x in pl.checks)]
    for claim, adj in zip(valid, holm([plans[c].interval for c in valid])):
        plans[claim].adjusted = adj
    out = []
    for key in CLAIMS:
        plan = plans.get(key)
        found = rd.of_claim(key, (named_readings or {}).get(key, []), groups)
        primary_sig = (rd.sig(plan.a, plan.b, plan.primary.metric)
                       if plan and plan.a and plan.b else None)
        lines = [r.line() for r in found if r.sig != primary_sig]
        out.append(_decision(key, plan, lines, len(valid)))
    return out


def _decision(key: str, plan: _Plan | None, lines: list[str], family: int) -> ClaimResult:
    """A claim's verdict, sentence, primary, power and scope, from its plan."""
    base = dict(claim=key, quote=CLAIMS[key], short=SHORT[key], full_scale=FULL_SCALE[key],
                lines=lines, family=family)
    if plan is None:
        return ClaimResult(**base, verdict=NOT_TESTED, sentence="Not tested: this report "
                           "registers no primary comparison for it (params primaries).")
    p, a, b = plan.primary, plan.a, plan.b
    doc = PrimaryDoc(a.model if a else p.a, b.model if b else p.b, p.metric, p.budget,
                     p.direction, p.delta, p.why)
    if plan.why:
        v = vd.not_tested(p, plan.why)
        return ClaimResult(**base, verdict=v.word, sentence=v.sentence, primary=doc)
    d = plan.interval
    adjusted = plan.adjusted or d
    v = vd.decide(dataclasses.replace(p, a=a.model, b=b.model), adjusted, plan.checks)
    sd = seed_sd(a, b, p.metric)
    image_var = sum(v_ for v_, df in d.parts if math.isinf(df))
    power = Power(paired(a, b), min(a.n, b.n), sd, adjusted.level, vd.mde(adjusted),
                  vd.seeds_for(TARGET_MDE, sd, image_var, adjusted.level, paired=paired(a, b))
                  if math.isfinite(sd) else None)
    return ClaimResult(
        **base, verdict=v.word, sentence=v.sentence, primary=doc,
        scope=scope([a, b], p.claim), short_scope=scope([a, b], p.claim, short=True),
        mde=v.mde, power=power,
        deciding=Deciding(d.value, adjusted.low, adjusted.high, adjusted.level, d.p_value,
                          d.low, d.high),
        checks=list(plan.checks))


def scope(used: list[Configuration], claim: str, short: bool = False) -> str:
    """What a verdict was decided on: the data, each configuration with its optimizer steps and
    batch, the seeds (and for claim 2 the fine-tuning budget); short, as the abstract says it:
    the models, their steps and the seeds. Empty when nothing decided."""
    if not used:
        return ""
    runs = [f"{g.model} ({g.steps:,.0f} steps of {g.batch} images)" for g in used]
    seeds = sorted({g.n for g in used})
    seeds_text = (f"{seeds[0]} seed{'s' if seeds[0] > 1 else ''} each" if len(seeds) == 1
                  else f"{' or '.join(map(str, seeds))} seeds")
    if short:
        names = listing(list(dict.fromkeys(g.name for g in used)))
        steps_text = listing(list(dict.fromkeys(f"{g.steps:,.0f}" for g in used)))
        return f"{names}, {steps_text} steps, {seeds_text}"
    e = used[0].params["eval"]
    labelled = f"{e['finetune_max_train']:,}" if e["finetune_max_train"] else "all the"
    tuned = (f"; fine-tuned for {plural(e['finetune_epochs'], 'epoch')} on {labelled} labelled "
             f"images" if claim == "finetune" else "")
    images = max(g.pretrain_images for g in used)
    return (f"Decided on {data_description(used[0].params, images)} with {listing(runs)}, "
            f"{seeds_text}{tuned}.")


# The Claims section ------------------------------------------------------------------------
def full_scale_flops(params_files: list) -> list[str]:
    """Training GFLOP per image of full-scale configurations (sslnb.flops), for the efficiency
    claim's full-scale sentence."""
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
    k = ev.gain_depth(metric)
    depth = "every block" if k == "all" else f"the last {plural(k, 'block')}"
    return f"the gain of fine-tuning {depth} over the probe it starts from (test top-1)"


def _primary_line(r: ClaimResult) -> str:
    p = r.primary
    sign = ">" if p.direction > 0 else "<"
    text = (f"*Primary (registered before the build):* {p.a} - {p.b}, "
            f"{metric_words(p.metric)}, {BUDGET_WORDS[p.budget]}; the claim predicts "
            f"{p.a} {sign} {p.b}; equivalence margin +-{p.delta:g} points."
            + (f" Why this design: {p.why.strip()}" if p.why else ""))
    w = r.power
    if w:
        how = ("Paired seed by seed (one encoder, shared seeds)" if w.paired else
               "Unpaired (Welch-Satterthwaite df)")
        text += (f" {how}, {w.n} seeds, read at {vd.percent(w.level)} (Holm over "
                 f"{r.family} primar{'y' if r.family == 1 else 'ies'}); per-seed sd "
                 f"{w.seed_sd:.2f} points; minimum detectable effect {w.mde:.1f} points "
                 f"at 80% power")
        need = w.seeds_for_target
        text += f" ({TARGET_MDE:g} points would need {need} seeds)." if need and need > w.n else "."
    return text


def markdown(results: list[ClaimResult], extra: dict | None = None, ref=None,
             decided: bool = True) -> str:
    """The Claims section's text: each claim quoted, its verdict from its primary, the checks
    and power behind it, and the exploratory readings beside it; a report that decides no claim
    (decided=False) quotes each with its readings and no verdict."""
    parts = []
    for i, r in enumerate(results, 1):
        full = r.full_scale + (f" {extra[r.claim]}" if extra and r.claim in extra else "")
        body = [f"**Claim {i}.** *\"{r.quote}\"*" + (
            f"  \n**Verdict: {r.verdict}.** {r.sentence}" + (f" {r.scope}" if r.scope else "")
            if decided else "")]
        if r.primary:
            body.append(_primary_line(r))
        if r.checks:
            body.append("*Checks on val:* " + "; ".join(
                f"{'passed' if c.passed else 'FAILED'}: {c.numbers}" for c in r.checks) + ".")
        if r.lines:
            body.append("*Exploratory (unadjusted, decide nothing):*\n\n"
                        + "\n".join(f"  - {line}" for line in r.lines))
        body.append(f"*At full scale:* {full}")
        parts.append("\n\n".join(body))
    return "\n\n".join(parts)


def power_table(results: list[ClaimResult]):
    """One row per registered primary: seeds, pairing, per-seed sd, the adjusted level, the
    minimum detectable effect and the seeds a 3-point MDE would need."""
    import pandas as pd
    rows = [{"Claim": f"{i}. {r.short}", "Primary": f"{r.primary.a} - {r.primary.b}",
             "Seeds": r.power.n, "Paired": "yes" if r.power.paired else "no",
             "Per-seed sd": round(r.power.seed_sd, 2), "Level": vd.percent(r.power.level),
             "MDE (points)": round(r.power.mde, 1),
             f"Seeds for {TARGET_MDE:g}": r.power.seeds_for_target or "over 50",
             "Verdict": r.verdict}
            for i, r in enumerate(results, 1) if r.power]
    return pd.DataFrame(rows).style.hide(axis="index") if rows else None


UNDECIDED = ("This report registers no primary comparison, so it decides none of the four "
             "claims (the claims report does: `make report REPORT=claims`). Below, each claim with "
             "the readings of this report that bear on it: exploratory, unadjusted, deciding "
             "nothing.")
SILENT = ("This report registers no primary comparison and names no readings: it bears on none "
          "of the four claims.")


def section(results: list[ClaimResult], ref=None,
            groups: list[Configuration] | None = None) -> str:
    """The Claims section's findings in markdown (04_compare's own cell above says how claims
    are decided), with the FLOPs of the full-scale configurations of the methods this report
    compares (groups; all of them when not given)."""
    files = sorted(ROOT_PARAMS.glob("imagenet100/*.yaml"))
    if groups is not None:
        shown = {g.method for g in groups}
        files = [f for f in files if resolve(f)["method"] in shown]
    flops = full_scale_flops(files)
    extra = {"efficiency": "; ".join(flops) + "." if flops else ""}
    if not any_tested(results):
        return SILENT
    if not any(r.primary for r in results):
        return UNDECIDED + "\n\n" + markdown(results, extra, ref, decided=False)
    return markdown(results, extra, ref)


def any_tested(results: list[ClaimResult]) -> bool:
    """Whether the Claims section has anything to say: a registered primary or a reading."""
    return any(r.primary or r.lines for r in results)
