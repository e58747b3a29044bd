"""The report's tables of configurations, each number printed by one formatter (costs.cell): the
study's columns for our runs, what a reviewer needs beside them, per seed, by objective and
encoder, and what each pretraining cost against what it bought."""
from __future__ import annotations

import yaml

from .. import methods
from ..params import ROOT_PARAMS
from . import learning
from .costs import cell, time_cell
from .records import Configuration, Run, main_groups


def published() -> dict:
    """The published numbers runs are read against (params/published.yaml: data, not code)."""
    return yaml.safe_load((ROOT_PARAMS / "published.yaml").read_text(encoding="utf-8"))


def _ci(g: Configuration, key: str) -> str:
    c = g.ci.get(key)
    return f"{c.low:.1f} to {c.high:.1f}" if c else "not run"


def study_reported():
    """The reproduced study's own table, as it reported it (its ImageNet-100 val split)."""
    import pandas as pd
    return pd.DataFrame([{"Model": r["model"], "Architecture": r["architecture"],
                          "Parameters (M)": f"{r['params_m']:.1f}",
                          "Train time/epoch": r["time_per_epoch"],
                          "ImageNet-100 val top-1 (%)": f"{r['val_top1']:.1f}"}
                         for r in published()["study_table"]]).style.hide(axis="index")


def study_table(groups: list[Configuration]):
    """The study's columns for this report's runs, each accuracy named by our split: test top-1
    (the study's "Val acc" is its held-out set, Kaggle's val.X, which is our test split on
    ImageNet-100; its own numbers stand in study_reported(), under their own heading)."""
    import pandas as pd
    df = pd.DataFrame([{
        "Model": learning.label(g), "Architecture": g.architecture,
        "Parameters (M)": f"{g.mean['encoder_params_m']:.2f}",
        "Train time/epoch (s)": time_cell(g), "Probe train top-1 (%)": cell(g, "train_top1"),
        "Test top-1 (%)": cell(g, "test_top1"), "95% CI": _ci(g, "test_top1"),
        "Seeds": g.n} for g in groups])
    return df.style.hide(axis="index")


def more_table(groups: list[Configuration]):
    """What a reviewer needs beside it: kNN, the random-init twins, fine-tuning, cost."""
    import pandas as pd
    rows = []
    for g in groups:
        rows.append({"Model": learning.label(g), "Top-5 (%)": cell(g, "test_top5"),
                     "kNN (%)": cell(g, "knn_top1"), "kNN 95% CI": _ci(g, "knn_top1"),
                     "Random init, probe (%)": cell(g, "random_test_top1"),
                     "Random init, kNN (%)": cell(g, "random_knn_top1"),
                     "Fine-tune (%)": cell(g, "finetune_top1"),
                     "Fine-tune, random init (%)": cell(g, "random_finetune_top1"),
                     "Epochs": f"{g.mean['epochs']:g}",
                     "Images/s": time_cell(g, "isolated_images_per_s"), "Device": g.device})
    return pd.DataFrame(rows).style.hide(axis="index")


PER_SEED = {"model": "Model", "seed": "Seed", "run": "Run", "test_top1": "Probe (%)",
            "knn_top1": "kNN (%)", "random_test_top1": "Random init, probe (%)",
            "finetune_top1": "Fine-tune (%)", "val_top1": "Probe on val (%)",
            "isolated_epoch_time_s": "Time/epoch alone (s)"}


def per_seed_table(rows: list[Run]):
    import pandas as pd
    df = pd.DataFrame([{t: getattr(r, k) for k, t in PER_SEED.items()} for r in rows])
    return df.style.hide(axis="index").format(precision=1, na_rep="not run")


def by_method_and_encoder(groups: list[Configuration]) -> dict[tuple, Configuration]:
    """{(method, architecture): configuration} of the main configurations; of several schedules
    of one method on one encoder (a run trained to another's FLOPs), the longest."""
    out: dict[tuple, Configuration] = {}
    for g in main_groups(groups):
        key = (g.method, g.architecture)
        if key not in out or g.steps > out[key].steps:
            out[key] = g
    return out


def objective_by_encoder(groups: list[Configuration]):
    """Linear-probe test top-1 with its 95% CI, one row per method (grouped by the kind of
    objective its file declares: a display, never a pairing), encoder as columns."""
    import pandas as pd
    table = by_method_and_encoder(groups)
    objective = lambda m: methods.get(m).objective  # noqa: E731
    encoders_ = sorted({enc for _, enc in table})
    rows = []
    for m in sorted({m for m, _ in table}, key=lambda m: (objective(m), m)):
        row = {"Objective": objective(m), "Method": methods.get(m).title}
        for enc in encoders_:
            g = table.get((m, enc))
            ci = g.ci.get("test_top1") if g else None
            row[enc] = (f"{ci.value:.1f} ({ci.low:.1f} to {ci.high:.1f})" + (
                "" if learning.learned(g) else f", {learning.NOT_LEARNED}") if ci else "not run")
        rows.append(row)
    return pd.DataFrame(rows).style.hide(axis="index")


def efficiency_rows(groups: list[Configuration]) -> list[dict]:
    """The cost of each pretraining and the accuracy it bought (compute in the unit that makes
    the largest run at least 1: TFLOP, PFLOP or EFLOP)."""
    # a run that did not learn bought nothing to divide by its cost: left out
    main = [g for g in main_groups(groups) if learning.learned(g)]
    if not main:
        return []
    largest = max(g.mean["train_flops"] for g in main)
    scale, unit = next(((s, u) for s, u in ((1e18, "EFLOP"), (1e15, "PFLOP"))
                        if largest >= s), (1e12, "TFLOP"))
    rows = []
    for g in main:
        mean = g.mean
        gain = mean["test_top1"] - mean["random_test_top1"]
        compute = mean["train_flops"] / scale
        rows.append({"Model": g.model, "Time/epoch alone (s)": time_cell(g),
                     "Images/s alone": time_cell(g, "isolated_images_per_s"),
                     "Training GFLOP/image": round(mean["train_flops_per_image"] / 1e9, 2),
                     f"Pretraining {unit}": round(compute, 2),
                     "Probe (%)": f"{mean['test_top1']:.1f}",  # as every table prints it
                     f"Points over random init per {unit}":
                         round(gain / compute, 2) if compute else "n/a"})
    return rows


def efficiency_table(groups: list[Configuration]):
    import pandas as pd
    return pd.DataFrame(efficiency_rows(groups)).style.hide(axis="index").format(precision=2)
