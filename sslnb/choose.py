"""Choosing a setting the honest way: on `val`, never on `test`.

`probe_setting` tries values of one linear-probe setting (eval.probe_base_lr, probe_epochs, ...)
on a run's cached train features; `finetune_setting` fine-tunes a run's encoder once per
candidate recipe (eval.finetune_base_lr, finetune_epochs, finetune_layer_decay, finetune_blocks,
...) and scores its gain over the probe it starts from; `pretrain_setting` pretrains one
candidate run per value of any
pretraining key (train.base_lr, train.epochs, mae.mask_ratio, augment.gray_p, ...) and reads each
out on val. Both run inside `sslnb.data.choosing()`, so any read of the test split raises: the
numbers the report shows on test stay unbiased by the choice. Each choice is logged in
<out_dir>/choices/<run>__<key>.json (candidates, their val top-1, the chosen value), which the report's
appendix shows.
"""
from __future__ import annotations

import datetime
import itertools
import json
import re
from pathlib import Path

from .augment import normalizer
from .checkpoint import load_pretrained, write_json
from .data import choosing, load_split
from .device import resolve_device
from .errors import ParamsError
from .features import features
from .finetune import accuracy as finetune_accuracy, finetune, starting_classifier
from .params import flatten, parse_override, resolve
from .probe import accuracy, knn_predict, linear_probe, probe_settings
from .runs import git_commit

PROBE_KEYS = ("probe_base_lr", "probe_epochs", "probe_weight_decay", "probe_warmup_epochs",
              "probe_batch_size", "probe_optimizer")
FINETUNE_KEYS = ("finetune_base_lr", "finetune_epochs", "finetune_layer_decay", "finetune_blocks",
                 "finetune_weight_decay", "finetune_drop_path", "finetune_warmup_epochs",
                 "finetune_label_smoothing", "finetune_batch_size", "finetune_crop_scale")


def val_scores(run: Path | str, kind: str = "pretrained", eval_overrides: dict | None = None,
               device: str | None = None) -> dict:
    """Linear probe (train -> val) and kNN val top-1 of one encoder: the val-only evaluation
    every choice reads. Nothing of test is read or computed (it runs inside choosing())."""
    with choosing():
        loaded = load_pretrained(run)
        p = loaded[1]
        e = {**p["eval"], **(eval_overrides or {})}
        dev = resolve_device(device or p["device"])
        tr, va = (features(run, kind, split, loaded=loaded) for split in ("train", "val"))
        out = linear_probe(tr["features"], tr["labels"], va["features"], va["labels"],
                           num_classes=len(tr["classes"]), seed=p["seed"], device=dev,
                           **probe_settings(e))
        knn = knn_predict(tr["features"].to(dev), tr["labels"].to(dev), va["features"].to(dev),
                          len(tr["classes"]), e["knn_k"], e["knn_temperature"])
        return {"probe_val_top1": out["final"]["val_top1"],
                "knn_val_top1": accuracy(knn, va["labels"])}


def probe_setting(run: Path | str, key: str, values: list, kind: str = "pretrained",
                  device: str | None = None) -> dict:
    """{'key', 'values': {value: val top-1}, 'best': value}: the value with the best val top-1."""
    key = key.removeprefix("eval.")
    if key not in PROBE_KEYS:
        raise ParamsError(f"choose: '{key}' is not a probe setting; accepted: "
                          f"{', '.join('eval.' + k for k in PROBE_KEYS)}. To choose a pretraining "
                          f"setting, pass --params FILE instead of --run.")
    _, p = load_pretrained(run)
    scores = {v: val_scores(run, kind, {key: v}, device)["probe_val_top1"] for v in values}
    result = {"key": "eval." + key, "values": scores, "best": max(scores, key=scores.get)}
    log_choice(p, str(Path(run)), "eval." + key,
               [{"value": v, "run": str(run), "probe_val_top1": s} for v, s in scores.items()],
               result["best"], criterion="linear-probe val top-1")
    return result


def finetune_setting(run: Path | str, key: str | list[str], values: list,
                     device: str | None = None) -> dict:
    """Fine-tune the run's pretrained encoder once per candidate recipe (a grid when several
    keys) on its fine-tuning images, each from the probe it starts from (depth 0: its head
    trained on the same labelled images); score = val top-1 after fine-tuning minus that
    probe's val top-1. The largest gain wins; `raises` says whether any candidate raised the
    probe at all (a fine-tuning claim whose recipes all lower it has no valid test). Only val is
    read. eval.finetune_blocks takes one depth per candidate (an int or 'all')."""
    keys, grid = ([key], [values]) if isinstance(key, str) else (list(key), list(values))
    keys = [k.removeprefix("eval.") for k in keys]
    for k in keys:
        if k not in FINETUNE_KEYS:
            raise ParamsError(f"choose: '{k}' is not a fine-tuning setting; accepted: "
                              f"{', '.join('eval.' + k for k in FINETUNE_KEYS)}.")
    candidates, starts = [], {}
    with choosing():
        model, p = load_pretrained(run)
        dev = resolve_device(device or p["device"])
        e = p["eval"]
        train = load_split(p["data"], "train").stratified(e["finetune_max_train"], p["seed"])
        val = load_split(p["data"], "val")
        normalize = normalizer(p)
        for combo in itertools.product(*grid):
            # the run's params with the candidate's, typed and checked as any --set is
            q = resolve(Path(run) / "params.yaml", {
                f"eval.{k}": [v] if k == "finetune_blocks" else v for k, v in zip(keys, combo)})
            setting = {k: q["eval"][k][-1] if k == "finetune_blocks" else q["eval"][k]
                       for k in keys}
            # the start (features and a probe on the fine-tuning images) changes with drop path
            # only among these settings: built once per value
            drop = q["eval"]["finetune_drop_path"]
            if drop not in starts:
                start = starting_classifier(model.encoder, q, train, dev, p["seed"])
                starts[drop] = start, finetune_accuracy(start, val, normalize, dev)
            start, start_val = starts[drop]
            ft = finetune(start, q, train, val, dev, q["eval"]["finetune_blocks"][-1], p["seed"])
            candidates.append({"value": setting[keys[0]] if len(keys) == 1 else
                               {"eval." + k: v for k, v in setting.items()},
                               "run": str(run), "start_val_top1": start_val,
                               "finetune_val_top1": ft["val_top1"],
                               "gain": ft["val_top1"] - start_val})
    best = max(candidates, key=lambda c: c["gain"])
    label = " x ".join("eval." + k for k in keys)
    path = log_choice(p, str(Path(run)), label, candidates, best["value"],
                      criterion="fine-tuning val top-1 minus the probe it starts from")
    return {"key": label, "candidates": candidates, "best": best["value"],
            "raises": best["gain"] > 0, "log": str(path)}


def pretrain_setting(params_file: str | Path, key: str | list[str], values: list,
                     overrides=None, out_dir: str | Path | None = None) -> dict:
    """Pretrain one candidate per value of `key` (a finished candidate is reused), score each
    on val (linear probe, kNN) and log the choice; the best val probe wins. Several keys (a list,
    with one list of values each) try every combination: a grid, whose value is {key: value}."""
    from .train import pretrain  # deferred: evaluation imports choose, never the training loop
    keys, grid = ([key], [values]) if isinstance(key, str) else (list(key), list(values))
    base = resolve(params_file, overrides)
    for k in keys:
        if k not in flatten(base) or k.startswith(("eval.", "name", "out_dir")):
            raise ParamsError(f"choose: '{k}' is not a pretraining key of {params_file}; pass a "
                              f"dotted key such as train.base_lr, train.epochs or augment.gray_p "
                              f"(probe settings: --run RUN --key eval.probe_base_lr).")
    candidates, fixed = [], _as_dict(overrides)
    with choosing():
        for combo in itertools.product(*grid):
            setting = dict(zip(keys, combo))
            # The name carries every --set too: candidates of choices made under different
            # overrides are different runs, and neither replaces the other.
            named = {**{k: v for k, v in fixed.items() if k not in ("name", "out_dir")},
                     **setting}
            slug = "_".join(re.sub(r"[^A-Za-z0-9.]+", "-", f"{k}={v}").strip("-")
                            for k, v in named.items())
            p = resolve(params_file, {**fixed, **setting,
                                      "name": f"choose_{base['name']}_{slug}",
                                      **({"out_dir": str(out_dir)} if out_dir else {})})
            # as the params read them (YAML's 1e-4 is a string until then)
            read = {k: flatten(p)[k] for k in keys}
            run = pretrain(p, reuse=True)
            candidates.append({"value": read[keys[0]] if len(keys) == 1 else read, "run": str(run),
                               **val_scores(run)})
    best = max(candidates, key=lambda c: c["probe_val_top1"])["value"]
    path = log_choice(base, str(params_file), " x ".join(keys), candidates, best,
                      criterion="linear-probe val top-1", overrides=fixed)
    return {"key": " x ".join(keys), "candidates": candidates, "best": best, "log": str(path)}


def _as_dict(overrides) -> dict:
    if not overrides:
        return {}
    return dict(overrides) if isinstance(overrides, dict) else dict(
        parse_override(o) for o in overrides)


def log_choice(p: dict, source: str, key: str, candidates: list, best, criterion: str,
               overrides: dict | None = None) -> Path:
    """<out_dir>/choices/<name>__<key>.json (logs/choices/ by default; __2, __3, ... for a later
    choice of the same keys), which the report's appendix lists for its runs."""
    folder, stem = Path(p["out_dir"]) / "choices", f"{p['name']}__{key.replace(' x ', '+')}"
    # A second choice of the same keys is logged beside the first, never over it.
    path, n = folder / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}__{n}.json"
    write_json(path, {"name": p["name"], "params": source, "overrides": overrides or {},
                      "key": key, "criterion": criterion,
                      "split": "val", "candidates": candidates, "chosen": best,
                      "date": datetime.date.today().isoformat(), "git_commit": git_commit()})
    return path


def choices_for(names: list[str], folder: Path | str) -> list[dict]:
    """The logged choices of these run names in a choices folder (report appendix)."""
    out = []
    for f in sorted(Path(folder).glob("*.json")):
        try:
            doc = json.loads(f.read_text())
        except ValueError:
            continue
        if doc.get("name") in names:
            out.append(doc)
    return out
