"""Evaluate a pretrained run against its random-init baseline: linear probe, kNN and (optionally)
fine-tuning, each on the pretrained encoder and on the same architecture untrained.

Writes <run>/eval.json (all numbers) and per-epoch curves in <run>/metrics/probe_<kind>.jsonl and
finetune_<kind>.jsonl. Re-running with unchanged inputs returns the saved eval.json.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import runs
from .checkpoint import load_pretrained, write_json
from .data import load_split
from .device import resolve_device
from .features import KINDS, features, random_init_model
from .finetune import finetune
from .probe import knn_accuracy, linear_probe, probe_settings


def evaluate(run: Path | str, device: str | None = None, force: bool = False,
             eval_overrides: dict | None = None) -> dict:
    run = Path(run)
    model, p = load_pretrained(run)
    if eval_overrides:
        p["eval"].update(eval_overrides)
    e = p["eval"]
    dev = resolve_device(device or p["device"])
    feats = {(k, s): features(run, k, s, device=str(dev)) for k in KINDS for s in ("train", "val")}
    inputs = {"features": {f"{k}/{s}": f["key"] for (k, s), f in feats.items()}, "eval": e,
              "code_version": runs.code_version()}
    out_path = run / "eval.json"
    if out_path.is_file() and not force:
        saved = json.loads(out_path.read_text())
        if saved.get("inputs") == json.loads(json.dumps(inputs)):
            return saved
    num_classes = len(feats[("pretrained", "train")]["classes"])
    result = {"run": run.name, "method": p["method"], "encoder": p["model"]["encoder"],
              "feature_dim": int(feats[("pretrained", "train")]["features"].shape[1]),
              "inputs": inputs}
    for kind in KINDS:
        tr, va = feats[(kind, "train")], feats[(kind, "val")]
        log = runs.JsonlLog(run / "metrics" / f"probe_{kind}.jsonl", keep_until_step=0,
                            key="epoch")
        probe = linear_probe(tr["features"], tr["labels"], va["features"], va["labels"],
                             num_classes=num_classes, seed=p["seed"], device=dev,
                             on_epoch=log.write, **probe_settings(e))
        knn = knn_accuracy(tr["features"].to(dev), tr["labels"].to(dev), va["features"].to(dev),
                           va["labels"].to(dev), num_classes, e["knn_k"], e["knn_temperature"])
        result[kind] = {**{f"probe_{k}": v for k, v in probe["final"].items() if k != "epoch"},
                        "knn_top1": knn}
    if e["finetune_epochs"] > 0:
        train, val = load_split(p["data"], "train"), load_split(p["data"], "val")
        for kind in KINDS:
            backbone = model if kind == "pretrained" else random_init_model(p)
            log = runs.JsonlLog(run / "metrics" / f"finetune_{kind}.jsonl", keep_until_step=0,
                                key="epoch")
            ft = finetune(backbone.to(dev), train, val, p, dev, p["seed"], on_epoch=log.write)
            result[kind]["finetune_top1"] = ft["val_top1"]
            result["finetune_train_images"] = ft["train_images"]
    write_json(out_path, result)
    return result
