"""Overhead of sslnb's full pretraining loop (data order, batched augmentation, logging,
schedule) over a bare forward/backward/step loop on resident, pre-augmented tensors, for both
demo models, on this machine, in one run.

    python bench/loop_overhead.py [--steps 12]
Writes logs/bench/loop_<device>_<date>.json.
"""
import argparse
import datetime
import json
import tempfile
import time
from pathlib import Path

import torch

from sslnb import methods, pretrain, resolve
from sslnb.train import augments_of
from sslnb.data import load_split
from sslnb.device import device_name, resolve_device
from sslnb.optim import build_optimizer
from sslnb.params import flatten
from sslnb.runs import read_jsonl

DEMO = {"mae": "params/demo/mae_vit_tiny.yaml", "simclr": "params/demo/simclr_resnet18.yaml"}


def bare_images_per_s(p, steps, device):
    """The method's forward, backward and optimizer step on pre-augmented views, nothing else."""
    torch.manual_seed(0)
    method = methods.get(p)
    model = method.prepare(methods.build_model(p), p).to(device).train()
    t = p["train"]
    opt = build_optimizer(model, t["optimizer"], 1e-4, t["weight_decay"], t["betas"])
    data = load_split(p["data"], "train")
    augments = augments_of(method, p)
    x = data.images[:t["batch_size"]].to(device)
    g = [torch.Generator().manual_seed(v) for v in (1, 2, 3)]
    views = method.views(augments, x, g, p)

    def step():
        method.loss(model, views, g).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * t["batch_size"] / (time.perf_counter() - start)


def full_images_per_s(p, steps):
    with tempfile.TemporaryDirectory() as tmp:
        q = resolve(None, {**flatten(p), "out_dir": tmp, "name": "bench",
                           "train.log_every": 1})
        q["data"]["num_train"] = (steps + 1) * q["train"]["batch_size"]
        q["train"]["epochs"] = 1
        run = pretrain(q)
        lines = read_jsonl(Path(run) / "metrics" / "steps.jsonl")[1:]  # skip the warm-up step
        return sum(r["images_per_s"] for r in lines) / len(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    results = {}
    for method, path in DEMO.items():
        p = resolve(path)
        device = resolve_device(p["device"])
        bare = bare_images_per_s(p, args.steps, device)
        full = full_images_per_s(p, args.steps)
        results[method] = {"encoder": p["model"]["encoder"], "bare_images_per_s": bare,
                           "full_loop_images_per_s": full, "overhead": 1 - full / bare}
        print(method, results[method], flush=True)
    out = {"benchmark": "pretrain_loop_overhead", "device": device_name(device),
           "results": results, "date": datetime.date.today().isoformat()}
    dest = Path("logs/bench") / f"loop_{device.type}_{out['date']}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
