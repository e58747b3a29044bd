"""Encoders from timm and torchvision: how each is built, the one feature it exports for probing,
its export, the classifier it becomes for fine-tuning, and the depth of each of its parameters.

A method trains an encoder; evaluation reads its frozen feature or fine-tunes it. All of that
lives here, by encoder family (a timm ViT or a torchvision ResNet), so that every method exports
the same feature and fine-tunes the same network for the same encoder, whatever objective
trained it: MAE and SimCLR on the same ViT differ only in their objective.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from timm.layers import build_sincos2d_pos_embed, resample_abs_pos_embed

from .errors import ParamsError
from .flops import module_forward, vit_block
from .tiny_map_conv import train_tiny_maps_as_matmul

RESNET_PREFIXES = ("resnet", "resnext", "wide_resnet")
# The params each family reads (a report hides the other family's keys).
FAMILY_PARAMS = {"vit": ("model.patch_size", "model.depth", "model.feature_pool"),
                 "resnet": ("model.stem", "model.zero_init_residual", "train.channels_last")}


def family(encoder: str) -> str:
    """'resnet' for torchvision ResNet names, else 'vit' (a timm ViT name)."""
    return "resnet" if encoder.startswith(RESNET_PREFIXES) else "vit"


@dataclass(frozen=True)
class Spec:
    """The encoder a run's params describe, read from them in one place: which network, at what
    input size, and how it is read out. Methods, evaluation and export ask this, not the params."""
    name: str                 # model.encoder: a timm ViT or torchvision ResNet name
    image_size: int           # data.image_size
    patch_size: int           # model.patch_size (ViTs)
    depth: int | None         # model.depth (ViTs; None: the timm model's)
    feature_pool: str         # model.feature_pool (ViTs): cls | mean
    stem: str                 # model.stem (ResNets): imagenet | cifar
    zero_init_residual: bool  # model.zero_init_residual (ResNets)
    channels_last: bool       # train.channels_last (ResNets)

    @property
    def family(self) -> str:
        return family(self.name)

    @property
    def grid(self) -> int:
        """Patches per side of a ViT's input."""
        return self.image_size // self.patch_size


def spec(p: dict) -> Spec:
    m = p["model"]
    return Spec(m["encoder"], p["data"]["image_size"], m["patch_size"], m["depth"],
                m["feature_pool"], m["stem"], m["zero_init_residual"], p["train"]["channels_last"])


def build(p: dict, drop_path_rate: float = 0.0) -> nn.Module:
    """The encoder that resolved params describe, freshly initialised."""
    e = spec(p)
    if e.family == "resnet":
        return resnet(e.name, e.stem, e.zero_init_residual)
    return vit(e.name, e.image_size, e.patch_size, e.depth, drop_path_rate)


def check(p: dict, source_of: dict) -> None:
    """The encoder's own consistency: a ViT cuts its input into whole patches."""
    e = spec(p)
    if e.family == "vit" and e.image_size % e.patch_size:
        src = source_of.get("model.patch_size", source_of.get("data.image_size", "defaults"))
        raise ParamsError(
            f"{src}: data.image_size={e.image_size} is not divisible by model.patch_size="
            f"{e.patch_size}; a ViT cuts the image into whole patches. Choose a patch size that "
            f"divides the image size (e.g. 4 for 32px, 16 for 224px).")


def input_layout(views: list[torch.Tensor], p: dict) -> list[torch.Tensor]:
    """Views in the memory layout the encoder was prepared in (channels_last for ResNets)."""
    e = spec(p)
    if e.family == "resnet" and e.channels_last:
        return [v.contiguous(memory_format=torch.channels_last) for v in views]
    return views


def prepare(net: nn.Module, p: dict) -> nn.Module:
    """Memory layout before training: channels_last for convolutional encoders (when set)."""
    e = spec(p)
    if e.family == "resnet" and e.channels_last:
        return net.to(memory_format=torch.channels_last)
    return net


# ViT ------------------------------------------------------------------------------------------
def sincos_pos_embed(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (1, 1 + grid*grid, dim), a zero row for the cls token."""
    emb = build_sincos2d_pos_embed([grid, grid], dim=dim)
    return torch.cat([torch.zeros(1, dim), emb], dim=0).unsqueeze(0)


def vit(name: str, image_size: int, patch_size: int, depth: int | None = None,
        drop_path_rate: float = 0.0) -> nn.Module:
    """A timm ViT returning all tokens (no pooling, no head), for any image and patch size, with
    MAE's fixed sin-cos position embeddings and initialisation (xavier-uniform linears and patch
    projection, N(0, 0.02) cls token, unit LayerNorms; MoCo v3 trains contrastive ViTs the same
    way), so that every objective starts from the same encoder."""
    kwargs = dict(img_size=image_size, patch_size=patch_size, num_classes=0, global_pool="",
                  drop_path_rate=drop_path_rate)
    if depth is not None:
        kwargs["depth"] = depth
    try:
        enc = timm.create_model(name, pretrained=False, **kwargs)
    except (RuntimeError, ValueError, TypeError) as e:
        raise ValueError(f"timm cannot build '{name}': {str(e).splitlines()[0][:160]}") from None
    if getattr(enc, "num_prefix_tokens", None) != 1 or getattr(enc, "cls_token", None) is None:
        raise ValueError(f"'{name}' is not a ViT with exactly one cls token")
    enc.feature_dim = enc.embed_dim
    enc.patch_embed.strict_img_size = False  # smaller views (multi-crop) as well: vit_patches
    grid = image_size // patch_size
    enc.pos_embed = nn.Parameter(sincos_pos_embed(grid, enc.embed_dim), requires_grad=False)
    w = enc.patch_embed.proj.weight
    nn.init.xavier_uniform_(w.view(w.shape[0], -1))
    nn.init.normal_(enc.cls_token, std=0.02)
    for m in enc.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return enc


def vit_patches(enc: nn.Module, imgs: torch.Tensor) -> torch.Tensor:
    """Patch tokens with their position embeddings (N, L, D), before any masking. An image of
    another size than the ViT was built for (DINO's local crops) gets the position grid resampled
    to its own (bicubic, as DINO's interpolate_pos_encoding and timm's resample_abs_pos_embed)."""
    x, pos = enc.patch_embed(imgs), enc.pos_embed[:, 1:]
    if x.shape[1] != pos.shape[1]:
        ph, pw = enc.patch_embed.patch_size
        old = int(round(pos.shape[1] ** 0.5))
        pos = resample_abs_pos_embed(pos, [imgs.shape[-2] // ph, imgs.shape[-1] // pw],
                                     [old, old], num_prefix_tokens=0)
    return x + pos


def vit_with_cls(enc: nn.Module, x: torch.Tensor) -> torch.Tensor:
    cls = enc.cls_token + enc.pos_embed[:, :1]
    return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)


def vit_feature(enc: nn.Module, tokens: torch.Tensor, pool: str) -> torch.Tensor:
    """The probed feature of a ViT from the output of its blocks (N, 1 + L, D), as timm and the
    official MAE read it: `cls` = the cls token after the final LayerNorm (timm global_pool
    'token'); `mean` = the mean of the patch tokens, then a fresh LayerNorm (timm global_pool 'avg'
    with its `fc_norm`, MAE's global_pool), not the pretraining norm."""
    if pool == "cls":
        return enc.norm(tokens)[:, 0]
    return F.layer_norm(tokens[:, 1:].mean(dim=1), (tokens.shape[-1],), eps=1e-6)


def image_feature(enc: nn.Module, imgs: torch.Tensor, pool: str = "cls") -> torch.Tensor:
    """The exported feature of whole images: a ViT's pooled tokens or a ResNet's pooled output."""
    if isinstance(enc, torchvision.models.ResNet):
        return enc(imgs)
    return vit_feature(enc, enc.blocks(vit_with_cls(enc, vit_patches(enc, imgs))), pool)


VIT_SIZES = {"tiny": "Ti", "small": "S", "base": "B", "large": "L", "huge": "H"}


def title(p: dict) -> str:
    """The encoder as a reader names it: 'ViT-S/16', 'ViT-Ti/4, 6 blocks', 'ResNet-50'."""
    e = spec(p)
    if e.family == "resnet":
        return e.name.replace("resnet", "ResNet-") + (", CIFAR stem" if e.stem == "cifar" else "")
    found = re.match(r"vit_([a-z]+)_patch", e.name)
    size = VIT_SIZES.get(found.group(1), found.group(1)) if found else e.name
    return f"ViT-{size}/{e.patch_size}" + (f", {e.depth} blocks" if e.depth is not None else "")


def forward_flops(enc: nn.Module, p: dict) -> float:
    """FLOPs of one forward of the encoder on one whole image (see flops.py)."""
    e = spec(p)
    s = e.image_size
    if isinstance(enc, torchvision.models.ResNet):
        return module_forward(enc, (1, 3, s, s))
    patch = e.patch_size
    n, dim = (s // patch) ** 2, enc.embed_dim
    mlp = enc.blocks[0].mlp.fc1.out_features / dim
    return 2 * n * 3 * patch * patch * dim + len(enc.blocks) * vit_block(n + 1, dim, mlp)


# ResNet ---------------------------------------------------------------------------------------
def resnet(name: str, stem: str = "imagenet", zero_init_residual: bool = True) -> nn.Module:
    """A torchvision ResNet without its classifier. `cifar` stem = 3x3/1 conv and no max-pool;
    zero_init_residual: the last BatchNorm of each residual block starts at zero, so each block
    starts as the identity (Goyal et al. 2017; the SimCLR code's ResNet does this)."""
    try:
        net = torchvision.models.get_model(name, weights=None, zero_init_residual=zero_init_residual)
    except (ValueError, TypeError):
        raise ValueError(f"unknown torchvision model '{name}'") from None
    if not isinstance(net, torchvision.models.ResNet):
        raise ValueError(f"'{name}' is not a torchvision ResNet")
    if stem == "cifar":
        _cifar_stem(net)
        nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")
    net.feature_dim = net.fc.in_features
    net.fc = nn.Identity()
    return train_tiny_maps_as_matmul(net)


def _cifar_stem(net: nn.Module) -> None:
    net.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()


# Export and fine-tuning -----------------------------------------------------------------------
def export(enc: nn.Module, p: dict, filename: str) -> tuple[dict, str]:
    """(state dict that timm / torchvision load without sslnb, the Python that loads it). For a
    ViT, timm's own pooling gives the exported feature: global_pool 'token' (cls after the norm)
    or 'avg' (patch-token mean, then `fc_norm`, which starts as the identity LayerNorm)."""
    e = spec(p)
    state = dict(enc.state_dict())
    if e.family == "resnet":
        stem = ("model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)\n"
                "model.maxpool = torch.nn.Identity()\n") if e.stem == "cifar" else ""
        return state, (
            f"import torch, torchvision\nfrom safetensors.torch import load_file\n"
            f"model = torchvision.models.{e.name}()\n{stem}"
            f"model.fc = torch.nn.Identity()\n"
            f"model.load_state_dict(load_file('{filename}'))\n"
            f"model.eval()\n"
            f"features = model(images)  # images normalised with the mean/std above")
    pool = "token" if e.feature_pool == "cls" else "avg"
    if pool == "avg":
        state.pop("norm.weight"), state.pop("norm.bias")
        state["fc_norm.weight"] = torch.ones(enc.embed_dim)
        state["fc_norm.bias"] = torch.zeros(enc.embed_dim)
    depth = f", depth={e.depth}" if e.depth is not None else ""
    return state, (
        f"import timm, torch\nfrom safetensors.torch import load_file\n"
        f"model = timm.create_model('{e.name}', pretrained=False, "
        f"img_size={e.image_size}, patch_size={e.patch_size}{depth}, "
        f"num_classes=0, global_pool='{pool}')\n"
        f"model.load_state_dict(load_file('{filename}'))\n"
        f"model.eval()\n"
        f"features = model(images)  # images normalised with the mean/std above")


def classifier(enc: nn.Module, p: dict, num_classes: int, drop_path_rate: float = 0.0) -> nn.Module:
    """The plain timm / torchvision classifier that the export of `enc` loads into, with a new
    linear head (N(0, 2e-5) weights, as MAE's fine-tuning starts it): what a user fine-tunes."""
    e = spec(p)
    state, _ = export(enc, p, "")
    if e.family == "resnet":
        net = torchvision.models.get_model(e.name, weights=None)
        if e.stem == "cifar":
            _cifar_stem(net)
        net.fc = nn.Identity()
        net.load_state_dict(state)
        net.fc = head = nn.Linear(enc.feature_dim, num_classes)
        train_tiny_maps_as_matmul(net)
    else:
        depth = {"depth": e.depth} if e.depth is not None else {}
        net = timm.create_model(e.name, pretrained=False, img_size=e.image_size,
                                patch_size=e.patch_size, num_classes=0,
                                global_pool="token" if e.feature_pool == "cls" else "avg",
                                drop_path_rate=drop_path_rate, **depth)
        net.load_state_dict(state)
        net.reset_classifier(num_classes)
        head = net.head
    nn.init.normal_(head.weight, std=2e-5)
    nn.init.zeros_(head.bias)
    return net


def num_blocks(p: dict) -> int:
    """How many blocks (ViT) or stages (ResNet) the encoder of resolved params has; the ViT is
    built on the meta device (no memory, no initialisation)."""
    e = spec(p)
    if e.family == "resnet":
        return 4
    if e.depth is not None:
        return int(e.depth)
    with torch.device("meta"):
        return len(timm.create_model(e.name, pretrained=False, num_classes=0).blocks)


def layer_depths(net: nn.Module) -> tuple[dict[str, int], int]:
    """({parameter name: layer}, number of layers L) of a `classifier`: layer 0 is the input
    (a ViT's patch embedding, cls token and position embedding; a ResNet's stem), layers 1..L-1
    the blocks (ViT) or stages (ResNet) in order, layer L the head (with a ViT's final norms).
    Layer-wise lr decay and partial fine-tuning both read this."""
    resnet_net = isinstance(net, torchvision.models.ResNet)
    n_blocks = 4 if resnet_net else len(net.blocks)
    depths = {}
    for name, _ in net.named_parameters():
        if resnet_net:
            found = re.match(r"layer(\d+)\.", name)
            depths[name] = (int(found.group(1)) if found
                            else 0 if name.startswith(("conv1.", "bn1.")) else n_blocks + 1)
        else:
            found = re.match(r"blocks\.(\d+)\.", name)
            depths[name] = (int(found.group(1)) + 1 if found
                            else 0 if name.split(".")[0] in ("cls_token", "pos_embed", "patch_embed",
                                                             "reg_token")
                            else n_blocks + 1)
    return depths, n_blocks + 1


def count_params(module: nn.Module) -> int:
    return sum(t.numel() for t in module.parameters())
