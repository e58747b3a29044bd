"""SimCLR (Chen et al. 2020): a torchvision ResNet encoder and an MLP projection head trained with
NT-Xent so that two augmented views of an image agree. Features for probing are taken before the
head (the paper's finding: the head discards information the downstream task needs)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torchvision

from ..losses import nt_xent


def resnet_encoder(name: str, stem: str = "imagenet") -> nn.Module:
    """A torchvision ResNet without its classifier; `cifar` stem = 3x3/1 conv and no max-pool."""
    try:
        net = torchvision.models.get_model(name, weights=None)
    except ValueError:
        raise ValueError(f"unknown torchvision model '{name}'") from None
    if not isinstance(net, torchvision.models.ResNet):
        raise ValueError(f"'{name}' is not a torchvision ResNet")
    if stem == "cifar":
        net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
        net.maxpool = nn.Identity()
    net.feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return net


class ProjectionHead(nn.Sequential):
    """Linear-BN-ReLU-Linear, e.g. 2048-2048-128 for a ResNet-50."""

    def __init__(self, in_dim: int, hidden_dim: int = 2048, out_dim: int = 128):
        super().__init__(nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                         nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class SimCLR(nn.Module):
    def __init__(self, encoder: str = "resnet18", stem: str = "imagenet",
                 proj_hidden_dim: int = 2048, proj_dim: int = 128, temperature: float = 0.5):
        super().__init__()
        self.encoder = resnet_encoder(encoder, stem)
        self.projector = ProjectionHead(self.encoder.feature_dim, proj_hidden_dim, proj_dim)
        self.temperature = temperature

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def forward(self, view1: torch.Tensor, view2: torch.Tensor):
        """Both views go through the encoder as one batch (one BN statistic, one kernel launch)."""
        z = self.projector(self.encoder(torch.cat([view1, view2], dim=0)))
        z1, z2 = z.chunk(2, dim=0)
        return nt_xent(z1, z2, self.temperature), z1, z2

    def features(self, imgs: torch.Tensor, pool: str = "cls") -> torch.Tensor:
        return self.encoder(imgs)

    def encoder_state_dict(self) -> dict:
        return {k: v for k, v in self.encoder.state_dict().items()}
