"""`shapes`: a procedurally generated, labelled image dataset that needs no download.

The label is the object's shape (10 classes). Everything else is a nuisance drawn per image: the
object's colour, position, size and rotation, the background colour, a low-frequency background
texture and pixel noise. A representation is good here when it keeps shape and drops the rest,
which is what both colour-jitter/crop invariance (SimCLR) and reconstruction (MAE) must learn.
Same seed, same images, on any machine (generated on the CPU with a seeded torch.Generator).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CLASSES = ("disk", "ring", "square", "square_frame", "triangle", "plus", "flower", "crescent",
           "L", "T")
SUPERSAMPLE = 2  # render at 2x and average down: anti-aliased edges


def _triangle(u, v):
    """Equilateral triangle (inradius 0.5) as three half-planes, centroid lowered a little."""
    out = torch.ones_like(u, dtype=torch.bool)
    for k in range(3):
        a = math.pi / 2 + k * 2 * math.pi / 3
        out &= (u * math.cos(a) + (v + 0.1) * math.sin(a)) < 0.5
    return out


def _bars(u, v, *boxes):
    out = torch.zeros_like(u, dtype=torch.bool)
    for u0, u1, v0, v1 in boxes:
        out |= (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
    return out


def _r(u, v):
    return torch.sqrt(u * u + v * v)


def _box(u, v):
    return torch.maximum(u.abs(), v.abs())


# Each shape: (u, v) in the object's own frame (unit half-size) -> inside?
SHAPES = {
    "disk": lambda u, v: _r(u, v) < 0.9,
    "ring": lambda u, v: (_r(u, v) < 0.95) & (_r(u, v) > 0.55),
    "square": lambda u, v: _box(u, v) < 0.75,
    "square_frame": lambda u, v: (_box(u, v) < 0.85) & (_box(u, v) > 0.45),
    "triangle": _triangle,
    "plus": lambda u, v: _bars(u, v, (-0.3, 0.3, -0.95, 0.95), (-0.95, 0.95, -0.3, 0.3)),
    "flower": lambda u, v: _r(u, v) < 0.6 + 0.35 * torch.cos(5 * torch.atan2(v, u)),
    "crescent": lambda u, v: (_r(u, v) < 0.95) & (_r(u - 0.45, v) > 0.75),
    "L": lambda u, v: _bars(u, v, (-0.9, -0.3, -0.9, 0.9), (-0.9, 0.9, -0.9, -0.3)),
    "T": lambda u, v: _bars(u, v, (-0.9, 0.9, 0.35, 0.9), (-0.3, 0.3, -0.9, 0.35)),
}
assert tuple(SHAPES) == CLASSES


def _inside(cls: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """(N, S, S) bool: is each pixel inside its image's shape? Each class drawn only where used."""
    out = torch.empty_like(u, dtype=torch.bool)
    for k, name in enumerate(CLASSES):
        sel = cls == k
        if sel.any():
            out[sel] = SHAPES[name](u[sel], v[sel])
    return out


def _texture(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    """Low-frequency background texture in [-1, 1]: bicubic upsampled 4x4 noise. (N, 1, S, S)."""
    coarse = torch.rand(n, 1, 4, 4, generator=g) * 2 - 1
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False).clamp(-1, 1)


def generate(num: int, image_size: int = 32, num_classes: int = 10, seed: int = 0,
             scale: tuple[float, float] = (0.5, 0.8), max_shift: float = 0.25,
             noise: float = 0.04, texture: float = 0.25, chunk: int = 2048):
    """Return (images uint8 (num, 3, S, S), labels int64 (num,)), balanced over classes."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(num) % num_classes
    labels = labels[torch.randperm(num, generator=g)]
    images = torch.empty(num, 3, image_size, image_size, dtype=torch.uint8)
    hi = image_size * SUPERSAMPLE
    axis = (torch.arange(hi) + 0.5) / hi * 2 - 1  # pixel centres in [-1, 1]
    yy, xx = torch.meshgrid(-axis, axis, indexing="ij")  # y up
    for start in range(0, num, chunk):
        cls = labels[start:start + chunk]
        n = cls.numel()
        rot = torch.rand(n, generator=g) * 2 * math.pi
        size = scale[0] + torch.rand(n, generator=g) * (scale[1] - scale[0])
        shift = (torch.rand(n, 2, generator=g) * 2 - 1) * max_shift
        fg = torch.rand(n, 3, generator=g)
        bg = torch.rand(n, 3, generator=g)
        too_close = (fg - bg).norm(dim=1) < 0.45  # keep the object visible
        bg[too_close] = 1 - fg[too_close]
        tex = _texture(n, hi, g)
        # Object frame: translate, rotate, scale.
        x = xx - shift[:, 0].view(-1, 1, 1)
        y = yy - shift[:, 1].view(-1, 1, 1)
        cos, sin = rot.cos().view(-1, 1, 1), rot.sin().view(-1, 1, 1)
        s = size.view(-1, 1, 1)
        u, v = (cos * x + sin * y) / s, (-sin * x + cos * y) / s
        alpha = _inside(cls, u, v).float().unsqueeze(1)
        back = (bg.view(-1, 3, 1, 1) + texture * tex * 0.5).clamp(0, 1)
        img = alpha * fg.view(-1, 3, 1, 1) + (1 - alpha) * back
        img = F.avg_pool2d(img, SUPERSAMPLE)
        img = img + noise * torch.randn(img.shape, generator=g)
        images[start:start + n] = (img.clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels
