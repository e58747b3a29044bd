"""Evaluate a pretrained run against its random-init baseline: linear probe, kNN and (optionally)
fine-tuning, each on the pretrained encoder and on the same architecture untrained, and the probe
and kNN of every encoder snapshot kept during pretraining (the curves across pretraining).

Protocol: every evaluator trains on `train`; `val` gives the per-epoch curves (and is where
recipes are chosen, elsewhere); `test` gives the reported numbers and is read once, at the end.
Writes <run>/eval.json (all numbers), <run>/predictions.json (each evaluator's test predictions,
for the bootstrap intervals of sslnb.stats) and per-epoch curves in
<run>/metrics/probe_<kind>.jsonl and finetune_<kind>.jsonl. Re-running with unchanged inputs
returns the saved eval.json.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import encoders, methods, runs
from . import evaluators as ev, finetune as finetune_mod
from .evaluators import Evaluator
from .augment import normalizer
from .checkpoint import load_checkpoint, load_run, snapshots, write_json
from .code_version import code_version
from .data import load_split
from .device import resolve_device
from .features import KINDS, encoder_of, features, random_init_model
from .finetune import accuracy as finetune_accuracy, finetune, predictions, starting_classifier
from .probe import (
    accuracy,
    classifier_scores,
    knn_predict,
    linear_probe,
    predict,
    probe_settings,
)
from .stats import effective_rank

SPLITS = ("train", "val", "test")


def evaluate(run: Path | str, device: str | None = None, force: bool = False) -> dict:
    """Probe, kNN and (when set) fine-tune the run's encoder, its random-init twin and its kept
    snapshots; eval.json and predictions.json in the run. Each weights file is read once: the
    run's last.pt, then each snapshot for all of its splits."""
    run = Path(run)
    model, p, last = load_run(run)
    e = p["eval"]
    dev = resolve_device(device or p["device"])
    steps = curve_steps(run, last)
    kinds = [*KINDS, *(f"step_{s}" for s in steps["computed"])]
    # The snapshots need no val features: their probes draw no curves and choose nothing.
    snaps = {step: load_checkpoint(path) for step, path in snapshots(run).items()}
    built = {k: encoder_of(run, k, (model, p), snaps) for k in kinds}
    feats = {(k, s): features(run, k, s, device=str(dev), built=built[k]) for k in kinds
             for s in SPLITS if k in KINDS or s != "val"}
    inputs = {"features": {f"{k}/{s}": f["key"] for (k, s), f in feats.items()}, "eval": e,
              "code_version": code_version("evaluate", p["method"])}
    out_path = run / "eval.json"
    if out_path.is_file() and (run / "predictions.json").is_file() and not force:
        saved = json.loads(out_path.read_text())
        if saved.get("inputs") == json.loads(json.dumps(inputs)):
            return saved
    test_labels = feats[("pretrained", "test")]["labels"]
    num_classes = len(feats[("pretrained", "train")]["classes"])
    result = {"run": run.name, "method": p["method"], "encoder": encoders.spec(p).name,
              "feature_dim": int(feats[("pretrained", "train")]["features"].shape[1]),
              "test_images": len(test_labels), "inputs": inputs}
    preds: dict[str, list[int]] = {}
    for kind in kinds:
        log = (runs.JsonlLog(run / "metrics" / f"probe_{kind}.jsonl", keep_until_step=0,
                             key="epoch") if kind in KINDS else None)
        metrics, kind_preds = read_out(*(feats.get((kind, s)) for s in SPLITS), e, p["seed"],
                                       num_classes, dev, log.write if log else None)
        result[kind] = metrics
        preds.update({Evaluator(kind, k).key: v for k, v in kind_preds.items()})
    if finetune_mod.enabled(p):
        result["finetune_train_images"] = finetune_all(run, model, p, dev, result, preds)
    result["curve"] = curve(run, p, steps, result, snaps)
    write_json(run / "predictions.json", {"split": "test", "labels": test_labels.tolist(),
                                          "test_set": test_set_fingerprint(p),
                                          "predictions": preds}, indent=None)
    write_json(out_path, result)
    return result


def test_set_fingerprint(p: dict) -> str:
    """Which test images (and labels) the predictions were made on (ImageSet.fingerprint)."""
    return load_split(p["data"], "test").fingerprint()


def finetune_all(run: Path, model, p: dict, dev, result: dict, preds: dict) -> int:
    """Fine-tune the pretrained encoder and its random-init twin for every `eval.finetune_blocks`
    (k last blocks, or all) on the same labelled images (eval.finetune_max_train of train, every
    class alike), each from its starting classifier (its probe on those images: depth 0): val
    curves in metrics/, test top-1 in result[kind]['finetune'][k] (and finetune_*_top1 for the
    most blocks trained), test predictions in `preds` (evaluators.finetune(0): the start). With
    eval.finetune_random_init false the twin keeps its probe and kNN only (a comparison that reads
    only the gain over the starting probe pays for no twin's fine-tuning)."""
    e = p["eval"]
    train = load_split(p["data"], "train").stratified(e["finetune_max_train"], p["seed"])
    val, test = load_split(p["data"], "val"), load_split(p["data"], "test")
    blocks = finetune_mod.depths(p)
    most = "all" if "all" in blocks else max(blocks)
    for kind in (KINDS if e["finetune_random_init"] else ("pretrained",)):
        encoder = (model if kind == "pretrained" else random_init_model(p)).encoder
        start = starting_classifier(encoder, p, train, dev, p["seed"])
        result[kind]["finetune"] = {}
        if e["finetune_head"] == "probe":  # depth 0: the probe every depth starts from
            normalize = normalizer(p)
            pred = predictions(start, test, normalize, dev)
            result[kind]["finetune"]["0"] = {
                "val_top1": finetune_accuracy(start, val, normalize, dev),
                "test_top1": accuracy(pred, test.labels)}
            preds[ev.finetune(0, kind).key] = pred.tolist()
        for k in blocks:
            suffix = "" if k == "all" else f"_k{k}"
            log = runs.JsonlLog(run / "metrics" / f"finetune_{kind}{suffix}.jsonl",
                                keep_until_step=0, key="epoch")
            ft = finetune(start, p, train, val, dev, k, p["seed"], on_epoch=log.write)
            pred = predictions(ft["model"], test, ft["normalize"], dev)
            numbers = {"val_top1": ft["val_top1"], "test_top1": accuracy(pred, test.labels)}
            result[kind]["finetune"][str(k)] = numbers
            preds[ev.finetune(k, kind).key] = pred.tolist()
            if k == most:
                result[kind]["finetune_val_top1"] = numbers["val_top1"]
                result[kind]["finetune_test_top1"] = numbers["test_top1"]
    return len(train)


def read_out(tr: dict, va: dict | None, te: dict, e: dict, seed: int, num_classes: int, dev,
             on_epoch=None) -> tuple[dict, dict]:
    """Linear probe and kNN of one encoder's features: (metrics, test predictions). Without val
    features (a snapshot), no val numbers."""
    probe = linear_probe(tr["features"], tr["labels"], va["features"] if va else None,
                         va["labels"] if va else None, num_classes=num_classes, seed=seed,
                         device=dev, on_epoch=on_epoch, **probe_settings(e))
    test_x, test_y = te["features"].to(dev), te["labels"].to(dev)
    _, test1, test5 = classifier_scores(probe["model"], test_x, test_y, 4096)
    train_x, train_y = tr["features"].to(dev), tr["labels"].to(dev)
    knn = {s: knn_predict(train_x, train_y, f["features"].to(dev), num_classes, e["knn_k"],
                          e["knn_temperature"]) for s, f in (("val", va), ("test", te)) if f}
    final = probe["final"]
    metrics = {"probe_train_top1": final["train_top1"], "probe_test_top1": test1,
               "probe_test_top5": test5, "knn_test_top1": accuracy(knn["test"], te["labels"])}
    if va:
        metrics.update({"probe_val_top1": final["val_top1"], "probe_val_top5": final["val_top5"],
                        "knn_val_top1": accuracy(knn["val"], va["labels"]),
                        "effective_rank": effective_rank(va["features"])})
    return metrics, {"probe": predict(probe["model"], test_x).tolist(),
                     "knn": knn["test"].tolist()}


def curve_steps(run: Path, last: int) -> dict:
    """The kept snapshots' steps, and which need their own evaluation: step 0 is the random-init
    encoder (same seed, same weights: tests/test_uncertainty.py checks the features) and the
    checkpoint's step `last` is the pretrained one."""
    kept = list(snapshots(run))
    return {"last": last, "computed": [s for s in kept if s not in (0, last)]}


def curve(run: Path, p: dict, steps: dict, result: dict, snaps: dict[int, dict]) -> list[dict]:
    """One point per snapshot: test top-1 of probe and kNN against pretraining epochs, images
    seen (both recorded in the snapshot), training FLOPs and wall-clock seconds (from the run's
    per-epoch times). `kind` names the evaluator whose predictions the point used; `snaps`: the
    snapshots' contents by step, read once by `evaluate`."""
    flops = methods.train_flops_per_image(p)
    epochs = runs.read_jsonl(run / "metrics" / "epochs.jsonl")
    points = []
    for step, snap in snaps.items():
        kind = {0: "random_init", steps["last"]: "pretrained"}.get(step, f"step_{step}")
        points.append({"step": step, "kind": kind, "epoch": snap["epoch"],
                       "images_seen": snap["images_seen"],
                       "train_flops": snap["images_seen"] * flops,
                       "train_seconds": _seconds_at(epochs, snap["epoch"]),
                       **{k: result[kind][k] for k in ("probe_test_top1", "knn_test_top1")}})
    return points


def _seconds_at(epochs: list[dict], epoch: float) -> float:
    """Wall-clock pretraining seconds up to a (fractional) epoch, from metrics/epochs.jsonl."""
    whole = int(epoch)
    done = sum(e["epoch_time_s"] for e in epochs[:whole])
    if whole < len(epochs):
        done += (epoch - whole) * epochs[whole]["epoch_time_s"]
    return done
