"""DINO (Caron et al. 2021): self-distillation with no labels. A student ViT and its head
match, on every crop, the sharpened and centred output of a teacher (an exponential moving
average of the student) on the two global crops; the student also sees several small local
crops, the teacher never does. Centering and sharpening keep it from collapsing. Everything
DINO-specific lives in this file; the loss formula is `losses.dino_loss`. As for every method,
the student's encoder is what is probed and exported (DINO's own evaluation reads the teacher).
"""
from __future__ import annotations

import copy
import math

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from .. import encoders
from ..augment import BatchAugment
from ..errors import ParamsError
from ..losses import dino_loss, full_precision
from ..randomness import step_generator
from .base import Key, Method
from .momentum import cosine_momentum, ema_update, half_cosine


class DINOHead(nn.Module):
    """A 3-layer MLP (GELU) to a bottleneck, L2-normalised, then a weight-normalised linear layer
    to K prototypes whose norms are fixed at 1 (DINO's norm_last_layer)."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 2048,
                 bottleneck_dim: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, hidden_dim), nn.GELU(),
                                 nn.Linear(hidden_dim, bottleneck_dim))
        for m in self.mlp:
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)
        nn.init.trunc_normal_(self.last_layer.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return prototype_scores(self.mlp(x), self.last_layer.weight)


@full_precision
def prototype_scores(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Cosines of the bottleneck output with the K unit prototypes, in fp32: the teacher divides
    them by 0.04, so bf16's 0.004 steps would move its targets by about 0.1."""
    return F.linear(F.normalize(x.float(), dim=-1), F.normalize(weight.float(), dim=1))


class DINO(nn.Module):
    def __init__(self, encoder: nn.Module, *, out_dim: int, hidden_dim: int, bottleneck_dim: int,
                 student_temp: float, teacher_temp: float, feature_pool: str = "cls"):
        super().__init__()
        self.encoder = encoder
        self.head = DINOHead(encoder.feature_dim, out_dim, hidden_dim, bottleneck_dim)
        self.feature_pool = feature_pool
        self.student_temp = student_temp
        self.teacher_encoder = copy.deepcopy(encoder).requires_grad_(False)
        self.teacher_head = copy.deepcopy(self.head).requires_grad_(False)
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.register_buffer("teacher_temp", torch.tensor(float(teacher_temp)))  # after_step moves it
        # The step's teacher outputs, summed over its micro-batches, for the center's update:
        # plain tensors, not buffers, which DDP would overwrite with rank 0's at every forward.
        self.teacher_sum = self.teacher_rows = None

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return encoders.image_feature(self.encoder, imgs, self.feature_pool)

    def student(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Logits of every view; views of one size go through the ViT as one batch."""
        out, start = [], 0
        while start < len(views):
            end = start
            while end < len(views) and views[end].shape == views[start].shape:
                end += 1
            logits = self.head(self.features(torch.cat(views[start:end], dim=0)))
            out += list(logits.chunk(end - start, dim=0))
            start = end
        return out

    def forward(self, views: list[torch.Tensor], n_global: int = 2) -> torch.Tensor:
        with torch.no_grad():
            t = self.teacher_head(encoders.image_feature(
                self.teacher_encoder, torch.cat(views[:n_global], dim=0), self.feature_pool))
            if self.teacher_sum is None or self.teacher_sum.device != t.device:
                self.teacher_sum = torch.zeros(t.shape[1], device=t.device)
                self.teacher_rows = torch.zeros((), device=t.device)
            self.teacher_sum += t.float().sum(dim=0)
            self.teacher_rows += t.shape[0]
        return dino_loss(student=self.student(views), teacher=list(t.chunk(n_global, dim=0)),
                         center=self.center, student_temp=self.student_temp,
                         teacher_temp=self.teacher_temp)

    def online_and_target(self) -> tuple[list, list]:
        online = [*self.encoder.parameters(), *self.head.parameters()]
        target = [*self.teacher_encoder.parameters(), *self.teacher_head.parameters()]
        return online, target

    @torch.no_grad()
    def update_center(self, m: float) -> None:
        """center <- m center + (1 - m) mean of the step's teacher outputs (every process's)."""
        total, rows = self.teacher_sum, self.teacher_rows
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(total)
            dist.all_reduce(rows)
        self.center.mul_(m).add_(total / rows, alpha=1 - m)
        total.zero_()
        rows.zero_()


def teacher_temperature(step: int, total_steps: int, d: dict) -> float:
    """Linear warm-up from teacher_temp_start to teacher_temp over the first teacher_temp_warmup
    of the steps, then constant (DINO: 0.04 to 0.07 over 30 epochs)."""
    warm = d["teacher_temp_warmup"] * total_steps
    if step >= warm:
        return d["teacher_temp"]
    return d["teacher_temp_start"] + (d["teacher_temp"] - d["teacher_temp_start"]) * step / warm


class DINOMethod(Method):
    name, title, showcase_name = "dino", "DINO", "dino_crops"
    objective = "self-distillation"
    citation = "Caron et al. 2021"
    description = ("a student ViT matches a momentum teacher's centred, sharpened output on two "
                   "global crops from every crop, local ones included")
    accepts = "a timm ViT name such as vit_small_patch16_224"
    keys = {
        "out_dim": Key(65536, "prototypes K of the head's last layer", positive_int=True,
                       shown=True),
        "hidden_dim": Key(2048, "head MLP hidden width", positive_int=True),
        "bottleneck_dim": Key(256, "head bottleneck width (L2-normalised)", positive_int=True),
        "momentum": Key(0.996, "the teacher's starting decay, raised to 1 on a cosine schedule",
                        range=(0.0, 1.0, True), shown=True),
        "center_momentum": Key(0.9, "momentum of the center of the teacher's outputs",
                               range=(0.0, 1.0, True)),
        "student_temp": Key(0.1, "student softmax temperature", range=(0.0, None, False)),
        "teacher_temp_start": Key(0.04, "teacher temperature at the start",
                                  range=(0.0, None, False)),
        "teacher_temp": Key(0.07, "teacher temperature after its warm-up",
                            range=(0.0, None, False), shown=True),
        "teacher_temp_warmup": Key(0.3, "fraction of the steps over which the teacher "
                                        "temperature warms (DINO: 30 of 100 epochs)",
                                   range=(0.0, 1.0, True)),
        "freeze_last_layer": Key(0.01, "fraction of the steps during which the head's last "
                                       "layer does not train (DINO: 1 of 100 epochs)",
                                 range=(0.0, 1.0, True)),
        "weight_decay_end": Key(0.4, "weight decay at the end of its cosine schedule from "
                                     "train.weight_decay", range=(0.0, None, True)),
        "global_crop_scale": Key([0.4, 1.0], "area fraction of the two global crops"),
        "local_crop_scale": Key([0.05, 0.4], "area fraction of the local crops"),
        "local_crops": Key(6, "local crops per image (0: two global crops only)",
                           range=(0, None, True), shown=True),
        "local_size": Key(96, "local crop side in pixels (global crops: data.image_size)",
                          positive_int=True, shown=True),
        "blur_p": Key([1.0, 0.1, 0.5], "Gaussian blur probability of the first and second "
                                       "global crop and of the local crops"),
        "solarize_p": Key([0.0, 0.2], "solarization probability of the first and second global "
                                      "crop (local crops: none)"),
    }
    defaults = {
        "model": {"encoder": "vit_small_patch16_224", "patch_size": 16, "feature_pool": "cls"},
        "augment": {"jitter_p": 0.8, "jitter_bcsh": [0.4, 0.4, 0.2, 0.1], "gray_p": 0.2},
        "train": {"optimizer": "adamw", "base_lr": 5.0e-4, "min_lr": 1.0e-6,
                  "weight_decay": 0.04, "betas": [0.9, 0.999], "warmup_epochs": 10.0,
                  "grad_clip": 3.0},
    }

    def build(self, p: dict) -> DINO:
        d = p["dino"]
        return DINO(encoders.build(p), out_dim=d["out_dim"], hidden_dim=d["hidden_dim"],
                    bottleneck_dim=d["bottleneck_dim"], student_temp=d["student_temp"],
                    teacher_temp=d["teacher_temp_start"], feature_pool=encoders.spec(p).feature_pool)

    def check(self, p: dict, source_of: dict) -> None:
        super().check(p, source_of)
        d, src = p["dino"], lambda k: source_of.get(f"dino.{k}", "defaults")  # noqa: E731
        enc = encoders.spec(p)
        if enc.family != "vit":
            raise ParamsError(f"{source_of.get('model.encoder', 'defaults')}: DINO trains a ViT "
                              f"here (its multi-crop resamples a ViT's position grid); "
                              f"model.encoder={enc.name!r}: use a timm ViT name "
                              f"such as vit_small_patch16_224.")
        if d["local_crops"] and d["local_size"] % enc.patch_size:
            raise ParamsError(f"{src('local_size')}: dino.local_size={d['local_size']} is not "
                              f"divisible by model.patch_size={enc.patch_size}; choose "
                              f"a multiple of the patch (e.g. 16 at patch 4, 96 at patch 16).")
        for key in ("global_crop_scale", "local_crop_scale"):
            lo, hi = d[key]
            if not 0 < lo <= hi <= 1:
                raise ParamsError(f"{src(key)}: dino.{key}={d[key]} must be [low, high] with "
                                  f"0 < low <= high <= 1, e.g. [0.4, 1.0].")
        for key, n in (("blur_p", 3), ("solarize_p", 2)):
            if len(d[key]) != n or not all(0 <= v <= 1 for v in d[key]):
                raise ParamsError(f"{src(key)}: dino.{key}={d[key]} must be {n} probabilities "
                                  f"in [0, 1], e.g. {self.keys[key].default}.")
        if d["teacher_temp_start"] > d["teacher_temp"]:
            raise ParamsError(f"{src('teacher_temp_start')}: the teacher temperature warms up: "
                              f"dino.teacher_temp_start={d['teacher_temp_start']} must not exceed "
                              f"dino.teacher_temp={d['teacher_temp']}.")

    def augments(self, p: dict) -> list[dict]:
        """Two global crops (by default the first always blurred, the second rarely, and
        sometimes solarized, as BYOL's pair) and the local crops (blur p 0.5), smaller."""
        d, a = p["dino"], p["augment"]
        size = encoders.spec(p).image_size
        glob = [{**a, "size": size, "crop_scale": d["global_crop_scale"],
                 "blur_p": d["blur_p"][v], "solarize_p": d["solarize_p"][v]} for v in (0, 1)]
        return glob + [{**a, "size": d["local_size"], "crop_scale": d["local_crop_scale"],
                        "blur_p": d["blur_p"][2], "solarize_p": 0.0}]

    def generators(self, p: dict) -> int:
        return 2 + p["dino"]["local_crops"]

    def views(self, augments, x, g, p):
        local = [augments[2](x, g[2 + i]) for i in range(p["dino"]["local_crops"])]
        return [augments[0](x, g[0]), augments[1](x, g[1])] + local

    def loss(self, forward, views, g):
        return forward(views)

    def before_step(self, model: DINO, opt, step: int, total_steps: int, p: dict) -> None:
        """The head's last layer stays frozen for the first steps; the weight decay follows its
        cosine schedule (decayed groups only)."""
        d = p["dino"]
        if step < d["freeze_last_layer"] * total_steps:
            model.head.last_layer.weight.grad = None
        wd = half_cosine(step, total_steps, p["train"]["weight_decay"], d["weight_decay_end"])
        for group in opt.param_groups:
            if group.get("weights"):
                group["weight_decay"] = wd

    def after_step(self, model: DINO, opt, step: int, total_steps: int, p: dict) -> None:
        d = p["dino"]
        ema_update(*model.online_and_target(), cosine_momentum(step, total_steps, d["momentum"]))
        model.update_center(d["center_momentum"])
        model.teacher_temp.fill_(teacher_temperature(step, total_steps, d))

    def constant_loss(self, p: dict) -> float:
        """ln K: a student matching a teacher whose output is the same for every image, centred
        to uniform over the K prototypes (where DINO sits when it has not started)."""
        return math.log(p["dino"]["out_dim"])

    def train_flops_per_image(self, p: dict, model: DINO) -> float:
        """Student: encoder and head on the two global and the local crops, x3; teacher: encoder
        and head on the two global crops, x1 (see flops.py)."""
        d = p["dino"]
        small = {**p, "data": {**p["data"], "image_size": d["local_size"]}}
        glob, loc = (encoders.forward_flops(model.encoder, q) for q in (p, small))
        head = sum(2 * m.in_features * m.out_features
                   for m in model.head.modules() if isinstance(m, nn.Linear))
        student = 2 * (glob + head) + d["local_crops"] * (loc + head)
        return 3 * student + 2 * (glob + head)

    @torch.no_grad()
    def showcase(self, model, p: dict, images: torch.Tensor) -> list[tuple]:
        """The two global crops and one local crop (shown upsampled to the global size)."""
        cpu, size = torch.device("cpu"), encoders.spec(p).image_size
        rows = [("original", images.float() / 255)]
        for v, (a, title) in enumerate(zip(self.augments(p), ("global 1", "global 2", "local"))):
            x = BatchAugment(a, a["size"], [0, 0, 0], [1, 1, 1])(
                images, step_generator(p["seed"], 0, v, cpu))
            rows.append((title, F.interpolate(x, size=size, mode="nearest")))
        return rows


METHOD = DINOMethod()
