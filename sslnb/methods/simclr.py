"""SimCLR (Chen et al. 2020): a torchvision ResNet encoder and an MLP projection head trained with
NT-Xent so that two augmented views of an image agree. Features for probing are taken before the
head (the paper's finding: the head discards information the downstream task needs). Everything
SimCLR-specific lives in this file; the loss formula is `losses.nt_xent`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import encoders
from ..errors import ParamsError
from ..flops import module_forward
from ..losses import nt_xent
from .base import Method


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
    def __init__(self, encoder: str = "resnet18", stem: str = "imagenet", *,
                 proj_hidden_dim: int | None = None, proj_dim: int = 128,
                 temperature: float = 0.5, zero_init_residual: bool = True,
                 proj_output_bn: bool = True):
        super().__init__()
        self.encoder = encoders.resnet(encoder, stem, zero_init_residual)
        self.projector = ProjectionHead(self.encoder.feature_dim, proj_hidden_dim, proj_dim,
                                        proj_output_bn)
        self.temperature = temperature

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def forward(self, view1: torch.Tensor, view2: torch.Tensor):
        """Both views go through the encoder as one batch (one BN statistic, one kernel launch)."""
        z = self.projector(self.encoder(torch.cat([view1, view2], dim=0)))
        z1, z2 = z.chunk(2, dim=0)
        return nt_xent(z1, z2, self.temperature), z1, z2

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.encoder(imgs)


class SimCLRMethod(Method):
    name, title, showcase_name = "simclr", "SimCLR", "simclr_views"
    defaults = {
        "model": {"encoder": "resnet18", "stem": "imagenet"},
        "augment": {"crop_scale": [0.08, 1.0], "jitter_p": 0.8, "gray_p": 0.2},
        "train": {"optimizer": "lars", "base_lr": 0.3, "weight_decay": 1.0e-6},
    }
    own_params = ("simclr.", "model.stem", "model.zero_init_residual", "train.channels_last")

    def build(self, p: dict) -> SimCLR:
        m = p["model"]
        return SimCLR(m["encoder"], m["stem"], zero_init_residual=m["zero_init_residual"],
                      **p["simclr"])

    def check(self, p: dict, source_of: dict) -> None:
        if p["train"]["batch_size"] < 2:
            raise ParamsError(
                f"{source_of.get('train.batch_size', 'defaults')}: train.batch_size="
                f"{p['train']['batch_size']}, but SimCLR needs at least 2 images per batch: the "
                f"other images of the batch are its negatives. Use a batch of 2 or more (the "
                f"paper used 4096).")

    def prepare(self, net, p):
        return net.to(memory_format=torch.channels_last) if p["train"]["channels_last"] else net

    def views(self, augment, x, g, p):
        out = [augment(x, g[0]), augment(x, g[1])]
        if p["train"]["channels_last"]:
            out = [v.contiguous(memory_format=torch.channels_last) for v in out]
        return out

    def loss(self, forward, views, g):
        return forward(*views)[0]

    def train_flops_per_image(self, p: dict, model: SimCLR) -> float:
        """Every convolution and linear of encoder and head, both views, x3 for training."""
        s = p["data"]["image_size"]
        return 3 * module_forward(nn.Sequential(model.encoder, model.projector), (2, 3, s, s))

    def architecture(self, p: dict) -> str:
        m = p["model"]
        name = m["encoder"].replace("resnet", "ResNet-")
        return name + (", CIFAR stem" if m["stem"] == "cifar" else "")

    def describe(self, p: dict) -> dict:
        return {"stem": p["model"]["stem"]}

    def export(self, model: SimCLR, p: dict, filename: str) -> tuple[dict, str]:
        m = p["model"]
        stem = ("model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)\n"
                "model.maxpool = torch.nn.Identity()\n") if m["stem"] == "cifar" else ""
        return dict(model.encoder.state_dict()), (
            f"import torch, torchvision\nfrom safetensors.torch import load_file\n"
            f"model = torchvision.models.{m['encoder']}()\n{stem}"
            f"model.fc = torch.nn.Identity()\n"
            f"model.load_state_dict(load_file('{filename}'))\n"
            f"model.eval()\n"
            f"features = model(images)  # images normalised with the mean/std above")

    @torch.no_grad()
    def showcase(self, model, p: dict, images: torch.Tensor) -> list[tuple]:
        """Two augmented views of the same images, as the loss sees them (before normalising)."""
        from ..augment import BatchAugment
        from ..randomness import step_generator
        aug = BatchAugment(p["augment"], p["data"]["image_size"], [0, 0, 0], [1, 1, 1])
        cpu = torch.device("cpu")
        return [("original", images.float() / 255)] + [
            (f"view {v + 1}", aug(images, step_generator(p["seed"], 0, v, cpu))) for v in (0, 1)]


METHOD = SimCLRMethod()
