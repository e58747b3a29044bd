"""Feeding 224px training from image files: the decode-once cache + batched augmentation vs the
usual ImageFolder + per-sample PIL transforms in a DataLoader, same CPU, same workers, one run.

    python bench/data_throughput.py [--images 1024] [--workers N]

Writes a photo-like JPEG tree (about ImageNet's size: ~500x375, ~110 KB), then measures
1. building the cache (decode once, resize, store) in images/s;
2. the host's work per epoch when training on a GPU: the cache path gathers shuffled uint8
   batches (augmentation then runs on the GPU, where it costs well under a millisecond per batch);
   the usual path decodes and augments every image in a DataLoader with `--workers` processes;
3. CPU-only training (no GPU): the cache path also augments on this CPU (BatchAugment).
Writes logs/bench/data_<device>_<date>.json.
"""
import argparse
import datetime
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torchvision import datasets
from torchvision.transforms import v2

from sslnb.augment import BatchAugment
from sslnb.data import example_trees, load_split
from sslnb.device import device_name
from sslnb.params import resolve


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1024)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--method", default="simclr", choices=("simclr", "mae"))
    args = ap.parse_args()
    size = 224
    tmp = Path(tempfile.mkdtemp(prefix="sslnb-bench-"))
    try:
        root = example_trees.imagefolder(tmp / "tree", classes=4, per_class=args.images // 4,
                                         sizes=(500, 375), grain=12.0)
        jpeg_kb = sum(f.stat().st_size for f in root.rglob("*.JPEG")) / args.images / 1024
        p = resolve(None, {"method": args.method, "data.source": "imagefolder",
                           "data.root": str(root), "data.image_size": size,
                           "data.val_fraction": 0.01, "data.cache_dir": str(tmp / "cache"),
                           "data.decode_workers": args.workers})
        a, d = p["augment"], p["data"]

        t = time.perf_counter()
        data = load_split(d, "train")
        build_ips = len(data) / (time.perf_counter() - t)

        augment = BatchAugment(a, size, d["mean"], d["std"])

        def cache_epoch(augmented: bool):
            order = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))
            for i in range(0, len(data) - args.batch + 1, args.batch):
                x = data.images[order[i:i + args.batch]]
                if augmented:
                    augment(x, torch.Generator().manual_seed(i))
            return (len(data) // args.batch) * args.batch

        s = a["jitter_strength"]
        ops = [v2.RandomResizedCrop(size, scale=tuple(a["crop_scale"]), antialias=True),
               v2.RandomHorizontalFlip(a["flip_p"])]
        if a["jitter_p"]:
            ops += [v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s)],
                                   p=a["jitter_p"]), v2.RandomGrayscale(a["gray_p"])]
        ops += [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(d["mean"], d["std"])]
        folder = datasets.ImageFolder(str(root), transform=v2.Compose(ops))
        loader = torch.utils.data.DataLoader(folder, batch_size=args.batch, shuffle=True,
                                             num_workers=args.workers, drop_last=True,
                                             persistent_workers=False)

        def folder_epoch():
            n = 0
            for x, _ in loader:
                n += x.shape[0]
            return n

        results = {}
        for name, fn in (("cache_feed_for_gpu", lambda: cache_epoch(False)),
                         ("cache_batched_augment_on_cpu", lambda: cache_epoch(True)),
                         ("imagefolder_pil_dataloader", folder_epoch)):
            t = time.perf_counter()
            n = fn()
            results[name] = n / (time.perf_counter() - t)
        out = {"benchmark": "data_feeding_224px", "method_augmentation": args.method,
               "images": args.images, "jpeg_kb_mean": round(jpeg_kb, 1), "workers": args.workers,
               "cpus": os.cpu_count(), "device": device_name(torch.device("cpu")),
               "torch_threads": torch.get_num_threads(),
               "cache_build_images_per_s": round(build_ips, 1),
               "epoch_images_per_s": {k: round(v, 1) for k, v in results.items()},
               "speedup_gpu_training_feed": round(
                   results["cache_feed_for_gpu"] / results["imagefolder_pil_dataloader"], 1),
               "speedup_cpu_only_training": round(
                   results["cache_batched_augment_on_cpu"] / results["imagefolder_pil_dataloader"], 2),
               "date": datetime.date.today().isoformat()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    dest = Path("logs/bench") / f"data_{args.method}_cpu_{out['date']}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
