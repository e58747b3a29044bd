"""Fine-tuning with labels, end to end or only the last k blocks, the same budget and recipe for the
pretrained encoder and its random-init twin.

What is fine-tuned is the plain timm / torchvision classifier that the run's export loads into
(`encoders.classifier`), so the numbers are what a user gets from the exported weights. The
recipe is MAE's (He et al. 2021, appendix A.1): AdamW, layer-wise lr decay (block i of d at
lr x decay^(d - i), the embeddings at decay^(d + 1), the head at lr), drop path, label smoothing,
linear warm-up then cosine; ResNets take the same AdamW recipe without layer decay or drop path.
Partial fine-tuning (the MAE paper's Figure 9) trains only the last k blocks (ViT) or stages
(ResNet) and the head; the frozen layers stay in eval mode (no BatchNorm statistics update, no
drop path), so they are exactly the pretrained feature extractor; BatchNorm statistics stay
those the probe read (their scale and shift train). Every depth starts from the same classifier
(`starting_classifier`), its head a probe trained on the fine-tuning images, so each gain is
measured on the same labelled images.
"""
from __future__ import annotations

import contextlib
import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import encoders
from .augment import Normalize, batch_augment, normalizer
from .errors import ParamsError
from .data import ImageSet
from .optim import scaled_lr, set_lr, warmup_cosine
from .probe import accuracy as top1, linear_probe, probe_settings
from .randomness import step_generator

# Crops (eval.finetune_crop_scale) and flips, no colour: on small images a crop can cut the object
# out (on the shapes demo, MAE ViT-Ti/4 lost 6 points of val top-1 in one epoch at scale 0.2-1,
# 3 at 0.6-1, none without crops).
FINETUNE_AUGMENT = {"crop_ratio": [0.75, 1.3333333], "flip_p": 0.5,
                    "jitter_p": 0.0, "jitter_strength": 1.0, "gray_p": 0.0, "blur_p": 0.0}
NO_DECAY = ("pos_embed", "cls_token", "reg_token")  # besides biases and norms, as in MAE


def enabled(p: dict) -> bool:
    """Whether evaluation fine-tunes (eval.finetune_epochs > 0)."""
    return p["eval"]["finetune_epochs"] > 0


def depths(p: dict) -> list[int | str]:
    """How many of the last blocks (ViT) or stages (ResNet) each fine-tuning trains."""
    return list(p["eval"]["finetune_blocks"])


def check(p: dict, source_of: dict[str, str]) -> None:
    """Fine-tuning's depths exist in the encoder (checked only when it fine-tunes)."""
    listed = [k for k in depths(p) if k != "all"]
    if not (listed and enabled(p)):
        return
    n, e = encoders.num_blocks(p), encoders.spec(p)
    if max(listed) > n:
        src = source_of.get("eval.finetune_blocks", "defaults")
        raise ParamsError(
            f"{src}: key 'eval.finetune_blocks' lists {max(listed)}, but the encoder ({e.name}) "
            f"has {n} {'stages' if e.family == 'resnet' else 'blocks'}; accepted: integers from 1 "
            f"to {n} and/or 'all' (end to end). Fix it in {src} or override it with --set "
            f"eval.finetune_blocks=[1,{n}].")


def trainable(net: nn.Module, blocks: int | str) -> dict[str, bool]:
    """{parameter name: trains?} when the last `blocks` blocks / stages and the head train."""
    depths, last = encoders.layer_depths(net)
    if blocks == "all":
        return {name: True for name in depths}
    return {name: d > last - 1 - int(blocks) for name, d in depths.items()}


def freeze(net: nn.Module, blocks: int | str) -> nn.Module:
    """requires_grad off for what does not train; see `train_mode` for the modules' modes."""
    trains = trainable(net, blocks)
    for name, param in net.named_parameters():
        param.requires_grad_(trains[name])
    return net


def train_mode(net: nn.Module) -> nn.Module:
    """Training mode for the parts that train; every module whose parameters are all frozen (a
    frozen stage, a frozen block with its drop path) in eval mode, and every BatchNorm in eval
    mode: it keeps the statistics the starting probe was fit with while its scale and shift
    train. (In training mode a random-init twin's initial statistics, 0 and 1, give way to batch
    statistics at the first step, and the head fit to the old features fell to chance from a
    probe far above it: tests/test_finetune.py.)"""
    net.train()
    for module in net.modules():
        params = list(module.parameters())
        if (params and not any(p.requires_grad for p in params)) or \
                isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return net


def lr_groups(net: nn.Module, weight_decay: float, layer_decay: float) -> list[dict]:
    """Optimizer groups of the trainable parameters, each with `lr_scale` = layer_decay^(L - l)
    for a parameter of layer l (encoders.layer_depths; the head is layer L) and weight decay
    on weights only (not biases, norms, position embedding or tokens)."""
    depths, last = encoders.layer_depths(net)
    groups: dict[tuple, dict] = {}
    for name, param in net.named_parameters():
        if not param.requires_grad:
            continue
        decayed = param.ndim > 1 and not name.endswith(".bias") and name not in NO_DECAY
        key = (depths[name], decayed)
        if key not in groups:
            groups[key] = {"params": [], "names": [], "lr_scale": layer_decay ** (last - key[0]),
                           "weight_decay": weight_decay if decayed else 0.0}
        groups[key]["params"].append(param)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


@torch.no_grad()
def probe_head(probe: nn.Module, head: nn.Linear) -> nn.Linear:
    """Copy a trained linear probe (BatchNorm without affine, then Linear: probe.linear_classifier)
    into `head`, the BatchNorm folded in: head(f) = probe(f) for every feature f."""
    bn, linear = probe[0], probe[1]
    scale = (bn.running_var + bn.eps).rsqrt()
    head.weight.copy_(linear.weight * scale)
    head.bias.copy_(linear.bias - (linear.weight * scale) @ bn.running_mean)
    return head


def head_of(net: nn.Module) -> nn.Linear:
    """The classifier's linear head: torchvision's `fc`, timm's `head`."""
    fc = getattr(net, "fc", None)
    return fc if isinstance(fc, nn.Linear) else net.head


@torch.no_grad()
def head_inputs(net: nn.Module, data: ImageSet, normalize: Normalize, device,
                bs: int = 256) -> torch.Tensor:
    """The features the classifier's head reads (eval mode), for every image of `data`."""
    seen = []
    hook = head_of(net).register_forward_pre_hook(lambda _, args: seen.append(args[0].float().cpu()))
    try:
        predictions(net, data, normalize, device, bs)
    finally:
        hook.remove()
    return torch.cat(seen)


def starting_classifier(encoder: nn.Module, p: dict, train: ImageSet, device: torch.device,
                        seed: int = 0) -> nn.Module:
    """What fine-tuning starts from: the plain timm / torchvision classifier of the export and,
    with eval.finetune_head: probe (LP-FT), its head a linear probe trained on the fine-tuning
    images' features: fine-tuning starts at that probe's accuracy, which is its depth 0 (the gain
    of every depth is measured from it, on the same labelled images)."""
    e = p["eval"]
    vit = encoders.spec(p).family == "vit"
    torch.manual_seed(seed)
    net = encoders.classifier(encoder, p, len(train.classes),
                              e["finetune_drop_path"] if vit else 0.0).to(device)
    normalize = normalizer(p)
    if e["finetune_head"] == "probe":
        feats = head_inputs(net, train, normalize, device)
        probe = linear_probe(feats, train.labels, None, None, num_classes=len(train.classes),
                             seed=seed, device=device, **probe_settings(e))["model"]
        probe_head(probe.cpu(), head_of(net))
    return net.eval()


def finetune(start: nn.Module, p: dict, train: ImageSet, val: ImageSet, device: torch.device,
             blocks: int | str = "all", seed: int = 0, on_epoch=None) -> dict:
    """Fine-tune a copy of `start` (starting_classifier; it is not touched) on `train`, the last
    `blocks` blocks or stages and the head; val top-1 after every epoch. Returns the history,
    the final val top-1, the model and its input normalisation."""
    e = p["eval"]
    vit = encoders.spec(p).family == "vit"
    torch.manual_seed(seed)
    net = freeze(copy.deepcopy(start), blocks).to(device)
    bs = min(e["finetune_batch_size"], len(train))
    steps_per_epoch = len(train) // bs
    total = steps_per_epoch * e["finetune_epochs"]
    lr = scaled_lr(e["finetune_base_lr"], bs)
    groups = lr_groups(net, e["finetune_weight_decay"], e["finetune_layer_decay"] if vit else 1.0)
    opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups],
                            lr=lr, betas=(0.9, 0.999), fused=device.type == "cuda" or None)
    augment = batch_augment(p, {**FINETUNE_AUGMENT, "crop_scale": e["finetune_crop_scale"]},
                            encoders.spec(p).image_size)
    normalize = normalizer(p)
    images, labels = train.images.to(device), train.labels.to(device)
    g = torch.Generator().manual_seed(seed)
    warmup = round(e["finetune_warmup_epochs"] * steps_per_epoch)
    history, step = [], 0
    for epoch in range(e["finetune_epochs"]):
        train_mode(net)
        order = torch.randperm(len(train), generator=g).to(device)
        for i in range(steps_per_epoch):
            idx = order[i * bs:(i + 1) * bs]
            set_lr(opt, warmup_cosine(step, total, warmup, lr))
            x = augment(images[idx], step_generator(seed, step, 0, device))
            with _autocast(device):
                loss = F.cross_entropy(net(x), labels[idx],
                                       label_smoothing=e["finetune_label_smoothing"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        rec = {"epoch": epoch + 1, "val_top1": accuracy(net, val, normalize, device)}
        history.append(rec)
        if on_epoch is not None:
            on_epoch(rec)
    return {"history": history, "val_top1": history[-1]["val_top1"] if history else None,
            "train_images": len(train), "model": net.eval(), "normalize": normalize}


def _autocast(device: torch.device):
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predictions(model: nn.Module, data: ImageSet, normalize: Normalize, device,
                bs: int = 512) -> torch.Tensor:
    """Top-1 class of every image (int64, CPU)."""
    model.eval()
    out = []
    for s in range(0, len(data), bs):
        with _autocast(torch.device(device)):
            out.append(model(normalize(data.images[s:s + bs].to(device))).argmax(dim=1).cpu())
    return torch.cat(out)


def accuracy(model: nn.Module, data: ImageSet, normalize: Normalize, device, bs: int = 512) -> float:
    return top1(predictions(model, data, normalize, device, bs), data.labels)
