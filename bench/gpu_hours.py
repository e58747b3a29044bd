"""Expected GPU-hours of a report at full scale, from sslnb's FLOP formulas and an assumed
throughput: `python bench/gpu_hours.py [params/report/imagenet100_claims.yaml]`.

Per run: pretraining = training FLOPs per image (methods.train_flops_per_image) x pretraining
images x epochs; fine-tuning = 3 x the encoder's forward FLOPs (encoders.forward_flops) x
labelled images x epochs x 2 (pretrained and random init) x the blocks settings (partial
fine-tuning counted as full: an upper bound); features = the forward over train, val and test for
each snapshot and the random-init twin. GPU time = FLOPs / (peak x MFU), with the H200's measured
bf16 matmul peak (~790 TFLOP/s, NVIDIA's H200 specification, dense) at 30% and 15% model-FLOP utilisation (the
study trained at about 180 images/s for MAE ViT-S: far below either).
"""
from __future__ import annotations

import sys

from sslnb import encoders, methods
from sslnb.params import resolve
from sslnb.report import load

PEAK = 790e12
IMAGES_PER_CLASS = 1300    # ImageNet-100 training images per class (train.X1-X4)
TEST_IMAGES = 5000         # Kaggle val.X
CLASSES = {("train.X1",): 25, ("train.X1", "train.X2"): 50}


def main(report: str = "params/report/imagenet100_claims.yaml") -> None:
    total = 0.0
    for r in load(report).runs:
        p = resolve(r.params, r.set)
        chosen = p["data"]["pretrain_classes"]
        classes = CLASSES.get(tuple(chosen), 100) if chosen else 100
        pretrain = methods.train_flops_per_image(p) * classes * IMAGES_PER_CLASS * \
            p["train"]["epochs"]
        forward = encoders.forward_flops(methods.build_model(p).encoder, p)
        e = p["eval"]
        labelled = 100 * (IMAGES_PER_CLASS - p["data"]["val_per_class"])
        finetune = (3 * forward * labelled * e["finetune_epochs"] * 2 * len(e["finetune_blocks"])
                    if e["finetune_epochs"] else 0.0)
        features = forward * (100 * IMAGES_PER_CLASS + TEST_IMAGES) * (p["train"]["snapshots"] + 1)
        flops = pretrain + finetune + features
        total += flops
        print(f"{p['name']}: {methods.train_flops_per_image(p) / 1e9:.1f} GFLOP per training "
              f"image; pretraining {pretrain / 1e18:.2f} EFLOP, fine-tuning {finetune / 1e18:.2f}, "
              f"features {features / 1e18:.2f}; {flops / (PEAK * 0.3) / 3600:.1f} GPU-hours at "
              f"30% MFU")
    for mfu in (0.3, 0.15):
        print(f"total: {total / 1e18:.1f} EFLOP = {total / (PEAK * mfu) / 3600:.1f} H200-hours at "
              f"{mfu:.0%} MFU")


if __name__ == "__main__":
    main(*sys.argv[1:])
