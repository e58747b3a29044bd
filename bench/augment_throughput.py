"""SimCLR views per second at 32px: sslnb's batched augmentation vs a per-sample
torchvision.transforms.v2 pipeline with the same operations, on this CPU, in one run.

    python bench/augment_throughput.py [--images 4096] [--size 32]
Writes logs/bench/augment_<device>_<date>.json and prints the ratio.
"""
import argparse
import datetime
import json
import time
from pathlib import Path

import torch
from torchvision.transforms import v2

from sslnb.augment import BatchAugment
from sslnb.data import shapes
from sslnb.device import device_name
from sslnb.params import resolve


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=4096)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    p = resolve(None, {"method": "simclr", "data.image_size": args.size})
    a, d = p["augment"], p["data"]
    images, _ = shapes.generate(args.images, args.size, seed=0)

    batched = BatchAugment(a, args.size, d["mean"], d["std"])
    s = a["jitter_strength"]
    per_sample = v2.Compose([
        v2.RandomResizedCrop(args.size, scale=tuple(a["crop_scale"]), antialias=True),
        v2.RandomHorizontalFlip(a["flip_p"]),
        v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)], p=a["jitter_p"]),
        v2.RandomGrayscale(a["gray_p"]),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(d["mean"], d["std"]),
    ])

    def run_batched():
        for i in range(0, args.images, args.batch):
            batched(images[i:i + args.batch], torch.Generator().manual_seed(i))

    def run_per_sample():
        for img in images:
            per_sample(img)

    results = {}
    for name, fn in [("batched", run_batched), ("torchvision_v2_per_sample", run_per_sample)]:
        fn() if name == "batched" else None  # warm-up
        t = time.perf_counter()
        fn()
        results[name] = args.images / (time.perf_counter() - t)
    out = {"benchmark": "simclr_view_augmentation", "image_size": args.size,
           "images": args.images, "device": device_name(torch.device("cpu")),
           "images_per_s": results,
           "speedup": results["batched"] / results["torchvision_v2_per_sample"],
           "date": datetime.date.today().isoformat()}
    dest = Path("logs/bench") / f"augment_cpu_{out['date']}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
