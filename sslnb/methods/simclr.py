"""SimCLR (Chen et al. 2020): an encoder and an MLP projection head trained with NT-Xent so that
two augmented views of an image agree. The encoder is a torchvision ResNet as in the paper, or the
same timm ViT as MAE's (as MoCo v3 trains contrastive ViTs), so that objective and architecture
can be told apart. Features for probing are taken before the head (the paper's finding: the head
discards information the downstream task needs). Everything SimCLR-specific lives in this file;
the loss formula is `losses.nt_xent`.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import encoders
from ..augment import BatchAugment
from ..flops import module_forward
from ..losses import nt_xent
from ..randomness import step_generator
from .base import Key, Method


class ProjectionHead(nn.Sequential):
    """Linear-BN-ReLU-Linear-BN as in the paper's code (model_util.py): hidden width = the
    encoder's width (2048-2048-128 for a ResNet-50), linears without bias (BatchNorm follows
    each), and the output BatchNorm scales but does not shift (`center=False` there)."""

    def __init__(self, in_dim: int, hidden_dim: int | None = None, out_dim: int = 128,
                 output_bn: bool = True):
        hidden_dim = hidden_dim or in_dim
        layers = [nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                  nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim, bias=not output_bn)]
        if output_bn:
            bn = nn.BatchNorm1d(out_dim)
            bn.register_parameter("bias", None)  # scale, no shift
            layers.append(bn)
        super().__init__(*layers)


class SimCLR(nn.Module):
    def __init__(self, encoder: nn.Module, *, proj_hidden_dim: int | None = None,
                 proj_dim: int = 128, temperature: float = 0.5, proj_output_bn: bool = True,
                 feature_pool: str = "cls"):
        super().__init__()
        self.encoder = encoder  # encoders.build: a ResNet or a ViT
        self.projector = ProjectionHead(self.encoder.feature_dim, proj_hidden_dim, proj_dim,
                                        proj_output_bn)
        self.temperature = temperature
        self.feature_pool = feature_pool  # a ViT's exported feature is also what the head sees

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def forward(self, view1: torch.Tensor, view2: torch.Tensor):
        """Both views go through the encoder as one batch (one BN statistic, one kernel launch)."""
        z = self.projector(self.features(torch.cat([view1, view2], dim=0)))
        z1, z2 = z.chunk(2, dim=0)
        return nt_xent(z1, z2, self.temperature), z1, z2

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return encoders.image_feature(self.encoder, imgs, self.feature_pool)


class SimCLRMethod(Method):
    name, title, showcase_name = "simclr", "SimCLR", "simclr_views"
    min_batch, min_batch_why = 2, ("the batch's other images are each image's negatives; the "
                                   "paper used 4096")
    objective = "contrastive"
    citation = "Chen et al. 2020"
    accepts = ("a torchvision ResNet name such as resnet18 or resnet50, or a timm ViT name such "
               "as vit_small_patch16_224")
    description = ("two augmented views of each image are pulled together and pushed away from "
                   "the batch's other images (NT-Xent) through an MLP head")
    keys = {
        "temperature": Key(0.5, "NT-Xent temperature", range=(0.0, None, False), shown=True),
        "proj_dim": Key(128, "projection head output width", positive_int=True, shown=True),
        "proj_hidden_dim": Key(None, "projection head hidden width; null: the encoder's width "
                                     "(the paper: 2048 for a ResNet-50)", nullable=int,
                               positive_int=True),
        "proj_output_bn": Key(True, "BatchNorm (scale, no shift) on the head's output, as in the "
                                    "paper's code"),
    }
    defaults = {
        "model": {"encoder": "resnet18", "stem": "imagenet"},
        "augment": {"crop_scale": [0.08, 1.0], "jitter_p": 0.8, "gray_p": 0.2},
        "train": {"optimizer": "lars", "base_lr": 0.3, "weight_decay": 1.0e-6},
    }

    def build(self, p: dict) -> SimCLR:
        return SimCLR(encoders.build(p), feature_pool=encoders.spec(p).feature_pool,
                      **p["simclr"])

    def views(self, augments, x, g, p):
        return encoders.input_layout([augments[0](x, g[0]), augments[0](x, g[1])], p)

    def loss(self, forward, views, g):
        return forward(*views)[0]

    def constant_loss(self, p: dict) -> float:
        """ln(2N - 1): every view the same embedding, the positive one among 2N - 1 equals."""
        return math.log(2 * p["train"]["batch_size"] - 1)

    def train_flops_per_image(self, p: dict, model: SimCLR) -> float:
        """The encoder on both whole views (every convolution and linear of a ResNet; a ViT's
        blocks by formula), the head on both, x3 for training (see flops.py)."""
        head = module_forward(model.projector, (2, model.feature_dim))
        return 3 * (2 * encoders.forward_flops(model.encoder, p) + head)

    @torch.no_grad()
    def showcase(self, model, p: dict, images: torch.Tensor) -> list[tuple]:
        """Two augmented views of the same images, as the loss sees them (before normalising)."""
        aug = BatchAugment(p["augment"], encoders.spec(p).image_size, [0, 0, 0], [1, 1, 1])
        cpu = torch.device("cpu")
        return [("original", images.float() / 255)] + [
            (f"view {v + 1}", aug(images, step_generator(p["seed"], 0, v, cpu))) for v in (0, 1)]


METHOD = SimCLRMethod()
