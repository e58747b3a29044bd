"""Every setting, declared once: its default, what it means and the values it accepts.

The shared settings live here (`SHARED`, dotted names); each method declares its own keys the same
way in its file (`Method.keys`, under `<method>.`). The defaults a run starts from, the checks
`params.resolve` makes and the table of docs/configuration.md all come from these declarations,
so a setting has one home.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class Key:
    """One setting: its default, what it means, and the values it accepts. Without `check`, the
    value must have the default's type (`nullable`'s when the default is null) and meet the
    constraints given; with `check`, that function alone decides, and `accepted` says in words
    what it accepts."""
    default: Any
    doc: str = ""
    range: tuple | None = None    # (low, high, inclusive): inclusive True, False or brackets "(]"
    positive_int: bool = False
    nullable: type | None = None  # may be null; the type it takes when set
    choices: tuple | None = None
    pair: bool = False            # [low, high], two numbers with 0 <= low <= high
    check: Callable[[Any], bool] | None = None
    accepted: str = ""            # what `check` accepts, as an error message says it
    resumable: bool = False       # may change when a run resumes (its schedule grows, its global
                                  # batch is re-split: checked against the checkpoint)
    shown: bool = False           # listed in a report's table of each run's key params


def checkpoint_interval(value) -> tuple[str, float]:
    """train.checkpoint_every: '10min', '500steps', '1epoch' (or an integer: epochs) -> (unit,
    amount); ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return "epochs", value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(min|steps?|epochs?)\s*", str(value))
    if not m or float(m.group(1)) <= 0:
        raise ValueError(value)
    unit = {"min": "min", "step": "steps", "steps": "steps", "epoch": "epochs",
            "epochs": "epochs"}[m.group(2)]
    return unit, float(m.group(1))


def _is_interval(value) -> bool:
    try:
        checkpoint_interval(value)
        return True
    except ValueError:
        return False


def _is_int(x) -> bool:
    return type(x) is int


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _is_blocks(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        x == "all" or (_is_int(x) and x >= 1) for x in value)


def _is_snapshots(value) -> bool:
    return (_is_int(value) and value >= 0) or (
        isinstance(value, list) and bool(value) and all(_is_int(x) and x >= 0 for x in value))


def _is_bcsh(value) -> bool:
    return value is None or (isinstance(value, list) and len(value) == 4
                             and all(_is_number(x) and x >= 0 for x in value) and value[3] <= 0.5)


def _is_class_selection(value) -> bool:
    return (value is None or (_is_int(value) and value >= 1) or isinstance(value, str)
            or (isinstance(value, list) and bool(value) and all(isinstance(x, str) for x in value)))


SHAPES = "shapes (the embedded, generated dataset)"

SHARED: dict[str, Key] = {
    # The run ------------------------------------------------------------------------------------
    "name": Key(None, "run name: the directory under out_dir; default = the params file's stem",
                nullable=str),
    "method": Key("mae", "a registered method: mae | simclr | byol | dino (sslnb/methods/)"),
    "device": Key("auto", "auto | cpu | cuda | cuda:N"),
    "precision": Key("auto", "auto (bf16 on GPUs that have it, fp16 + scaler on older ones, fp32 "
                     "on CPU) | fp32 | bf16 | fp16", choices=("auto", "fp32", "bf16", "fp16")),
    "seed": Key(0, "seed of the run's initial weights, views and data order"),
    "out_dir": Key("logs", "runs are written to out_dir/name/"),
    "resume": Key(False, "false | auto (continue from the run's last checkpoint when there is "
                  "one: for Kaggle/Colab sessions that get killed)",
                  check=lambda v: v in (False, True, "auto"),
                  accepted="false, true or auto (continue from the run's checkpoint when there "
                           "is one)", resumable=True),
    # Data ---------------------------------------------------------------------------------------
    "data.source": Key("shapes", "shapes (embedded, generated) | imagenet100 (Kaggle layout) | "
                       "imagenet (full tree, CMC 100 classes) | imagefolder | cifar10 | cifar100 | "
                       "stl10",
                       choices=("shapes", "imagenet100", "imagenet", "imagefolder", "cifar10",
                                "cifar100", "stl10")),
    "data.root": Key(None, "dataset directory; null: on Kaggle the attached imagenet100, for "
                     "cifar/stl ~/.cache/sslnb/torchvision", nullable=str),
    "data.pretrain_classes": Key(
        None, "classes pretraining sees: null (all) | N (the first N) | list of class ids and/or "
        "Kaggle folders, e.g. [train.X1]", check=_is_class_selection,
        accepted="null (all classes), a positive integer N (the first N classes), or a list of "
                 "class ids and/or Kaggle folders such as [train.X1]"),
    "data.pretrain_fraction": Key(1.0, "fraction of the pretraining images kept (per class, "
                                  "seeded by data.seed; a smaller fraction is a subset of a "
                                  "larger one): the data-scale sweep", range=(0.0, 1.0, "(]")),
    "data.val_per_class": Key(50, "val images carved from each class's training images (seeded "
                              "by data.seed); test is the official held-out set (Kaggle val.X, "
                              "ImageNet val/, CIFAR/STL test)", positive_int=True),
    "data.val_fraction": Key(0.1, "a flat imagefolder (root/<class>/ only): fraction of each "
                             "class held out for val, and as much for test",
                             range=(0.0, 0.5, False)),
    "data.cache_dir": Key(None, "decode-once image cache; null: $SSLNB_CACHE or ~/.cache/sslnb",
                          nullable=str),
    "data.cache_size": Key(None, "cached image side in pixels (short side resized, "
                           "centre-cropped); null: image_size", positive_int=True, nullable=int),
    "data.decode_workers": Key(None, "processes decoding images into the cache; null: every CPU",
                               positive_int=True, nullable=int),
    "data.download": Key(True, "cifar10/cifar100/stl10: download through torchvision when "
                         "missing"),
    "data.placement": Key("auto", "where training images live: auto (on the GPU when they fit "
                          "in a third of its free memory) | device | host (streamed per batch)",
                          choices=("auto", "device", "host")),
    "data.image_size": Key(32, "training resolution in pixels", positive_int=True),
    "data.num_train": Key(10000, f"{SHAPES}: training images", positive_int=True),
    "data.num_val": Key(2000, f"{SHAPES}: validation images (every choice is made on them)",
                        positive_int=True),
    "data.num_test": Key(2000, f"{SHAPES}: test images (what the report shows; never used for a "
                         "choice)", positive_int=True),
    "data.num_classes": Key(10, f"{SHAPES}: how many of the 10 shape classes",
                            range=(2, 10, True)),
    "data.seed": Key(0, "shapes: generation seed (same seed, same images; each split its own); "
                     "file trees and torchvision sets: the seed that carves val"),
    # The shapes' difficulty was chosen on val for the CPU demo (docs/reports.md): harder shapes
    # (scale [0.5, 0.8], shift 0.25, noise 0.04, texture 0.25) leave short schedules near their
    # random-init encoders.
    "data.scale": Key([0.6, 0.9], "shapes: object size as a fraction of the image half-width",
                      pair=True),
    "data.max_shift": Key(0.15, "shapes: object centre offset as a fraction of the image "
                          "half-width", range=(0.0, 1.0, True)),
    "data.noise": Key(0.02, "shapes: std of per-pixel Gaussian noise (0-1 intensities)",
                      range=(0.0, None, True)),
    "data.texture": Key(0.15, "shapes: amplitude of the background's low-frequency texture",
                        range=(0.0, None, True)),
    "data.mean": Key([0.485, 0.456, 0.406], "per-channel normalisation applied after "
                     "augmentation: mean"),
    "data.std": Key([0.229, 0.224, 0.225], "per-channel normalisation applied after "
                    "augmentation: std"),
    # The encoder --------------------------------------------------------------------------------
    "model.encoder": Key("vit_tiny_patch16_224", "a timm ViT name or a torchvision ResNet name "
                         "(each method says which it trains)"),
    "model.patch_size": Key(4, "ViTs: patch size (4 for 32px, 16 for 224px)", positive_int=True),
    "model.depth": Key(None, "ViTs: number of encoder blocks (null = the timm model's)",
                       positive_int=True, nullable=int),
    "model.stem": Key("imagenet", "ResNets: imagenet (7x7/2 conv + max-pool) | cifar (3x3/1 "
                      "conv, no pool)", choices=("imagenet", "cifar")),
    "model.feature_pool": Key("cls", "what a ViT exports for probing: cls (token after the final "
                              "norm, timm 'token') | mean (patch tokens averaged, then a fresh "
                              "LayerNorm: timm 'avg' / MAE's global_pool); ResNets: the pooled "
                              "output", choices=("cls", "mean")),
    "model.zero_init_residual": Key(True, "ResNets: the last BatchNorm of each residual block "
                                    "starts at 0 (the SimCLR code's ResNet)"),
    # Views --------------------------------------------------------------------------------------
    "augment.crop_scale": Key([0.08, 1.0], "random resized crop: fraction of the image area kept "
                              "(torchvision's default; each method sets its paper's)", pair=True),
    "augment.crop_ratio": Key([0.75, 1.3333333], "random resized crop: aspect ratio range",
                              pair=True),
    "augment.flip_p": Key(0.5, "horizontal flip probability", range=(0.0, 1.0, True)),
    "augment.jitter_p": Key(0.0, "colour jitter probability (simclr: 0.8)",
                            range=(0.0, 1.0, True)),
    "augment.jitter_strength": Key(1.0, "s in ColorJitter(0.8s, 0.8s, 0.8s, 0.2s)",
                                   range=(0.0, None, True)),
    "augment.jitter_bcsh": Key(None, "the four ColorJitter amplitudes [brightness, contrast, "
                               "saturation, hue] instead of s (BYOL: [0.4, 0.4, 0.2, 0.1])",
                               check=_is_bcsh,
                               accepted="null (amplitudes from augment.jitter_strength) or four "
                                        "amplitudes [brightness, contrast, saturation, hue], each "
                                        ">= 0, hue <= 0.5, e.g. [0.4, 0.4, 0.2, 0.1]"),
    "augment.gray_p": Key(0.0, "random grayscale probability (simclr: 0.2)",
                          range=(0.0, 1.0, True)),
    "augment.blur_p": Key(0.0, "Gaussian blur probability (simclr on ImageNet: 0.5)",
                          range=(0.0, 1.0, True)),
    "augment.solarize_p": Key(0.0, "solarization probability (BYOL: 0.2 on its second view)"),
    # Pretraining --------------------------------------------------------------------------------
    "train.epochs": Key(10, "passes over the pretraining images", positive_int=True,
                        resumable=True),
    "train.steps": Key(None, "optimizer steps in all; null = epochs x steps per epoch. Set it to "
                       "train a smaller set for a larger set's steps (a data-scale sweep at equal "
                       "steps)", positive_int=True, nullable=int, resumable=True),
    "train.batch_size": Key(256, "per optimizer step and per process, before accumulation",
                            positive_int=True, resumable=True),
    "train.accum_steps": Key(1, "gradient accumulation: effective batch = batch_size * "
                             "accum_steps * world", positive_int=True, resumable=True),
    "train.optimizer": Key("adamw", "adamw | lars | sgd", choices=("adamw", "lars", "sgd")),
    "train.base_lr": Key(1.0e-3, "lr = base_lr * effective_batch / 256 (each method sets its "
                         "paper's)", range=(0.0, None, False)),
    "train.min_lr": Key(0.0, "the learning rate the cosine schedule ends at",
                        range=(0.0, None, True)),
    "train.weight_decay": Key(0.0, "not applied to biases and norm parameters (each method sets "
                              "its paper's)", range=(0.0, None, True)),
    "train.betas": Key([0.9, 0.999], "adamw (torch's default; MAE: [0.9, 0.95])", pair=True),
    "train.momentum": Key(0.9, "lars, sgd"),
    "train.warmup_epochs": Key(1.0, "linear warm-up, then half-cosine, updated every step",
                               range=(0.0, None, True)),
    "train.grad_clip": Key(None, "max gradient norm, or null", nullable=float),
    "train.compile": Key(False, "torch.compile the model"),
    "train.sync_bn": Key(False, "under torch.distributed: BatchNorm statistics over the global "
                         "batch (SimCLR's ResNet and head)"),
    "train.channels_last": Key(True, "ResNets only"),
    "train.log_every": Key(10, "steps between metric lines (and the only host syncs)",
                           positive_int=True),
    "train.snapshots": Key(5, "encoder snapshots kept at evenly spaced steps, step 0 (random "
                           "init) and the last included, probed for the curves across "
                           "pretraining (0: none); or a list of the steps to keep, e.g. [0, 128, "
                           "208] (the last is always kept)", check=_is_snapshots,
                           accepted="a number of evenly spaced snapshots (0: none), or a list of "
                                    "the optimizer steps to keep, e.g. [0, 100, 250] (the last "
                                    "step is always kept)"),
    "train.checkpoint_every": Key("10min", "how often a checkpoint is written: 10min | 500steps "
                                  "| 1epoch (and always at the end); a kill costs at most this",
                                  check=_is_interval,
                                  accepted="a positive number with a unit: 10min, 500steps, "
                                           "1epoch (or an integer of epochs)"),
    # Evaluation ---------------------------------------------------------------------------------
    "eval.batch_size": Key(None, "feature extraction; null: 512 on a GPU, 128 on a CPU (whose "
                           "caches larger batches leave: ViT-Ti/4 at 32px, 259 vs 182 images/s)",
                           positive_int=True, nullable=int),
    "eval.probe_epochs": Key(100, "linear probe epochs", positive_int=True),
    "eval.probe_batch_size": Key(256, "linear probe batch", positive_int=True),
    "eval.probe_optimizer": Key("sgd", "sgd | lars (LARS, the MAE protocol, assumes batches of "
                                "~16k; it underfits at 256)", choices=("lars", "sgd")),
    "eval.probe_base_lr": Key(0.1, "lr = probe_base_lr * probe_batch_size / 256 (the MAE "
                              "protocol's base lr)"),
    "eval.probe_weight_decay": Key(0.0, "linear probe weight decay", range=(0.0, None, True)),
    "eval.probe_warmup_epochs": Key(10, "linear probe warm-up epochs", range=(0, None, True)),
    "eval.knn_k": Key(20, "kNN: neighbours that vote", positive_int=True),
    "eval.knn_temperature": Key(0.07, "kNN: temperature of the neighbours' similarity weights",
                                range=(0.0, None, False)),
    # Fine-tuning: MAE's recipe (He et al. 2021, appendix A.1) for ViTs: AdamW, layer-wise lr
    # decay, drop path, label smoothing, warm-up + cosine; ResNets: the same AdamW recipe without
    # layer decay or drop path (torchvision ResNets have none). The same budget for the
    # random-init twin.
    "eval.finetune_epochs": Key(0, "fine-tuning epochs (0 = skip)", range=(0, None, True)),
    "eval.finetune_head": Key("probe", "probe: the head starts as the encoder's trained linear "
                              "probe (LP-FT, Kumar et al. 2022; a new head needs far more steps "
                              "than a short budget has) | new: a fresh head (MAE's recipe)",
                              choices=("probe", "new")),
    "eval.finetune_random_init": Key(True, "fine-tune the random-init twin too (false: its probe "
                                     "and kNN only; fine-tuning's gain is then read against the "
                                     "encoder's own starting probe)"),
    "eval.finetune_blocks": Key(["all"], "how many of the last blocks (ViT) / stages (ResNet) "
                                "train, the head always: all = end to end; [1, 2, all] = the MAE "
                                "paper's partial fine-tuning (its Figure 9); 0 is the linear "
                                "probe", check=_is_blocks,
                                accepted="a list of how many of the last blocks (ViT) or stages "
                                         "(ResNet) fine-tuning trains: positive integers and/or "
                                         "'all' (end to end), e.g. [1, 2, all]"),
    "eval.finetune_base_lr": Key(1.0e-3, "lr = finetune_base_lr * finetune_batch_size / 256",
                                 range=(0.0, None, False)),
    "eval.finetune_batch_size": Key(128, "fine-tuning batch", positive_int=True),
    "eval.finetune_weight_decay": Key(0.05, "fine-tuning weight decay", range=(0.0, None, True)),
    "eval.finetune_layer_decay": Key(0.75, "ViTs: block i of d trains at lr * decay^(d - i), the "
                                     "embeddings at decay^(d + 1), the head at lr (1.0: none)",
                                     range=(0.0, 1.0, "(]")),
    "eval.finetune_drop_path": Key(0.1, "ViTs: stochastic depth rate", range=(0.0, 1.0, "[)")),
    "eval.finetune_label_smoothing": Key(0.1, "fine-tuning label smoothing",
                                         range=(0.0, 1.0, "[)")),
    "eval.finetune_crop_scale": Key([0.2, 1.0], "random resized crop of the fine-tuning images: "
                                    "fraction of the area kept (flip too; no colour)", pair=True),
    "eval.finetune_warmup_epochs": Key(1.0, "fine-tuning warm-up epochs",
                                       range=(0.0, None, True)),
    "eval.finetune_max_train": Key(None, "use only this many labelled training images, every "
                                   "class alike (null = all)", positive_int=True, nullable=int),
}


def nested(flat: dict[str, Any]) -> dict:
    """{'train.epochs': 10} -> {'train': {'epochs': 10}}."""
    out: dict = {}
    for dotted, value in flat.items():
        *parents, leaf = dotted.split(".")
        d = out
        for part in parents:
            d = d.setdefault(part, {})
        d[leaf] = value
    return out


def _cell(value: Any) -> str:
    import yaml
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    return text.removesuffix("...").strip()


def markdown_table(keys: dict[str, Key]) -> str:
    """docs/configuration.md's table of every key: name, default, meaning."""
    rows = ["| Key | Default | Meaning |", "|---|---|---|"]
    for name, key in keys.items():
        doc = key.doc.replace(" | ", " / ").replace("|", "/")
        rows.append(f"| `{name}` | `{_cell(key.default)}` | {doc} |")
    return "\n".join(rows) + "\n"
