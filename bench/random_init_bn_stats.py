"""What "random init" means for a ResNet baseline, measured once: the untrained encoder read in
eval mode with its BatchNorm running statistics at their initial values (mean 0, variance 1; what
sslnb reports), against the same weights with the statistics of one pass over the training
images (each BatchNorm then standardises its real inputs). Both are probed with the demo's
protocol (params/demo/simclr_resnet18.yaml, its eval section); choices read `val` only.

    python bench/random_init_bn_stats.py   ->  logs/bench/random_init_bn_stats.json
"""
from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sslnb.augment import Normalize  # noqa: E402
from sslnb.data import choosing, load_split  # noqa: E402
from sslnb.features import extract, random_init_model  # noqa: E402
from sslnb.params import resolve  # noqa: E402
from sslnb.probe import knn_accuracy, linear_probe, probe_settings  # noqa: E402


@torch.no_grad()
def data_statistics(model, images, normalize, batch_size=512):
    """BatchNorm running statistics from one pass: cumulative averages (momentum None)."""
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None
    model.train()
    for s in range(0, images.shape[0], batch_size):
        model.features(normalize(images[s:s + batch_size]))
    model.eval()
    return model


def main():
    with choosing():  # a choice between two baselines: test is never read
        compare_statistics()


def compare_statistics():
    p = resolve(ROOT / "params/demo/simclr_resnet18.yaml")
    train, val = load_split(p["data"], "train"), load_split(p["data"], "val")
    normalize = Normalize(p["data"]["mean"], p["data"]["std"], p["data"]["image_size"])
    dev = torch.device("cpu")
    results = {}
    for name in ("initial_statistics", "one_pass_statistics"):
        start = time.perf_counter()
        model = random_init_model(p)
        if name == "one_pass_statistics":
            data_statistics(model, train.images, normalize)
        tr = extract(model, train.images, normalize, 512, dev)
        va = extract(model, val.images, normalize, 512, dev)
        probe = linear_probe(tr, train.labels, va, val.labels, num_classes=len(train.classes),
                             seed=p["seed"], device=dev, **probe_settings(p["eval"]))["final"]
        knn = knn_accuracy(tr, train.labels, va, val.labels, len(train.classes),
                           p["eval"]["knn_k"], p["eval"]["knn_temperature"])
        results[name] = {"probe_val_top1": probe["val_top1"], "knn_val_top1": knn,
                         "seconds": round(time.perf_counter() - start, 1)}
        print(name, results[name], flush=True)
    out = {"benchmark": "random_init_bn_stats", "params": "params/demo/simclr_resnet18.yaml",
           "encoder": p["model"]["encoder"], "results": results,
           "date": datetime.date.today().isoformat()}
    path = ROOT / "logs" / "bench" / "random_init_bn_stats.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(path)


if __name__ == "__main__":
    main()
