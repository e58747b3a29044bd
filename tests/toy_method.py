"""A method defined outside sslnb, as a user's own would be: it proves that a method is one file.
It uses every part of the interface a momentum-teacher, multi-crop method needs: its own keys
(one nullable, one with a range), two kinds of view of different sizes, a teacher updated after
every optimizer step, and no change anywhere in sslnb. Loaded by SSLNB_METHODS=toy_method (with
tests/ on PYTHONPATH), as a notebook kernel loads it."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from sslnb import encoders
from sslnb.methods import Key, Method, register


class Toy(nn.Module):
    """The encoder's feature of a full view follows a momentum teacher's feature of a half-size
    view of the same image (a BYOL without predictor: a toy, it may collapse)."""

    def __init__(self, encoder: nn.Module, scale: float, pool: str):
        super().__init__()
        self.encoder, self.scale, self.pool = encoder, scale, pool
        self.teacher = copy.deepcopy(encoder).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return encoders.image_feature(self.encoder, imgs, self.pool)

    def forward(self, full: torch.Tensor, half: torch.Tensor) -> torch.Tensor:
        if half.shape[-1] * 2 != full.shape[-1]:
            raise ValueError(f"views of {full.shape[-1]} and {half.shape[-1]} px: expected a half")
        with torch.no_grad():
            target = F.normalize(encoders.image_feature(self.teacher, half, self.pool), dim=1)
        online = F.normalize(self.features(full), dim=1)
        return self.scale * (2 - 2 * (online * target).sum(dim=1)).mean()


class ToyMethod(Method):
    name, title, showcase_name = "toy", "Toy", "toy_views"
    objective = "self-distillation"
    citation = "a test of sslnb"
    description = "a ResNet follows a momentum copy of itself across two view sizes"
    accepts = "a torchvision ResNet name such as resnet18"
    keys = {
        "scale": Key(1.0, "loss scale", range=(0.0, None, False), shown=True),
        "width": Key(None, "unused; a nullable positive integer", nullable=int,
                     positive_int=True),
        "momentum": Key(0.9, "teacher momentum", range=(0.0, 1.0, True)),
    }
    defaults = {"model": {"encoder": "resnet18"},
                "train": {"optimizer": "adamw", "base_lr": 1.0e-3}}

    def build(self, p: dict) -> Toy:
        return Toy(encoders.build(p), p["toy"]["scale"], p["model"]["feature_pool"])

    def augments(self, p: dict) -> list[dict]:
        size = p["data"]["image_size"]
        return [{**p["augment"], "size": size},
                {**p["augment"], "size": size // 2, "crop_scale": [0.5, 1.0]}]

    def generators(self, p: dict) -> int:
        return 2

    def views(self, augments, x, g, p):
        return [augments[0](x, g[0]), augments[1](x, g[1])]

    def loss(self, forward, views, g):
        return forward(*views)

    @torch.no_grad()
    def after_step(self, model: Toy, opt, step: int, total_steps: int, p: dict) -> None:
        teacher = list(model.teacher.parameters())
        torch._foreach_lerp_(teacher, list(model.encoder.parameters()),
                             1 - p["toy"]["momentum"])
        model.updates += 1

    def train_flops_per_image(self, p: dict, model: Toy) -> float:
        return 3 * 1.25 * encoders.forward_flops(model.encoder, p)

    @torch.no_grad()
    def showcase(self, model, p: dict, images: torch.Tensor) -> list[tuple]:
        from sslnb.augment import BatchAugment
        from sslnb.randomness import step_generator
        a = self.augments(p)[0]
        aug = BatchAugment(a, a["size"], [0, 0, 0], [1, 1, 1])
        return [("original", images.float() / 255),
                ("full view", aug(images, step_generator(p["seed"], 0, 0, torch.device("cpu"))))]


METHOD = register(ToyMethod())
