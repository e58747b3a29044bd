"""Masked autoencoder (He et al. 2021): a timm ViT encodes the visible 25% of the patches, a light
decoder of timm `Block`s reconstructs the pixels of the removed ones, and the loss is the MSE on
the removed patches only. Everything MAE-specific lives in this file: the model, its loss, the
view it trains on, its FLOPs, its export and the pictures it shows.

Written from the paper (He et al. 2021); nothing of the encoder or the blocks
is re-implemented.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn as nn
from timm.models.vision_transformer import Block

from .. import encoders
from ..augment import normalizer
from ..flops import vit_block
from ..losses import full_precision
from ..randomness import rand
from .base import Key, Method


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, 3, H, W) -> (N, L, p*p*3): patches in row-major order, pixels in (p, q, c) order."""
    n, c, h, w = imgs.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f"image size {h}x{w} is not divisible by patch size {p}")
    x = imgs.reshape(n, c, h // p, p, w // p, p)
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(x: torch.Tensor, patch_size: int, channels: int = 3) -> torch.Tensor:
    """(N, L, p*p*3) -> (N, 3, H, W), the exact inverse of `patchify` for square images."""
    n, length, _ = x.shape
    p = patch_size
    side = int(round(length ** 0.5))
    if side * side != length:
        raise ValueError(f"{length} patches do not form a square grid")
    x = x.reshape(n, side, side, p, p, channels)
    x = torch.einsum("nhwpqc->nchpwq", x)
    return x.reshape(n, channels, side * p, side * p)


def mask_noise(n: int, length: int, generator: torch.Generator | None, device) -> torch.Tensor:
    """Uniform noise (n, L) whose argsort masks each sample: this process's rows of the global
    draw. Drawn before the model is called, so no Generator enters a compiled forward (a new
    Generator each step is a graph break or a recompile there)."""
    return rand(n, generator, device, length)


def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
    """Per-sample random masking by argsort of uniform noise (N, L) (`mask_noise`; drawn from
    torch's global generator when None).

    x: (N, L, D). Returns (kept tokens (N, K, D) with K = int(L * (1 - mask_ratio)),
    mask (N, L) with 1 = removed, in the original patch order, ids_restore (N, L)).
    """
    n, length, dim = x.shape
    keep = int(length * (1 - mask_ratio))
    if noise is None:
        noise = mask_noise(n, length, None, x.device)
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: the first `keep` are kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = torch.ones(n, length, device=x.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return kept, mask, ids_restore


@full_precision
def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
               norm_pix: bool) -> torch.Tensor:
    """Mean over removed patches of the per-patch MSE; visible patches do not count."""
    if norm_pix:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        target = (target - mean) / (var + 1.0e-6) ** 0.5
    per_patch = ((pred.float() - target) ** 2).mean(dim=-1)
    return (per_patch * mask).sum() / mask.sum()


class MAE(nn.Module):
    def __init__(self, encoder: str = "vit_tiny_patch16_224", image_size: int = 32,
                 patch_size: int = 4, depth: int | None = None, *, mask_ratio: float = 0.75,
                 norm_pix_loss: bool = True, decoder_dim: int = 512, decoder_depth: int = 8,
                 decoder_heads: int = 16, feature_pool: str = "cls"):
        super().__init__()
        self.encoder = enc = encoders.vit(encoder, image_size, patch_size, depth)
        self.patch_size = patch_size
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.feature_pool = feature_pool
        self.grid = image_size // patch_size
        dim = enc.embed_dim  # fixed sin-cos position embeddings: see encoders.vit

        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(encoders.sincos_pos_embed(self.grid, decoder_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.Sequential(*[
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True,
                  norm_layer=partial(nn.LayerNorm, eps=1e-6))
            for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, patch_size ** 2 * 3)
        self._init_weights()

    def _init_weights(self) -> None:
        # The paper's initialisation of the decoder (encoders.vit initialises the encoder the same
        # way): xavier-uniform linears, N(0, 0.02) mask token, unit LayerNorms.
        nn.init.normal_(self.mask_token, std=0.02)
        for m in (self.decoder_embed, self.decoder_blocks, self.decoder_norm, self.decoder_pred):
            for sub in m.modules():
                if isinstance(sub, nn.Linear):
                    nn.init.xavier_uniform_(sub.weight)
                    if sub.bias is not None:
                        nn.init.zeros_(sub.bias)
                elif isinstance(sub, nn.LayerNorm):
                    nn.init.ones_(sub.weight)
                    nn.init.zeros_(sub.bias)

    @property
    def feature_dim(self) -> int:
        return self.encoder.embed_dim

    def forward_encoder(self, imgs, mask_ratio, noise=None):
        x, mask, ids_restore = random_masking(encoders.vit_patches(self.encoder, imgs),
                                              mask_ratio, noise)
        x = self.encoder.blocks(encoders.vit_with_cls(self.encoder, x))
        return self.encoder.norm(x), mask, ids_restore

    def forward_decoder(self, latent, ids_restore):
        x = self.decoder_embed(latent)
        n, length = ids_restore.shape
        mask_tokens = self.mask_token.expand(n, length + 1 - x.shape[1], -1)
        patches = torch.cat([x[:, 1:], mask_tokens], dim=1)
        patches = torch.gather(patches, 1, ids_restore.unsqueeze(-1).expand(-1, -1, x.shape[2]))
        x = torch.cat([x[:, :1], patches], dim=1) + self.decoder_pos_embed
        x = self.decoder_norm(self.decoder_blocks(x))
        return self.decoder_pred(x)[:, 1:]

    def forward(self, imgs: torch.Tensor, noise: torch.Tensor | None = None):
        """Returns (loss, pred (N, L, p*p*3), mask (N, L)); `noise` (N, L) decides the mask
        (see mask_noise)."""
        latent, mask, ids_restore = self.forward_encoder(imgs, self.mask_ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        loss = masked_mse(pred, patchify(imgs, self.patch_size), mask, self.norm_pix_loss)
        return loss, pred, mask

    def features(self, imgs: torch.Tensor) -> torch.Tensor:
        """Frozen-encoder features of whole (unmasked) images (see encoders.vit_feature)."""
        return encoders.image_feature(self.encoder, imgs, self.feature_pool)


class MAEMethod(Method):
    name, title, showcase_name = "mae", "MAE", "mae_reconstructions"
    objective = "masked image modelling"
    citation = "He et al. 2021"
    accepts = "a timm ViT name such as vit_small_patch16_224"
    description = ("a ViT encodes a random 25% of the patches and a light decoder reconstructs "
                   "the pixels of the others")
    keys = {
        "mask_ratio": Key(0.75, "fraction of the patches removed", range=(0.0, 1.0, False),
                          shown=True),
        "norm_pix_loss": Key(True, "per-patch normalised pixel targets (paper section 4, "
                                   "\"Reconstruction target\")", shown=True),
        "decoder_dim": Key(512, "decoder width", positive_int=True, shown=True),
        "decoder_depth": Key(8, "decoder blocks", positive_int=True, shown=True),
        "decoder_heads": Key(16, "decoder attention heads", positive_int=True),
    }
    # The paper's recipe (appendix A.1): AdamW (0.9, 0.95), base lr 1.5e-4, weight decay 0.05,
    # random resized crops of 20-100% of the image.
    defaults = {"augment": {"crop_scale": [0.2, 1.0]},
                "train": {"optimizer": "adamw", "base_lr": 1.5e-4, "weight_decay": 0.05,
                          "betas": [0.9, 0.95]}}

    def build(self, p: dict) -> MAE:
        e = encoders.spec(p)
        return MAE(encoder=e.name, image_size=e.image_size, patch_size=e.patch_size,
                   depth=e.depth, feature_pool=e.feature_pool, **p["mae"])

    def views(self, augments, x, g, p):
        """The view, and the noise of its mask drawn from the step's generator g[1]."""
        grid = encoders.spec(p).grid
        return [augments[0](x, g[0]), mask_noise(x.shape[0], grid * grid, g[1], x.device)]

    def loss(self, forward, views, g):
        return forward(views[0], views[1])[0]

    def constant_loss(self, p: dict) -> float | None:
        """With per-patch normalised targets, predicting each patch's mean (0) scores their
        mean square: 1 (just under, (D - 1) / D, for the unbiased variance of D values); raw
        pixels have no data-free level."""
        return 1.0 if p["mae"]["norm_pix_loss"] else None

    def train_flops_per_image(self, p: dict, model: MAE) -> float:
        """Patch embedding of all N patches, encoder on the kept N(1-m) + 1 tokens, decoder on
        N + 1 tokens, prediction; x3 for training (see flops.py)."""
        enc, a = model.encoder, p["mae"]
        e = encoders.spec(p)
        patch, n = e.patch_size, e.grid ** 2
        keep, pix, dim = int(n * (1 - a["mask_ratio"])), 3 * patch * patch, enc.embed_dim
        mlp = enc.blocks[0].mlp.fc1.out_features / dim
        dec_mlp = model.decoder_blocks[0].mlp.fc1.out_features / a["decoder_dim"] \
            if len(model.decoder_blocks) else 4.0
        encoder = 2 * n * pix * dim + len(enc.blocks) * vit_block(keep + 1, dim, mlp)
        decoder = (2 * (keep + 1) * dim * a["decoder_dim"]
                   + a["decoder_depth"] * vit_block(n + 1, a["decoder_dim"], dec_mlp)
                   + 2 * (n + 1) * a["decoder_dim"] * pix)
        return 3 * (encoder + decoder)

    @torch.no_grad()
    def showcase(self, model: MAE, p: dict, images: torch.Tensor) -> list[tuple]:
        """Original, masked input (removed patches grey), reconstruction (predicted patches with
        the visible ones pasted back, as in the paper's figures)."""
        normalize = normalizer(p)
        mean = torch.tensor(normalize.mean).view(1, 3, 1, 1)
        std = torch.tensor(normalize.std).view(1, 3, 1, 1)
        x = normalize(images)
        _, pred, mask = model(x, mask_noise(x.shape[0], model.grid ** 2,
                                            torch.Generator().manual_seed(0), x.device))
        patch = model.patch_size
        target = patchify(x, patch)
        if model.norm_pix_loss:  # predictions are in per-patch normalised units
            mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6).sqrt() + mu
        m = mask.unsqueeze(-1)
        to_img = lambda t: unpatchify(t, patch) * std + mean  # noqa: E731
        hidden = unpatchify(m.expand_as(target), patch)
        return [("original", to_img(target)),
                ("masked input", to_img(target * (1 - m)) * (1 - hidden) + 0.5 * hidden),
                ("reconstruction", to_img(pred * m + target * (1 - m)))]


METHOD = MAEMethod()
