"""BYOL (Grill et al. 2020): an online network (encoder, projector, predictor) predicts the
projection that a target network, an exponential moving average of the online encoder and
projector, gives of another augmented view of the same image. No negatives: the predictor and
the slowly moving target keep it from collapsing. Everything BYOL-specific lives in this file; the
loss formula is `losses.byol_loss`.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .. import encoders
from ..augment import BatchAugment
from ..errors import ParamsError
from ..flops import module_forward
from ..losses import byol_loss
from ..randomness import step_generator
from .base import Key, Method
from .momentum import cosine_momentum, ema_update


class MLP(nn.Sequential):
    """BYOL's projector and predictor: Linear-BatchNorm-ReLU-Linear (4096 hidden, 256 out)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__(nn.Linear(in_dim, hidden_dim), nn.BatchNorm1d(hidden_dim),
                         nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))


class BYOL(nn.Module):
    def __init__(self, encoder: nn.Module, *, proj_hidden_dim: int = 4096, proj_dim: int = 256,
                 pred_hidden_dim: int = 4096, feature_pool: str = "cls"):
        super().__init__()
        self.encoder = encoder
        self.projector = MLP(encoder.feature_dim, proj_hidden_dim, proj_dim)
        self.predictor = MLP(proj_dim, pred_hidden_dim, proj_dim)
        self.feature_pool = feature_pool
        # The target: a copy of the online encoder and projector, moved only by after_step.
        self.target_encoder = copy.deepcopy(self.encoder).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    @property
    def feature_dim(self) -> int:
        return self.encoder.feature_dim

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        return encoders.image_feature(self.encoder, imgs, self.feature_pool)

    def forward(self, view1: torch.Tensor, view2: torch.Tensor) -> torch.Tensor:
        """The symmetrised loss: each view's prediction against the target's projection of the
        other (both views through each network as one batch)."""
        both = torch.cat([view1, view2], dim=0)
        p1, p2 = self.predictor(self.projector(self.features(both))).chunk(2, dim=0)
        with torch.no_grad():
            z1, z2 = self.target_projector(encoders.image_feature(
                self.target_encoder, both, self.feature_pool)).chunk(2, dim=0)
        return byol_loss(p1, z2) + byol_loss(p2, z1)

    def online_and_target(self) -> tuple[list, list]:
        """(online, target) parameters, pairwise: the encoder and the projector."""
        online = [*self.encoder.parameters(), *self.projector.parameters()]
        target = [*self.target_encoder.parameters(), *self.target_projector.parameters()]
        return online, target


class BYOLMethod(Method):
    name, title, showcase_name = "byol", "BYOL", "byol_views"
    min_batch, min_batch_why = 2, ("its projector and predictor normalise over the batch with "
                                   "BatchNorm; the paper used 4096")
    objective = "self-distillation"
    citation = "Grill et al. 2020"
    description = ("an online network predicts a momentum-averaged target network's projection "
                   "of another view of the same image, without negatives")
    accepts = ("a torchvision ResNet name such as resnet18 or resnet50, or a timm ViT name such "
               "as vit_small_patch16_224")
    keys = {
        "momentum": Key(0.996, "the target's starting decay, raised to 1 on a cosine schedule",
                        range=(0.0, 1.0, True), shown=True),
        "proj_hidden_dim": Key(4096, "projector hidden width", positive_int=True),
        "proj_dim": Key(256, "projector (and predictor) output width", positive_int=True,
                        shown=True),
        "pred_hidden_dim": Key(4096, "predictor hidden width", positive_int=True),
        "predictor_lr_scale": Key(1.0, "the predictor's learning rate as a multiple of the "
                                  "rest (SimSiam and DirectPred: a faster predictor tracks the "
                                  "target's features)", range=(0.0, None, False)),
        "blur_p": Key([1.0, 0.1], "Gaussian blur probability of the first and second view"),
        "solarize_p": Key([0.0, 0.2], "solarization probability of the first and second view"),
    }
    defaults = {
        "model": {"encoder": "resnet50", "stem": "imagenet"},
        "augment": {"crop_scale": [0.08, 1.0], "jitter_p": 0.8,
                    "jitter_bcsh": [0.4, 0.4, 0.2, 0.1], "gray_p": 0.2},
        "train": {"optimizer": "lars", "base_lr": 0.2, "weight_decay": 1.5e-6},
    }

    def build(self, p: dict) -> BYOL:
        b = p["byol"]
        return BYOL(encoders.build(p), proj_hidden_dim=b["proj_hidden_dim"],
                    proj_dim=b["proj_dim"], pred_hidden_dim=b["pred_hidden_dim"],
                    feature_pool=encoders.spec(p).feature_pool)

    def lr_scales(self, p: dict) -> dict[str, float]:
        return {"predictor": p["byol"]["predictor_lr_scale"]}

    def check(self, p: dict, source_of: dict) -> None:
        super().check(p, source_of)
        for key in ("blur_p", "solarize_p"):
            if not all(0 <= v <= 1 for v in p["byol"][key]):
                src = source_of.get(f"byol.{key}", "defaults")
                raise ParamsError(f"{src}: byol.{key}={p['byol'][key]} must be two "
                                  f"probabilities in [0, 1], one per view, e.g. [1.0, 0.1].")

    def augments(self, p: dict) -> list[dict]:
        """BYOL's asymmetric pair: blur always on the first view, rarely on the second;
        solarization only on the second."""
        b = p["byol"]
        view = super().augments(p)[0]
        return [{**view, "blur_p": b["blur_p"][v], "solarize_p": b["solarize_p"][v]}
                for v in (0, 1)]

    def generators(self, p: dict) -> int:
        return 2

    def views(self, augments, x, g, p):
        return encoders.input_layout([augments[0](x, g[0]), augments[1](x, g[1])], p)

    def loss(self, forward, views, g):
        return forward(*views)

    def after_step(self, model: BYOL, opt, step: int, total_steps: int, p: dict) -> None:
        ema_update(*model.online_and_target(),
                   cosine_momentum(step, total_steps, p["byol"]["momentum"]))

    def train_flops_per_image(self, p: dict, model: BYOL) -> float:
        """Online encoder, projector and predictor on both views x3 (forward and backward), the
        target encoder and projector on both views x1 (forward only); see flops.py."""
        enc = encoders.forward_flops(model.encoder, p)
        proj = module_forward(model.projector, (2, model.feature_dim)) / 2
        pred = module_forward(model.predictor, (2, p["byol"]["proj_dim"])) / 2
        return 3 * 2 * (enc + proj + pred) + 2 * (enc + proj)

    @torch.no_grad()
    def showcase(self, model, p: dict, images: torch.Tensor) -> list[tuple]:
        """The two views as the loss sees them (before normalising): blur on the first,
        solarization on some of the second."""
        cpu = torch.device("cpu")
        return [("original", images.float() / 255)] + [
            (f"view {v + 1}", BatchAugment(a, a["size"], [0, 0, 0], [1, 1, 1])(
                images, step_generator(p["seed"], 0, v, cpu)))
            for v, a in enumerate(self.augments(p))]


METHOD = BYOLMethod()
