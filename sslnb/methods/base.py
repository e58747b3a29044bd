"""What a self-supervised method tells the rest of sslnb. The training loop, the benchmark, the
FLOP count, the export and the report ask a `Method` and branch on nothing: adding a method is
one file in this folder (see docs/adding-a-method.md)."""
from __future__ import annotations

import torch
import torch.nn as nn

from .. import encoders
from ..errors import ParamsError
from ..schema import Key  # noqa: F401  (methods declare their keys as the shared ones are)


class Method:
    name = ""                  # the params' `method` value
    title = ""                 # how a reader names it: "MAE", "SimCLR"
    objective = ""             # what kind of objective: "masked image modelling", "contrastive"
    citation = ""              # the paper, as the report cites it: "He et al. 2021"
    description = ""           # one line for the report's Methods section
    keys: dict[str, Key] = {}  # the method's own params, under `<name>.` (see Key)
    accepts = "a timm ViT name such as vit_small_patch16_224, or a torchvision ResNet name such " \
              "as resnet50"      # the encoders it builds, as an error message lists them
    defaults: dict = {}        # what the method changes of the shared defaults (its papers' recipe)
    showcase_name = ""         # the figure of what the method sees, e.g. "mae_reconstructions"
    min_batch = 1              # the fewest images per batch its loss is defined on, and why
    min_batch_why = ""

    @property
    def own_params(self) -> tuple:
        """Key prefixes only this method reads (hidden for the others); the encoder family's
        keys are in encoders.FAMILY_PARAMS."""
        return (f"{self.name}.",)

    # Model ---------------------------------------------------------------------------------
    def build(self, p: dict) -> nn.Module:
        """The training module: `.encoder` (with `.feature_dim`), `.features(images)`, and a
        forward that `loss` calls."""
        raise NotImplementedError

    def check(self, p: dict, source_of: dict) -> None:
        """Consistency checks of resolved params beyond types and ranges; raise ParamsError.
        Subclasses that add checks call this one (it checks the encoder)."""
        encoders.check(p, source_of)
        if p["train"]["batch_size"] < self.min_batch:
            raise ParamsError(
                f"{source_of.get('train.batch_size', 'defaults')}: train.batch_size="
                f"{p['train']['batch_size']}, but {self.title} needs at least {self.min_batch} "
                f"images per batch ({self.min_batch_why}). Use a batch of {self.min_batch} or "
                f"more.")

    def prepare(self, net: nn.Module, p: dict) -> nn.Module:
        """Memory layout before training: channels_last for convolutional encoders."""
        return encoders.prepare(net, p)

    # One training step -----------------------------------------------------------------------
    def augments(self, p: dict) -> list[dict]:
        """One augmentation per kind of view, each the `augment` keys plus `size` (its output
        side in pixels): views of different sizes or recipes (BYOL's asymmetric pair, DINO's
        global and local crops) are different entries. The default: one, `augment` at
        data.image_size."""
        return [{**p["augment"], "size": encoders.spec(p).image_size}]

    def generators(self, p: dict) -> int:
        """How many random generators a step draws from (one per view, and one per other draw
        such as MAE's mask); each is a pure function of (seed, step, index)."""
        return 3

    def views(self, augments: list, x: torch.Tensor, g: list, p: dict) -> list[torch.Tensor]:
        """What the model sees of a uint8 batch: `augments` are callables built from
        `self.augments(p)` in its order, g the step's generators."""
        raise NotImplementedError

    def loss(self, forward, views: list[torch.Tensor], g: list) -> torch.Tensor:
        """The objective of one micro-batch, from the (possibly wrapped or compiled) model."""
        raise NotImplementedError

    def before_step(self, model: nn.Module, opt, step: int, total_steps: int, p: dict) -> None:
        """After the gradients of step `step` (0-based) are complete, before the optimizer uses
        them: freeze a layer for a while (set its .grad to None), schedule the weight decay
        (opt.param_groups). Runs in the loop, so it must not wait for the device (no .item())."""

    def after_step(self, model: nn.Module, opt, step: int, total_steps: int, p: dict) -> None:
        """After each optimizer step (`step` now counts the steps done): a momentum teacher's
        update, a center, a temperature schedule. Must not wait for the device either."""

    # Facts for the bench, the export and the report ----------------------------------------
    def train_flops_per_image(self, p: dict, model: nn.Module) -> float:
        raise NotImplementedError

    def lr_scales(self, p: dict) -> dict[str, float]:
        """{submodule name: multiple of the learning rate} for parts that learn at another
        rate (BYOL's predictor); empty: one rate for every parameter."""
        return {}

    def constant_loss(self, p: dict) -> float | None:
        """The loss an input-independent output scores (a collapsed model sits there), drawn on
        the loss plot and read by the report's "did it learn?" check; None when it depends on
        the data."""
        return None

    def architecture(self, p: dict) -> str:
        """The encoder as a reader names it, e.g. 'ViT-Ti/4, 6 blocks'."""
        return encoders.title(p)

    def describe(self, p: dict) -> dict:
        """Configuration facts beside the sizes that `python -m sslnb info` prints."""
        keys = encoders.FAMILY_PARAMS[encoders.spec(p).family]
        return {k.split(".")[1]: p["model"][k.split(".")[1]] for k in keys
                if k.startswith("model.") and k != "model.zero_init_residual"}

    def export(self, model: nn.Module, p: dict, filename: str) -> tuple[dict, str]:
        """(state dict that timm/torchvision load without sslnb, the Python that loads it): the
        encoder's, the same for every method (encoders.export)."""
        return encoders.export(model.encoder, p, filename)

    def showcase(self, model: nn.Module, p: dict, images: torch.Tensor) -> list[tuple]:
        """Rows of pictures (title, float images in [0, 1]) of what the method sees."""
        raise NotImplementedError
