"""Choosing a setting the honest way: on `val`, never on `test`.

`probe_setting` tries values of one linear-probe setting (eval.probe_base_lr, probe_epochs,
probe_weight_decay, ...) on a run's cached train features, scores each on val, and returns the
best. It runs inside `sslnb.data.choosing()`, so any read of the test split in it raises: the
numbers the report shows on test stay unbiased by the choice.
"""
from __future__ import annotations

from pathlib import Path

from .checkpoint import load_pretrained
from .data import choosing
from .device import resolve_device
from .errors import ParamsError
from .features import features
from .probe import linear_probe, probe_settings

PROBE_KEYS = ("probe_base_lr", "probe_epochs", "probe_weight_decay", "probe_warmup_epochs",
              "probe_batch_size", "probe_optimizer")


def probe_setting(run: Path | str, key: str, values: list, kind: str = "pretrained",
                  device: str | None = None) -> dict:
    """{'key', 'values': {value: val top-1}, 'best': value}: the value with the best val top-1."""
    key = key.removeprefix("eval.")
    if key not in PROBE_KEYS:
        raise ParamsError(f"choose: '{key}' is not a probe setting; accepted: "
                          f"{', '.join('eval.' + k for k in PROBE_KEYS)}.")
    with choosing():
        _, p = load_pretrained(run)
        dev = resolve_device(device or p["device"])
        tr, va = features(run, kind, "train"), features(run, kind, "val")
        scores = {}
        for v in values:
            settings = probe_settings({**p["eval"], key: v})
            out = linear_probe(tr["features"], tr["labels"], va["features"], va["labels"],
                               num_classes=len(tr["classes"]), seed=p["seed"], device=dev,
                               **settings)
            scores[v] = out["final"]["val_top1"]
    return {"key": "eval." + key, "values": scores, "best": max(scores, key=scores.get)}
