"""What a self-supervised method tells the rest of sslnb. The training loop, the benchmark, the
FLOP count, the export and the report ask a `Method` and branch on nothing: adding a method is
one file in this folder (see docs/adding-a-method.md)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import encoders
from ..errors import ParamsError


class Method:
    name = ""                  # the params' `method` value
    title = ""                 # how a reader names it: "MAE", "SimCLR"
    objective = ""             # what kind of objective: "masked image modelling", "contrastive"
    defaults: dict = {}        # what the method changes in defaults.yaml (its papers' recipe)
    own_params: tuple = ()     # keys that only this method reads (hidden for the others);
                               # the encoder family's keys are in encoders.FAMILY_PARAMS
    showcase_name = ""         # the figure of what the method sees, e.g. "mae_reconstructions"

    # Model ---------------------------------------------------------------------------------
    def build(self, p: dict) -> nn.Module:
        """The training module: `.encoder` (with `.feature_dim`), `.features(images)`, and a
        forward that `loss` calls."""
        raise NotImplementedError

    def check(self, p: dict, source_of: dict) -> None:
        """Consistency checks of resolved params beyond types and ranges; raise ParamsError.
        Subclasses that add checks call this one (it checks the encoder)."""
        size, patch = p["data"]["image_size"], p["model"]["patch_size"]
        if encoders.family(p["model"]["encoder"]) == "vit" and size % patch:
            src = source_of.get("model.patch_size", source_of.get("data.image_size", "defaults"))
            raise ParamsError(
                f"{src}: data.image_size={size} is not divisible by model.patch_size={patch}; a "
                f"ViT cuts the image into whole patches. Choose a patch size that divides the "
                f"image size (e.g. 4 for 32px, 16 for 224px).")

    def prepare(self, net: nn.Module, p: dict) -> nn.Module:
        """Memory layout before training: channels_last for convolutional encoders."""
        if encoders.family(p["model"]["encoder"]) == "resnet" and p["train"]["channels_last"]:
            return net.to(memory_format=torch.channels_last)
        return net

    # One training step -----------------------------------------------------------------------
    def views(self, augment, x: torch.Tensor, g: list, p: dict) -> list[torch.Tensor]:
        """What the model sees of a uint8 batch; g holds the step's generators, one per view."""
        raise NotImplementedError

    def loss(self, forward, views: list[torch.Tensor], g: list) -> torch.Tensor:
        """The objective of one micro-batch, from the (possibly wrapped or compiled) model."""
        raise NotImplementedError

    # Facts for the bench, the export and the report ----------------------------------------
    def train_flops_per_image(self, p: dict, model: nn.Module) -> float:
        raise NotImplementedError

    def architecture(self, p: dict) -> str:
        """The encoder as a reader names it, e.g. 'ViT-Ti/4, 6 blocks'."""
        return encoders.title(p)

    def describe(self, p: dict) -> dict:
        """Configuration facts beside the sizes that `python -m sslnb info` prints."""
        keys = encoders.FAMILY_PARAMS[encoders.family(p["model"]["encoder"])]
        return {k.split(".")[1]: p["model"][k.split(".")[1]] for k in keys
                if k.startswith("model.") and k != "model.zero_init_residual"}

    def export(self, model: nn.Module, p: dict, filename: str) -> tuple[dict, str]:
        """(state dict that timm/torchvision load without sslnb, the Python that loads it): the
        encoder's, the same for every method (encoders.export)."""
        return encoders.export(model.encoder, p, filename)

    def showcase(self, model: nn.Module, p: dict, images: torch.Tensor) -> list[tuple]:
        """Rows of pictures (title, float images in [0, 1]) of what the method sees."""
        raise NotImplementedError
