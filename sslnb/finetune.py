"""Short end-to-end fine-tuning: encoder + linear head trained with labels, the same budget for the
pretrained and the random-init encoder. The study's stated limitation was "linear probing only";
MAE's paper finds its features shine under fine-tuning, and this is where the report tests that.
Light augmentation (crop 0.2-1, flip), AdamW, warm-up then cosine; no layer-wise lr decay.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import BatchAugment, Normalize
from .data import ImageSet
from .optim import build_optimizer, scaled_lr, set_lr, warmup_cosine
from .probe import accuracy as top1
from .randomness import step_generator

FINETUNE_AUGMENT = {"crop_scale": [0.2, 1.0], "crop_ratio": [0.75, 1.3333333], "flip_p": 0.5,
                    "jitter_p": 0.0, "jitter_strength": 1.0, "gray_p": 0.0, "blur_p": 0.0}


class Classifier(nn.Module):
    def __init__(self, backbone: nn.Module, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Linear(backbone.feature_dim, num_classes)

    def forward(self, x):
        return self.head(self.backbone.features(x))


def finetune(backbone: nn.Module, train: ImageSet, val: ImageSet, p: dict,
             device: torch.device, seed: int = 0, on_epoch=None) -> dict:
    e = p["eval"]
    torch.manual_seed(seed)
    model = Classifier(backbone, len(train.classes)).to(device)
    train = train.stratified(e["finetune_max_train"], seed)  # every class, not the first few
    bs = min(e["finetune_batch_size"], len(train))
    steps_per_epoch = len(train) // bs
    total = steps_per_epoch * e["finetune_epochs"]
    lr = scaled_lr(e["finetune_base_lr"], bs)
    opt = build_optimizer(model, "adamw", lr, 0.05, (0.9, 0.999))
    size, mean, std = p["data"]["image_size"], p["data"]["mean"], p["data"]["std"]
    augment, normalize = BatchAugment(FINETUNE_AUGMENT, size, mean, std), Normalize(mean, std, size)
    images, labels = train.images.to(device), train.labels.to(device)
    g = torch.Generator().manual_seed(seed)
    history, step = [], 0
    for epoch in range(e["finetune_epochs"]):
        model.train()
        order = torch.randperm(len(train), generator=g).to(device)
        for i in range(steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            set_lr(opt, warmup_cosine(step, total, steps_per_epoch, lr))
            x = augment(images[idx], step_generator(seed, step, 0, device))
            loss = F.cross_entropy(model(x), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        rec = {"epoch": epoch + 1, "val_top1": accuracy(model, val, normalize, device)}
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
    return {"history": history, "val_top1": history[-1]["val_top1"] if history else None,
            "train_images": len(train), "model": model.eval(), "normalize": normalize}


@torch.no_grad()
def predictions(model: nn.Module, data: ImageSet, normalize: Normalize, device,
                bs: int = 512) -> torch.Tensor:
    """Top-1 class of every image (int64, CPU)."""
    model.eval()
    return torch.cat([model(normalize(data.images[s:s + bs].to(device))).argmax(dim=1).cpu()
                      for s in range(0, len(data), bs)])


def accuracy(model: nn.Module, data: ImageSet, normalize: Normalize, device, bs: int = 512) -> float:
    return top1(predictions(model, data, normalize, device, bs), data.labels)
