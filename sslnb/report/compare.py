"""The comparison: tables, intervals and the observations written from the numbers and their
intervals (no hard-coded claims)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from .. import methods
from ..errors import RunError
from . import claims, learning, paper, wording
from .costs import CLOCK_NOTE, time_cell  # noqa: F401  (CLOCK_NOTE: the notebook's captions)
from .costs import cell as _cell
from ..stats import accuracy_interval, difference_interval, mean_sd
from ..stats import compare as compare_sentence

def published() -> dict:
    """The published numbers runs are read against (params/published.yaml: data, not code)."""
    from ..params import ROOT_PARAMS
    return yaml.safe_load((ROOT_PARAMS / "published.yaml").read_text(encoding="utf-8"))


def _need(path: Path) -> Path:
    if not path.is_file():
        raise RunError(f"'{path}' is missing: the run has not been pretrained and evaluated. "
                       f"Run `python -m sslnb pretrain` and `python -m sslnb evaluate` for it, or "
                       f"build the whole report with `make report`.")
    return path


def _json(path: Path) -> dict:
    return json.loads(_need(path).read_text())


def relative(path: str) -> str:
    """A path relative to the repository where it lies inside it (params files as named)."""
    p = Path(path).resolve()
    root = Path(__file__).resolve().parents[2]
    return str(p.relative_to(root)) if p.is_relative_to(root) else str(p)


def _params_file(item) -> str:
    """A report run's params file, as `relative` names it."""
    return relative(item["params"]) if isinstance(item, dict) and item.get("params") else ""


def collect(runs: list) -> list[dict]:
    """One flat record per run (a run dir, or a run of a report spec: its 'group' gathers the
    seeds of one configuration), from its params, summary, model sizes, environment and eval.
    Accuracies are on `test` unless the key says `val`."""
    rows = []
    for item in runs:
        run = Path(item["run_dir"] if isinstance(item, dict) else item)
        p = yaml.safe_load(_need(run / "params.yaml").read_text())
        s, m, e = _json(run / "summary.json"), _json(run / "model.json"), _json(run / "eval.json")
        env = _json(run / "env.json")
        pre, rnd = e["pretrained"], e["random_init"]
        method = methods.get(p)
        architecture = method.architecture(p)
        curve = e.get("curve", [])
        flops = (curve[-1]["train_flops"] / curve[-1]["images_seen"] if curve and
                 curve[-1]["images_seen"] else methods.train_flops_per_image(p))
        isolated = s.get("isolated_epoch_time_s")  # absent in runs that predate sslnb.clock
        rows.append({
            "run": run.name, "run_dir": str(run),
            "group": item.get("group", run.name) if isinstance(item, dict) else run.name,
            "params_file": _params_file(item),
            "seed": p["seed"], "model": f"{method.title} {architecture.split(',')[0]}",
            "method": p["method"], "source": p["data"]["source"], "encoder": p["model"]["encoder"],
            "architecture": architecture, "encoder_params_m": m["encoder_params"] / 1e6,
            "steps": s["steps"], "epoch_time_s": s["epoch_time_s"],
            "pretrain_time_s": s["epoch_time_s"] * s["epochs"],
            "isolated_epoch_time_s": isolated, "epochs_alone": s.get("epochs_alone", 0),
            "epochs_contended": s.get("epochs_contended", 0),
            "isolated_images_per_s": (s["steps"] * s["images_per_step"] / s["epochs"] / isolated
                                      if isolated else None),
            "train_top1": pre["probe_train_top1"], "val_top1": pre["probe_val_top1"],
            "test_top1": pre["probe_test_top1"], "test_top5": pre["probe_test_top5"],
            "knn_top1": pre["knn_test_top1"], "random_test_top1": rnd["probe_test_top1"],
            "random_knn_top1": rnd["knn_test_top1"], "random_val_top1": rnd["probe_val_top1"],
            "finetune_top1": pre.get("finetune_test_top1"),
            "random_finetune_top1": rnd.get("finetune_test_top1"),
            "epochs": s["epochs"], "images_per_s": s["images_per_s"],
            "peak_mem_mb": s["peak_mem_mb"], "device": s["device"],
            "git_commit": env.get("git_commit"), "curve": curve,
            "pretrain_images": _json(run / "data.json")["images"],
            "train_flops_per_image": flops, "train_flops": flops * s["steps"] * s["images_per_step"],
            "finetune": {k: v["test_top1"] for k, v in pre.get("finetune", {}).items()},
            "random_finetune": {k: v["test_top1"] for k, v in rnd.get("finetune", {}).items()},
            "finetune_val": {k: v["val_top1"] for k, v in pre.get("finetune", {}).items()},
            "params": p,
        })
    return rows


# record key -> the evaluator whose saved test predictions give its interval
EVALUATORS = {"test_top1": "pretrained/probe", "knn_top1": "pretrained/knn",
              "finetune_top1": "pretrained/finetune", "random_test_top1": "random_init/probe",
              "random_knn_top1": "random_init/knn", "random_finetune_top1": "random_init/finetune"}
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


def predictions_of(run_dir: Path | str) -> dict:
    return _json(Path(run_dir) / "predictions.json")


def test_set_of(preds: dict, run: str) -> str:
    """The fingerprint of the test images (and labels) a run's predictions were made on."""
    if not preds.get("test_set"):
        raise RunError(f"'{run}/predictions.json' does not say which test set it was made on (no "
                       f"'test_set' fingerprint: an older sslnb wrote it). Re-evaluate the run "
                       f"(python -m sslnb evaluate --run {run} --force) before comparing it.")
    return preds["test_set"]


def summarise(rows: list[dict]) -> list[dict]:
    """One record per configuration (its seeds together): mean, sd and n of every number, the
    interval of every accuracy (over images and seeds), and the test correctness differences
    are computed on. Every accuracy on test is recomputed from the saved predictions, so a number
    is printed the same wherever it appears."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(r["group"], []).append(r)
    out = []
    for name, members in groups.items():
        members = sorted(members, key=lambda r: r["seed"])
        preds = [predictions_of(r["run_dir"]) for r in members]
        test_sets = {test_set_of(q, r["run_dir"]) for q, r in zip(preds, members)}
        if len(test_sets) != 1:
            raise RunError(f"the seeds of '{name}' were tested on different test sets "
                           f"({', '.join(sorted(test_sets))}); rebuild them with the same data "
                           f"params.")
        labels = np.asarray(preds[0]["labels"])
        keys = set.intersection(*(set(q["predictions"]) for q in preds))
        correct = {k: np.stack([np.asarray(q["predictions"][k]) == labels for q in preds])
                   for k in sorted(keys)}
        for i, m in enumerate(members):  # one source for every test accuracy
            for key, ev in EVALUATORS.items():
                if ev in correct:
                    m[key] = 100.0 * float(correct[ev][i].mean())
        numeric = [k for k, v in members[0].items() if isinstance(v, (int, float))
                   and not isinstance(v, bool) and all(m.get(k) is not None for m in members)]
        stats_ = {k: mean_sd([m[k] for m in members]) for k in numeric if k != "seed"}
        ci = {k: accuracy_interval(correct[ev]) for k, ev in EVALUATORS.items() if ev in correct}
        out.append({**{k: members[0][k] for k in ("group", "model", "method", "source", "encoder",
                                                  "architecture", "device", "params_file")},
                    "n": len(members), "seeds": [m["seed"] for m in members],
                    "test_set": test_sets.pop(),
                    # an accuracy's mean is its interval's centre, to the last bit
                    "mean": {**{k: v[0] for k, v in stats_.items()},
                             **{k: iv.value for k, iv in ci.items()}},
                    "sd": {k: v[1] for k, v in stats_.items()},
                    "ci": ci,
                    "labels": labels, "correct": correct, "runs": members,
                    "params": members[0]["params"], "curve": _curve(members, correct)})
    for sweep in claims.sweeps(out):  # name the smaller pretraining sets of a data-scale sweep
        for g in sweep:
            if g["mean"]["pretrain_images"] < sweep[-1]["mean"]["pretrain_images"]:
                twins = [h for h in sweep
                         if h["mean"]["pretrain_images"] == g["mean"]["pretrain_images"]]
                g["model"] += f", {g['mean']['pretrain_images']:,.0f} pretraining images" + (
                    f", {claims.steps(g):,.0f} steps" if len(twins) > 1 else "")
    for g in out:  # one model trained for several schedules (one to another's FLOPs): name each
        same = [h for h in out if h["model"] == g["model"]]
        if len({claims.steps(h) for h in same}) == len(same) > 1:
            for h in same:
                h["model_steps"] = f", {claims.steps(h):,.0f} steps"
    for g in out:
        g["model"] += g.pop("model_steps", "")
        g["learning"] = learning.check(g)
    return out


def same_test_set(a: dict, b: dict) -> bool:
    """Two configurations are compared only on the same test images (their fingerprints)."""
    return a["test_set"] == b["test_set"]


def _curve(members: list[dict], correct: dict) -> list[dict]:
    """Across pretraining: each snapshot's x values (mean over seeds) and probe/kNN intervals."""
    points = []
    for i, pt in enumerate(members[0]["curve"]):
        kind = pt["kind"]  # the evaluator whose test predictions this point is
        if f"{kind}/probe" not in correct:
            continue
        xs = {k: float(np.mean([m["curve"][i][k] for m in members]))
              for k in ("epoch", "images_seen", "train_flops", "train_seconds")
              if all(m["curve"][i].get(k) is not None for m in members)}
        points.append({"step": pt["step"], "kind": kind, **xs,
                       "probe": accuracy_interval(correct[f"{kind}/probe"]),
                       "knn": accuracy_interval(correct[f"{kind}/knn"])})
    return points


def differences(groups: list[dict]) -> list[dict]:
    """Every difference the report states, each with its interval: pretrained vs random init
    (probe, kNN, fine-tuning) and fine-tuning vs probe, paired seed by seed (the same runs);
    model vs model, each model's seeds on their own, only on the same test set (the smaller
    pretraining sets of a data-scale sweep answer only the data claim)."""
    out = []
    groups = claims.main_groups(groups)

    def add(kind, a_name, b_name, a, b, what, paired):
        d = difference_interval(a, b, paired_seeds=paired)
        out.append({"kind": kind, "a": a_name, "b": b_name, "what": what, "interval": d,
                    "sentence": compare_sentence(a_name, b_name, d, what)})

    for g in groups:
        c = g["correct"]
        for ev, what in (("probe", "under the linear probe"), ("knn", "under kNN"),
                         ("finetune", "after fine-tuning")):
            if f"pretrained/{ev}" in c and f"random_init/{ev}" in c:
                add("vs_random_init", g["model"], "its random-init twin", c[f"pretrained/{ev}"],
                    c[f"random_init/{ev}"], what, True)
        if "pretrained/finetune" in c:
            start = "pretrained/finetune_k0" in c  # the probe on fine-tuning's labelled images
            add("finetune_vs_probe", f"{g['model']} fine-tuned",
                f"{g['model']} linear probe" + (" on the same labelled images" if start else ""),
                c["pretrained/finetune"], c["pretrained/finetune_k0" if start else
                                            "pretrained/probe"], "", True)
    for i, a in enumerate(groups):
        for b in groups[i + 1:]:
            if not same_test_set(a, b):
                continue  # different test sets: not comparable
            for ev, what in (("probe", "under the linear probe"), ("knn", "under kNN"),
                             ("finetune", "after fine-tuning")):
                key = f"pretrained/{ev}"
                if key in a["correct"] and key in b["correct"]:
                    add("model_vs_model", a["model"], b["model"], a["correct"][key],
                        b["correct"][key], what, False)
    return out


def _ci(g: dict, key: str) -> str:
    c = g["ci"].get(key)
    return f"{c.low:.1f} to {c.high:.1f}" if c else "not run"


def study_reported():
    import pandas as pd
    return pd.DataFrame([{"Model": r["model"], "Architecture": r["architecture"],
                          "Parameters (M)": f"{r['params_m']:.1f}",
                          "Train time/epoch": r["time_per_epoch"],
                          "ImageNet-100 val top-1 (%)": f"{r['val_top1']:.1f}"}
                         for r in published()["study_table"]]).style.hide(axis="index")


def study_table(groups: list[dict]):
    """The study's columns for this report's runs, each accuracy named by our split: test top-1
    (the study's "Val acc" is its held-out set, Kaggle's val.X, which is our test split on
    ImageNet-100; its own numbers stand in study_reported(), under their own heading)."""
    import pandas as pd
    df = pd.DataFrame([{
        "Model": learning.label(g), "Architecture": g["architecture"],
        "Parameters (M)": f"{g['mean']['encoder_params_m']:.2f}",
        "Train time/epoch (s)": time_cell(g), "Probe train top-1 (%)": _cell(g, "train_top1"),
        "Test top-1 (%)": _cell(g, "test_top1"), "95% CI": _ci(g, "test_top1"),
        "Seeds": g["n"]} for g in groups])
    return df.style.hide(axis="index")


def more_table(groups: list[dict]):
    """What a reviewer needs beside it: kNN, the random-init twins, fine-tuning, cost."""
    import pandas as pd
    rows = []
    for g in groups:
        rows.append({"Model": learning.label(g), "Top-5 (%)": _cell(g, "test_top5"),
                     "kNN (%)": _cell(g, "knn_top1"), "kNN 95% CI": _ci(g, "knn_top1"),
                     "Random init, probe (%)": _cell(g, "random_test_top1"),
                     "Random init, kNN (%)": _cell(g, "random_knn_top1"),
                     "Fine-tune (%)": _cell(g, "finetune_top1"),
                     "Fine-tune, random init (%)": _cell(g, "random_finetune_top1"),
                     "Epochs": f"{g['mean']['epochs']:g}",
                     "Images/s": time_cell(g, "isolated_images_per_s"), "Device": g["device"]})
    return pd.DataFrame(rows).style.hide(axis="index")


def per_seed_table(rows: list[dict]):
    import pandas as pd
    cols = {"model": "Model", "seed": "Seed", "run": "Run", "test_top1": "Probe (%)",
            "knn_top1": "kNN (%)", "random_test_top1": "Random init, probe (%)",
            "finetune_top1": "Fine-tune (%)", "val_top1": "Probe on val (%)",
            "isolated_epoch_time_s": "Time/epoch alone (s)"}
    df = pd.DataFrame([{t: r.get(k) for k, t in cols.items()} for r in rows])
    return df.style.hide(axis="index").format(precision=1, na_rep="not run")


def headline(d: dict) -> bool:
    """The differences the Results state in prose: every model against its random-init twin
    (probe, fine-tuning) and model against model under the probe; the rest (kNN, fine-tuning
    between models, fine-tuning against the probe) are listed in the appendix."""
    return (d["kind"] == "vs_random_init" and d["what"] != "under kNN") or (
        d["kind"] == "model_vs_model" and d["what"] == "under the linear probe")


def failed_models(groups: list[dict]) -> set[str]:
    return {g["model"] for g in groups if not learning.learned(g)}


def stated(d: dict, failed: set[str]) -> bool:
    """Whether the Results state a difference in prose: a headline, and no ranking of a model
    that did not learn (its comparison with its own twin is stated; the others are listed)."""
    return headline(d) and not (d["kind"] == "model_vs_model" and {d["a"], d["b"]} & failed)


def other_differences(diffs: list[dict], groups: list[dict] = ()):
    import pandas as pd
    failed = failed_models(groups)
    return pd.DataFrame([{"Difference": d["sentence"]} for d in diffs if not stated(d, failed)]
                        ).style.hide(axis="index")


def observations(groups: list[dict], diffs: list[dict]) -> list[str]:
    """Sentences derived from the numbers and their intervals: none is typed in."""
    failed = failed_models(groups)
    out = [d["sentence"] for d in diffs if stated(d, failed) and d["kind"] == "vs_random_init"]
    out += [d["sentence"] for d in diffs if stated(d, failed) and d["kind"] == "model_vs_model"]
    out += [learning.sentence(g) for g in groups if not learning.learned(g)]
    groups = claims.main_groups(groups)
    for g in groups:
        gap = g["mean"]["train_top1"] - g["mean"]["test_top1"]
        out.append(f"{g['model']}: the probe's train accuracy is {gap:.1f} points above its test "
                   f"accuracy.")
        for a in published()["anchors"]:
            if (g["source"], g["method"], g["encoder"]) == (a["source"], a["method"],
                                                              a["encoder"]):
                ci = g["ci"]["test_top1"]
                out.append(f"Published anchor for {g['model']} on {a['source']}: {a['top1']:.1f}% "
                           f"({a['where']}); here {ci.text('%')}, {wording.plural(g['mean']['epochs'], 'epoch')}.")
    groups = [g for g in groups if learning.learned(g)]  # a failure is not ranked
    if len(groups) >= 2 and all("isolated_images_per_s" in g["mean"] for g in groups):
        fastest = max(groups, key=lambda g: g["mean"]["isolated_images_per_s"])
        out.append(f"Fastest pretraining: {fastest['model']} "
                   f"({fastest['mean']['isolated_images_per_s']:.0f} "
                   f"images/s on {fastest['device']}).")
    return out


def write_results(groups: list[dict], diffs: list[dict], rows: list[dict],
                  results_dir: Path | str, primaries: list | None = None) -> Path:
    """results.json (per configuration: mean, sd, n, intervals; every stated difference; every
    run) and results_per_seed.csv beside the report."""
    import csv
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    iv = lambda c: {"value": c.value, "low": c.low, "high": c.high, "level": c.level}  # noqa: E731
    smaller = {id(g) for g in claims.smaller_sets(groups)}
    largest = max(groups, key=lambda g: g["mean"]["pretrain_images"])
    doc = {"note": INTERVALS_NOTE, "split": "test",
           "data": {"description": wording.data_description(largest["params"],
                                                          largest["mean"]["pretrain_images"]),
                    "test_images": len(groups[0]["labels"]),
                    "classes": len(np.unique(groups[0]["labels"])),
                    "device": " and ".join(sorted({g["device"] for g in groups}))},
           "configurations": [{
               "group": g["group"], "model": g["model"], "architecture": g["architecture"],
               "sweep_smaller": id(g) in smaller, "learning": g["learning"],
               "n_seeds": g["n"], "seeds": g["seeds"], "mean": g["mean"], "sd": g["sd"],
               "ci": {k: iv(c) for k, c in g["ci"].items()},
               "curve": [{**{k: v for k, v in pt.items() if k not in ("probe", "knn")},
                          "probe": iv(pt["probe"]), "knn": iv(pt["knn"])} for pt in g["curve"]]}
               for g in groups],
           "differences": [{k: (iv(v) if k == "interval" else v) for k, v in d.items()}
                           for d in diffs],
           # only a report that registers primaries decides claims (one voice across reports)
           "claims": [{k: v for k, v in r.items() if k != "full_scale"}
                      for r in claims.evaluate_claims(groups, primaries)] if primaries else [],
           "runs": [{k: v for k, v in r.items() if k not in ("curve", "params")} for r in rows]}
    (results_dir / "results.json").write_text(json.dumps(doc, indent=2))
    keys = [k for k in rows[0] if not isinstance(rows[0][k], (list, dict))]
    with open(results_dir / "results_per_seed.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows({k: r[k] for k in keys} for r in rows)
    return results_dir / "results.json"


def _step_row(r: dict, source: str) -> dict:
    study = published()["study_speed"].get(r["encoder"]) if r["image_size"] == 224 else None
    ips = r["images_per_s"]["with_augmentation"]
    return {"file": source, "device": r["device"], "encoder": r["encoder"],
            "image_size": r["image_size"], "what": (
        f"train step {r['encoder']} {r['image_size']}px batch {r['batch_size']} "
        f"({r['precision']}{', compiled' if r.get('compile') else ''})"),
            "images/s": round(ips, 1),
            "figure": (f"resident tensors {r['images_per_s']['resident_tensors']:.0f}/s "
                       f"(augmented {100 * r['augmented_vs_resident']:.0f}% of it, augmentation "
                       f"{100 * r['augmentation_share']:.1f}% of a step); MFU "
                       f"{100 * r['mfu']:.1f}% of a measured {r['matmul_peak_tflops']:.3g} "
                       f"TFLOP/s matmul peak" + (
                           f", {100 * r['mfu_spec']:.1f}% of the datasheet's "
                           f"{r['spec_peak_tflops']:.4g}" if r.get("mfu_spec") else "")),
            "study images/s": study, "x study": round(ips / study, 1) if study else None}


def performance(bench_dir: Path | str) -> list[dict]:
    """One row per measurement in logs/bench/*.json (CPU and GPU), hardware named, with the
    study's images/s beside the configurations it trained."""
    rows = []
    for f in sorted(Path(bench_dir).glob("gpu_check_*.jsonl")):  # one line per finished item
        for line in f.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if r.get("benchmark") == "train_step" and r.get("status") == "ok":
                rows.append(_step_row(r, f.name))
    for f in sorted(Path(bench_dir).glob("*.json")):
        try:
            r = json.loads(f.read_text())
        except ValueError:
            continue
        kind, base = r.get("benchmark"), {"file": f.name, "device": r.get("device", r.get("gpu"))}
        if kind == "train_step":
            rows.append(_step_row(r, f.name))
        elif kind == "simclr_view_augmentation":
            ips = r["images_per_s"]
            rows.append({**base, "image_size": r["image_size"], "what": f"SimCLR view augmentation {r['image_size']}px",
                         "images/s": round(ips["batched"], 1),
                         "figure": f"{r['speedup']:.1f}x torchvision.transforms.v2 per sample "
                                   f"({ips['torchvision_v2_per_sample']:.0f}/s)"})
        elif kind == "pretrain_loop_overhead":
            for m, v in r["results"].items():
                rows.append({**base, "encoder": v["encoder"],
                             "what": f"full loop vs bare step, {m} {v['encoder']}",
                             "images/s": round(v["full_loop_images_per_s"], 1),
                             "figure": f"loop overhead {100 * v['overhead']:+.1f}%"})
        elif kind == "data_feeding_224px":
            e = r["epoch_images_per_s"]
            rows.append({**base, "image_size": 224, "what": f"feeding 224px from JPEGs, {r['method_augmentation']} "
                                         f"augmentation, {r['workers']} workers",
                         "images/s": round(e["cache_feed_for_gpu"], 1),
                         "figure": (f"cache feed {r['speedup_gpu_training_feed']}x ImageFolder+PIL "
                                    f"DataLoader ({e['imagefolder_pil_dataloader']:.0f}/s); CPU-only "
                                    f"{r['speedup_cpu_only_training']}x; cache built at "
                                    f"{r['cache_build_images_per_s']:.0f}/s")})
    return rows


def performance_table(bench_dir: Path | str, groups: list[dict] | None = None):
    """The benchmarks of this report's own configurations and hardware: rows whose encoder,
    image size and device are those of its runs (all rows without groups)."""
    import pandas as pd
    rows = performance(bench_dir)
    if groups is not None:
        encoders_ = {g["encoder"] for g in groups}
        sizes = {g["params"]["data"]["image_size"] for g in groups}
        devices = {g["device"] for g in groups}
        rows = [r for r in rows if r.get("encoder", next(iter(encoders_))) in encoders_
                and r.get("image_size", next(iter(sizes))) in sizes and r["device"] in devices]
    cols = ["device", "what", "images/s", "figure", "study images/s", "x study"]
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    df = df.dropna(axis=1, how="all")
    return df.style.hide(axis="index").format(precision=1, na_rep="")


def limitations(groups: list[dict]) -> list[str]:
    """What the report cannot say, from what it contains."""
    out = []
    seeds = sorted({g["n"] for g in groups})
    if seeds == [1]:
        out.append("One seed per configuration: the intervals cover which test images were drawn, "
                   "not run-to-run variation of pretraining (`seeds: [0, 1, 2]` in the report "
                   "params repeats every run), so a rebuild on other hardware can land outside "
                   "them.")
    else:
        out.append(f"{' or '.join(map(str, seeds))} seeds per configuration: the seed part of each "
                   f"interval takes Student's t with n - 1 degrees of freedom, which is why the "
                   f"intervals are wide; more seeds narrow them.")
    out.append("Reproducing: rebuilt on the same hardware with the same library versions, every "
               "run reproduces bit for bit (a run stopped and resumed from any checkpoint ends with "
               "the same weights as one that never stopped: tests/test_resume.py). On another CPU "
               "or GPU, or other versions, the math libraries round differently and a run drifts "
               "like another seed: expect numbers inside the intervals over seeds, not the same "
               "digits.")
    if any(g["source"] == "shapes" for g in groups):
        out.append("The embedded `shapes` data and the CPU-sized schedules are far from "
                   "ImageNet-scale pretraining, and the demo's data difficulty and recipes were "
                   "chosen on `val` for short schedules; they show the pipeline and the direction "
                   "of effects, not the published numbers. The study's configurations run with "
                   "`make report REPORT=imagenet100 DATA=/path/to/imagenet100` on a GPU.")
    main = claims.main_groups(groups)
    missing = [g["model"] for g in main if "finetune_top1" not in g["mean"]]
    tuned = [g for g in main if "finetune_top1" in g["mean"]]
    if missing:
        out.append(f"Fine-tuning was not run for {wording.listing(missing)} "
                   f"(eval.finetune_epochs: 0): this report does not test whether fine-tuning "
                   f"changes their ranking.")
    if tuned:
        e = tuned[0]["params"]["eval"]
        out.append(f"Fine-tuning is short ({wording.plural(e['finetune_epochs'], 'epoch')}"
                   + (f" on {e['finetune_max_train']:,} labelled images" if e["finetune_max_train"]
                      else "") + ", without mixup or cutmix): it says little about how each "
                   "method fine-tunes at a full budget.")
    sweeps = claims.sweeps(groups)
    if any(claims.steps(g) < claims.steps(claims.full_set(s)) for s in sweeps for g in s):
        out.append("Some data-scale runs train a smaller pretraining set for the same epochs as "
                   "the full one, so it also gets fewer optimizer steps: those comparisons do not "
                   "separate less data from less compute (shown, labelled; only equal-step "
                   "comparisons decide the data claim).")
    out.append("Random-init twins use the same architecture and initialisation seed, never trained "
               "(ResNet BatchNorm statistics at their initial values)" + (
                   "; the linear probe uses SGD rather than the protocol's LARS because its "
                   "batches are small (see docs/protocol.md)." if all(
                       g["params"]["eval"]["probe_optimizer"] == "sgd" for g in groups) else "."))
    return out
