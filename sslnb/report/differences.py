"""Every difference the report states, each with its interval, and the sentences the Results
write from them (none typed in): each model against its random-init twin and fine-tuning against
the probe (paired seed by seed), model against model (each model's seeds on their own, only on
the same test images). A model that did not learn is compared with its twin, never ranked."""
from __future__ import annotations

from dataclasses import dataclass

from .. import evaluators
from ..evaluators import Evaluator
from ..stats import Interval, difference_interval
from ..stats import compare as compare_sentence
from . import learning, wording
from .records import Configuration, interval_json, main_groups
from .tables import published

VS_RANDOM_INIT, FINETUNE_VS_PROBE, MODEL_VS_MODEL = (
    "vs_random_init", "finetune_vs_probe", "model_vs_model")
INTERVALS_NOTE = (
    "Intervals are 95% confidence intervals over the test images and, with several seeds, over "
    "seeds: the test images every seed shares and what each seed adds on its own are separate "
    "variance components, the seeds' with Student's t on n - 1 degrees of freedom, so three "
    "seeds widen an interval as much as three seeds warrant. With one seed an interval covers "
    "which test images were drawn, not how another pretraining run would land. A model and its "
    "random-init twin (and a run's fine-tuning and probe) are paired seed by seed; two models "
    "share only the test images, so each side's seeds vary on their own. These intervals are "
    "descriptive and not adjusted for multiplicity; the differences that decide the Claims are "
    "Holm-adjusted as one family (said there). Tables show mean ± sd over seeds (n = seeds).")
UNDER = {"probe": "under the linear probe", "knn": "under kNN", "finetune": "after fine-tuning"}


@dataclass
class Difference:
    kind: str  # VS_RANDOM_INIT, FINETUNE_VS_PROBE or MODEL_VS_MODEL
    a: str
    b: str
    what: str
    interval: Interval
    sentence: str

    def to_json(self) -> dict:
        return {"kind": self.kind, "a": self.a, "b": self.b, "what": self.what,
                "interval": interval_json(self.interval), "sentence": self.sentence}


def differences(groups: list[Configuration]) -> list[Difference]:
    """The smaller pretraining sets of a data-scale sweep answer only the data claim: left out."""
    out = []
    groups = main_groups(groups)

    def add(kind, a_name, b_name, a, b, what, paired):
        d = difference_interval(a, b, paired_seeds=paired)
        out.append(Difference(kind, a_name, b_name, what, d,
                              compare_sentence(a_name, b_name, d, what)))

    for g in groups:
        c = g.correct
        for ev, what in UNDER.items():
            mine, twin = Evaluator("pretrained", ev).key, Evaluator("random_init", ev).key
            if mine in c and twin in c:
                add(VS_RANDOM_INIT, g.model, "its random-init twin", c[mine], c[twin], what, True)
        if evaluators.finetune("all").key in c:
            start = evaluators.finetune(0).key  # the probe on fine-tuning's labelled images
            add(FINETUNE_VS_PROBE, f"{g.model} fine-tuned",
                f"{g.model} linear probe" + (" on the same labelled images" if start in c else ""),
                c[evaluators.finetune("all").key],
                c[start if start in c else evaluators.probe().key], "", True)
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            if a.test_set != b.test_set:
                continue  # different test sets: not comparable
            for ev, what in UNDER.items():
                key = Evaluator("pretrained", ev).key
                if key in a.correct and key in b.correct:
                    add(MODEL_VS_MODEL, a.model, b.model, a.correct[key], b.correct[key], what,
                        False)
    return out


def headline(d: Difference) -> bool:
    """The differences the Results state in prose: every model against its random-init twin
    (probe, fine-tuning) and model against model under the probe; the rest (kNN, fine-tuning
    between models, fine-tuning against the probe) are listed in the appendix."""
    return (d.kind == VS_RANDOM_INIT and d.what != UNDER["knn"]) or (
        d.kind == MODEL_VS_MODEL and d.what == UNDER["probe"])


def failed_models(groups: list[Configuration]) -> set[str]:
    return {g.model for g in groups if not learning.learned(g)}


def stated(d: Difference, failed: set[str]) -> bool:
    """Whether the Results state a difference in prose: a headline, and no ranking of a model
    that did not learn (its comparison with its own twin is stated; the others are listed)."""
    return headline(d) and not (d.kind == MODEL_VS_MODEL and {d.a, d.b} & failed)


def other_differences(diffs: list[Difference], groups: list[Configuration] = ()):
    import pandas as pd
    failed = failed_models(groups)
    return pd.DataFrame([{"Difference": d.sentence} for d in diffs if not stated(d, failed)]
                        ).style.hide(axis="index")


def observations(groups: list[Configuration], diffs: list[Difference]) -> list[str]:
    """Sentences derived from the numbers and their intervals: none is typed in."""
    failed = failed_models(groups)
    out = [d.sentence for d in diffs if stated(d, failed) and d.kind == VS_RANDOM_INIT]
    out += [d.sentence for d in diffs if stated(d, failed) and d.kind == MODEL_VS_MODEL]
    out += [learning.sentence(g) for g in groups if not learning.learned(g)]
    groups = main_groups(groups)
    for g in groups:
        gap = g.mean["train_top1"] - g.mean["test_top1"]
        out.append(f"{g.model}: the probe's train accuracy is {gap:.1f} points above its test "
                   f"accuracy.")
        for a in published()["anchors"]:
            if (g.source, g.method, g.encoder) == (a["source"], a["method"], a["encoder"]):
                ci = g.ci["test_top1"]
                out.append(f"Published anchor for {g.model} on {a['source']}: {a['top1']:.1f}% "
                           f"({a['where']}); here {ci.text('%')}, "
                           f"{wording.plural(g.mean['epochs'], 'epoch')}.")
    groups = [g for g in groups if learning.learned(g)]  # a failure is not ranked
    if len(groups) >= 2 and all("isolated_images_per_s" in g.mean for g in groups):
        fastest = max(groups, key=lambda g: g.mean["isolated_images_per_s"])
        out.append(f"Fastest pretraining: {fastest.model} "
                   f"({fastest.mean['isolated_images_per_s']:.0f} images/s on {fastest.device}).")
    return out
