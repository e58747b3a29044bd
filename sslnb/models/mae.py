"""Masked autoencoder (He et al. 2021): a timm ViT encodes the visible 25% of patches, a light
transformer decoder reconstructs the pixels of the removed ones, and the loss is the MSE on the
removed patches only.

Written from the paper and the facts in shared/reference.md; the encoder is timm's
VisionTransformer and the decoder is made of timm's `Block`, nothing re-implemented.
"""
from __future__ import annotations

from functools import partial

import timm
import torch
import torch.nn as nn
from timm.layers import build_sincos2d_pos_embed

from ..randomness import rand
from timm.models.vision_transformer import Block


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


def random_masking(x: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None):
    """Per-sample random masking by argsort of uniform noise.

    x: (N, L, D). Returns (kept tokens (N, K, D) with K = int(L * (1 - mask_ratio)),
    mask (N, L) with 1 = removed, in the original patch order, ids_restore (N, L)).
    """
    n, length, dim = x.shape
    keep = int(length * (1 - mask_ratio))
    noise = rand(n, generator, x.device, length)  # this process's rows of the global draw
    ids_shuffle = torch.argsort(noise, dim=1)  # ascending: the first `keep` are kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]
    kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, dim))
    mask = torch.ones(n, length, device=x.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return kept, mask, ids_restore


def sincos_pos_embed(grid: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sin-cos position embedding (1, 1 + grid*grid, dim), a zero row for the cls token."""
    emb = build_sincos2d_pos_embed([grid, grid], dim=dim)
    return torch.cat([torch.zeros(1, dim), emb], dim=0).unsqueeze(0)


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
                 patch_size: int = 4, depth: int | None = None, mask_ratio: float = 0.75,
                 norm_pix_loss: bool = True, decoder_dim: int = 512, decoder_depth: int = 8,
                 decoder_heads: int = 16):
        super().__init__()
        kwargs = dict(img_size=image_size, patch_size=patch_size, num_classes=0, global_pool="")
        if depth is not None:
            kwargs["depth"] = depth
        self.encoder = timm.create_model(encoder, pretrained=False, **kwargs)
        enc = self.encoder
        if enc.num_prefix_tokens != 1 or enc.cls_token is None:
            raise ValueError(f"{encoder}: MAE needs a ViT with exactly one cls token")
        self.patch_size = patch_size
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.grid = image_size // patch_size
        dim = enc.embed_dim
        # Fixed sin-cos position embeddings replace timm's learned ones, as in the paper.
        enc.pos_embed = nn.Parameter(sincos_pos_embed(self.grid, dim), requires_grad=False)

        self.decoder_embed = nn.Linear(dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.decoder_pos_embed = nn.Parameter(sincos_pos_embed(self.grid, decoder_dim),
                                              requires_grad=False)
        self.decoder_blocks = nn.Sequential(*[
            Block(decoder_dim, decoder_heads, mlp_ratio=4.0, qkv_bias=True,
                  norm_layer=partial(nn.LayerNorm, eps=1e-6))
            for _ in range(decoder_depth)])
        self.decoder_norm = nn.LayerNorm(decoder_dim, eps=1e-6)
        self.decoder_pred = nn.Linear(decoder_dim, patch_size ** 2 * 3)
        self._init_weights()

    def _init_weights(self) -> None:
        # The paper's initialisation: xavier-uniform linears (patch embedding seen as a linear),
        # N(0, 0.02) cls and mask tokens, unit LayerNorms.
        w = self.encoder.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.encoder.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def feature_dim(self) -> int:
        return self.encoder.embed_dim

    def _embed(self, imgs: torch.Tensor) -> torch.Tensor:
        return self.encoder.patch_embed(imgs) + self.encoder.pos_embed[:, 1:]

    def _with_cls(self, x: torch.Tensor) -> torch.Tensor:
        cls = self.encoder.cls_token + self.encoder.pos_embed[:, :1]
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)

    def forward_encoder(self, imgs, mask_ratio, generator=None):
        x, mask, ids_restore = random_masking(self._embed(imgs), mask_ratio, generator)
        x = self.encoder.blocks(self._with_cls(x))
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

    def forward(self, imgs: torch.Tensor, generator: torch.Generator | None = None):
        """Returns (loss, pred (N, L, p*p*3), mask (N, L))."""
        latent, mask, ids_restore = self.forward_encoder(imgs, self.mask_ratio, generator)
        pred = self.forward_decoder(latent, ids_restore)
        loss = masked_mse(pred, patchify(imgs, self.patch_size), mask, self.norm_pix_loss)
        return loss, pred, mask

    def features(self, imgs: torch.Tensor, pool: str = "cls") -> torch.Tensor:
        """Frozen-encoder features of whole (unmasked) images: the cls token or mean patch token."""
        x = self.encoder.norm(self.encoder.blocks(self._with_cls(self._embed(imgs))))
        return x[:, 0] if pool == "cls" else x[:, 1:].mean(dim=1)

    def encoder_state_dict(self) -> dict:
        return self.encoder.state_dict()
