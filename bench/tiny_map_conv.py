"""ResNet training steps per second at 32px, with and without the one-position convolution path
(sslnb/tiny_map_conv.py), in one run on this machine: alternating steps, median of each.

    python bench/tiny_map_conv.py [--encoder resnet18] [--batch 256] [--size 32] [--steps 8]
Writes logs/bench/tiny_map_conv_<device>_<date>.json and prints the ratio.
"""
import argparse
import datetime
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn as nn
import torchvision

from sslnb import encoders
from sslnb.device import device_name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder", default="resnet18")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    torch.manual_seed(0)
    fast = encoders.resnet(args.encoder, "imagenet", zero_init_residual=False)
    plain = torchvision.models.get_model(args.encoder, weights=None)
    plain.fc = nn.Identity()
    plain.load_state_dict(fast.state_dict())
    nets = {"library_conv": plain, "tiny_map_conv": fast}
    x = torch.randn(args.batch, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    seconds = {name: [] for name in nets}
    for net in nets.values():
        net.to(memory_format=torch.channels_last).train()
        net(x).square().mean().backward()  # warm-up
    for _ in range(args.steps):
        for name, net in nets.items():
            t = time.perf_counter()
            net(x).square().mean().backward()
            seconds[name].append(time.perf_counter() - t)
    median = {name: statistics.median(s) for name, s in seconds.items()}
    out = {"benchmark": "resnet_train_step_tiny_map_conv", "encoder": args.encoder,
           "image_size": args.size, "batch": args.batch, "steps": args.steps,
           "device": device_name(torch.device("cpu")), "threads": torch.get_num_threads(),
           "step_seconds_median": median,
           "speedup": median["library_conv"] / median["tiny_map_conv"],
           "date": datetime.date.today().isoformat()}
    dest = Path("logs/bench") / f"tiny_map_conv_cpu_{out['date']}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
