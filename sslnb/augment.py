"""Batched augmentation: whole uint8 batches in, normalised float views out, on the batch's device.

Each sample draws its own parameters (crop box, flip, jitter factors, grayscale, blur sigma,
solarize) from a torch.Generator, so a step's views are a pure function of (seed, step): a resumed
run sees exactly the views an uninterrupted run would. The distributions follow torchvision's
RandomResizedCrop, ColorJitter, RandomGrayscale, GaussianBlur and RandomSolarize as used by SimCLR,
MAE and BYOL, with two documented
differences: the order of the four jitter operations is drawn once per batch (from the
generator's seed) (torchvision draws it per image; each image's marginal distribution is the
same), and on GPUs crops are resampled bilinearly with one batched grid_sample (on CPUs, where a
per-image antialiased uint8 resize is faster, crops are cut in whole pixels as torchvision does).
"""
from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from . import encoders
from .randomness import rand

_GRAY = (0.2989, 0.587, 0.114)  # torchvision's rgb_to_grayscale weights
# On CPUs the per-image uint8 crop beats one batched grid_sample from about 48px up (measured:
# 18k vs 16k img/s at 48px, 3.8k vs 1.5k at 128px); below it, the batch wins (21k vs 12k at 32px).
UINT8_PATH_FROM = 48


def _uniform(n, lo, hi, g, device, *shape):
    return lo + (hi - lo) * rand(n, g, device, *shape)


def crop_boxes(n: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), flip_p: float = 0.5,
               g: torch.Generator | None = None, device=None, tries: int = 10):
    """Per-sample RandomResizedCrop boxes (w, h, cx, cy as fractions of the image sides) and flip
    signs (-1 or 1). Like torchvision: area fraction ~ U(scale), log aspect ratio ~ U(log ratio),
    up to `tries` draws until the box fits, else the whole image."""
    area = _uniform(n, scale[0], scale[1], g, device, tries)
    logr = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, device, tries)
    w, h = (area * logr.exp()).sqrt(), (area / logr.exp()).sqrt()
    fits = (w <= 1) & (h <= 1)
    first = fits.float().argmax(dim=1, keepdim=True)
    any_fit = fits.any(dim=1)
    w = torch.where(any_fit, w.gather(1, first).squeeze(1), torch.ones_like(w[:, 0]))
    h = torch.where(any_fit, h.gather(1, first).squeeze(1), torch.ones_like(h[:, 0]))
    cx = w / 2 + rand(n, g, device) * (1 - w)
    cy = h / 2 + rand(n, g, device) * (1 - h)
    flip = torch.where(rand(n, g, device) < flip_p, -1.0, 1.0)
    return w, h, cx, cy, flip


def random_resized_crop(x: torch.Tensor, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        flip_p: float = 0.5, g: torch.Generator | None = None,
                        tries: int = 10) -> torch.Tensor:
    """Per-sample RandomResizedCrop + horizontal flip of a float batch (N, C, H, W) -> (N, C, size,
    size), resampled bilinearly with one batched grid_sample (the GPU path)."""
    n, dev = x.shape[0], x.device
    w, h, cx, cy, flip = (t.to(x.dtype) for t in crop_boxes(n, scale, ratio, flip_p, g, dev, tries))
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0] = w * flip
    theta[:, 0, 2] = 2 * cx - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * cy - 1
    grid = F.affine_grid(theta, [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def random_resized_crop_uint8(x: torch.Tensor, size: int, scale=(0.08, 1.0),
                              ratio=(3 / 4, 4 / 3), flip_p: float = 0.5,
                              g: torch.Generator | None = None, tries: int = 10) -> torch.Tensor:
    """The same crops (same draws from `g`) cut from uint8 images in whole pixels and resized
    with torch's antialiased uint8 bilinear kernel, one image at a time: the CPU path, about 6x
    faster than grid_sample there at 224px (bench/data_throughput.py), and torchvision's own
    resize semantics. Returns uint8 (N, C, size, size)."""
    n, _, hgt, wid = x.shape
    w, h, cx, cy, flip = (t.tolist() for t in crop_boxes(n, scale, ratio, flip_p, g, x.device,
                                                         tries))
    out = torch.empty(n, x.shape[1], size, size, dtype=torch.uint8)
    for i in range(n):
        cw, ch = max(1, round(w[i] * wid)), max(1, round(h[i] * hgt))
        left = min(max(0, round(cx[i] * wid - cw / 2)), wid - cw)
        top = min(max(0, round(cy[i] * hgt - ch / 2)), hgt - ch)
        crop = x[i:i + 1, :, top:top + ch, left:left + cw]
        if (ch, cw) != (size, size):
            crop = F.interpolate(crop, size=(size, size), mode="bilinear", align_corners=False,
                                 antialias=True)
        out[i] = crop[0].flip(-1) if flip[i] < 0 else crop[0]
    return out


_CONSTANTS: dict = {}


def constant(values, like: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Per-channel numbers as a (1, C, 1, 1) tensor on `like`'s device and dtype, built once per
    (values, scale, device, dtype): building it on every call copies from the host, and on a GPU
    that copy waits for the device (a host sync per call, several per step)."""
    key = (tuple(values), scale, like.device, like.dtype)
    t = _CONSTANTS.get(key)
    if t is None:
        t = _CONSTANTS[key] = (torch.tensor(values, dtype=like.dtype).view(1, -1, 1, 1)
                               * scale).to(like.device)
    return t


def _gray(x: torch.Tensor) -> torch.Tensor:
    return (x * constant(_GRAY, x)).sum(dim=1, keepdim=True)


def rgb_to_hsv(x: torch.Tensor) -> torch.Tensor:
    r, g, b = x.unbind(1)
    maxc, _ = x.max(dim=1)
    minc, _ = x.min(dim=1)
    delta = maxc - minc
    s = torch.where(maxc > 0, delta / maxc.clamp_min(1e-12), torch.zeros_like(maxc))
    d = delta.clamp_min(1e-12)
    h = torch.where(maxc == r, ((g - b) / d) % 6,
                    torch.where(maxc == g, (b - r) / d + 2, (r - g) / d + 4))
    h = torch.where(delta > 0, h / 6, torch.zeros_like(h))
    return torch.stack([h, s, maxc], dim=1)


def hsv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    h, s, v = x.unbind(1)
    out = []
    for n in (5, 3, 1):  # r, g, b
        k = (n + h * 6) % 6
        out.append(v - v * s * torch.clamp(torch.minimum(k, 4 - k), 0, 1))
    return torch.stack(out, dim=1)


def color_jitter(x: torch.Tensor, p: float = 0.8, strength: float = 1.0,
                 g: torch.Generator | None = None, bcsh=None) -> torch.Tensor:
    """ColorJitter(0.8s, 0.8s, 0.8s, 0.2s) applied with probability p, per sample, on [0, 1]
    floats; `bcsh` gives the four amplitudes (brightness, contrast, saturation, hue) instead,
    e.g. BYOL's (0.4, 0.4, 0.2, 0.1)."""
    n, dev = x.shape[0], x.device
    on = rand(n, g, dev) < p
    amp_b, amp_c, amp_s, amp_h = bcsh if bcsh is not None else (0.8 * strength,) * 3 + (
        0.2 * strength,)

    def factor(lo, hi, identity):
        f = _uniform(n, lo, hi, g, dev)
        return torch.where(on, f, torch.full_like(f, identity)).view(n, 1, 1, 1).to(x.dtype)

    b = factor(max(0.0, 1 - amp_b), 1 + amp_b, 1.0)
    c = factor(max(0.0, 1 - amp_c), 1 + amp_c, 1.0)
    s = factor(max(0.0, 1 - amp_s), 1 + amp_s, 1.0)
    hue = factor(-min(0.5, amp_h), min(0.5, amp_h), 0.0)
    ops = {
        0: lambda t: (t * b).clamp(0, 1),
        1: lambda t: (c * t + (1 - c) * _gray(t).mean(dim=(2, 3), keepdim=True)).clamp(0, 1),
        2: lambda t: (s * t + (1 - s) * _gray(t)).clamp(0, 1),
        3: lambda t: torch.where(on.view(n, 1, 1, 1), _shift_hue(t, hue), t),  # HSV is not exact
    }
    # The order is drawn on the host from the generator's seed: no device-to-host sync.
    rng = random.Random(g.initial_seed()) if g is not None else random
    for k in rng.sample(range(4), 4):
        x = ops[k](x)
    return x


def _shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    hsv = rgb_to_hsv(x)
    h = (hsv[:, :1] + shift) % 1.0
    return hsv_to_rgb(torch.cat([h, hsv[:, 1:]], dim=1))


def random_grayscale(x: torch.Tensor, p: float = 0.2, g: torch.Generator | None = None):
    on = (rand(x.shape[0], g, x.device) < p).view(-1, 1, 1, 1)
    return torch.where(on, _gray(x).expand_as(x), x)


def gaussian_blur(x: torch.Tensor, p: float = 0.5, sigma=(0.1, 2.0),
                  g: torch.Generator | None = None) -> torch.Tensor:
    """SimCLR's blur: kernel 10% of the image side (odd), sigma ~ U(sigma), with probability p."""
    n, c, hgt, wid = x.shape
    k = max(3, int(0.1 * hgt) // 2 * 2 + 1)
    on = rand(n, g, x.device) < p
    sig = _uniform(n, sigma[0], sigma[1], g, x.device)
    t = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kern = torch.exp(-(t.view(1, -1) ** 2) / (2 * sig.view(-1, 1) ** 2))
    kern = kern / kern.sum(dim=1, keepdim=True)
    delta = (t == 0).to(x.dtype).expand(n, -1)
    kern = torch.where(on.view(-1, 1), kern, delta).repeat_interleave(c, dim=0)  # (n*c, k)
    y = F.pad(x.reshape(1, n * c, hgt, wid), (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    y = F.conv2d(y, kern.view(n * c, 1, k, 1), groups=n * c)
    y = F.conv2d(y, kern.view(n * c, 1, 1, k), groups=n * c)
    return y.view(n, c, hgt, wid)


def solarize(x: torch.Tensor, p: float = 0.2, threshold: float = 0.5,
             g: torch.Generator | None = None) -> torch.Tensor:
    """BYOL's solarization with probability p, per sample, on [0, 1] floats: every value at or
    above `threshold` becomes 1 - value (torchvision's RandomSolarize)."""
    on = (rand(x.shape[0], g, x.device) < p).view(-1, 1, 1, 1)
    return torch.where(on & (x >= threshold), 1 - x, x)


class Normalize:
    """uint8 (N, 3, H, W) -> float, scaled to [0, 1] then standardised per channel; centre-cropped
    to `size` first when given and the images are larger (evaluation on a cache stored at 256px
    for 224px models: the usual resize-256, centre-crop-224 protocol)."""

    def __init__(self, mean, std, size: int | None = None):
        self.mean, self.std, self.size = mean, std, size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.size is not None and x.shape[-1] > self.size:
            top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
            x = x[..., top:top + self.size, left:left + self.size]
        scale = 255.0 if x.dtype == torch.uint8 else 1.0
        x = x.float() if x.dtype == torch.uint8 else x
        m, s = constant(self.mean, x, scale), constant(self.std, x, scale)
        return (x - m).div_(s)  # (x / scale - mean) / std in two passes


def normalizer(p: dict) -> Normalize:
    """How a run's images enter its encoder at evaluation: centre-cropped to the encoder's input
    size, standardised with data.mean and data.std."""
    return Normalize(p["data"]["mean"], p["data"]["std"], encoders.spec(p).image_size)


def batch_augment(p: dict, augment: dict, size: int) -> "BatchAugment":
    """The batched augmentation of one kind of view (augment keys at `size` pixels), normalised
    as the run's evaluation is."""
    norm = normalizer(p)
    return BatchAugment(augment, size, norm.mean, norm.std)


class BatchAugment:
    """One view per call: crop+flip, then (where enabled) jitter, grayscale, blur and solarize,
    normalised. `augment` holds the shared augment keys (sslnb/schema.py) (solarize_p may be absent)."""

    def __init__(self, augment: dict, size: int, mean, std):
        self.a = augment
        self.size = size
        self.normalize = Normalize(mean, std)

    def __call__(self, x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        a = self.a
        if x.dtype == torch.uint8 and x.device.type == "cpu" and self.size >= UINT8_PATH_FROM:
            x = random_resized_crop_uint8(x, self.size, a["crop_scale"], a["crop_ratio"],
                                          a["flip_p"], g)
            if not (a["jitter_p"] or a["gray_p"] or a["blur_p"] or a.get("solarize_p", 0)):
                return self.normalize(x)  # straight from uint8: no [0, 1] float copy
            x = x.float().div_(255)
        else:
            x = x.float() / 255 if x.dtype == torch.uint8 else x
            x = random_resized_crop(x, self.size, a["crop_scale"], a["crop_ratio"], a["flip_p"], g)
            x = x.clamp(0, 1)
        if a["jitter_p"] > 0:
            x = color_jitter(x, a["jitter_p"], a["jitter_strength"], g, a.get("jitter_bcsh"))
        if a["gray_p"] > 0:
            x = random_grayscale(x, a["gray_p"], g)
        if a["blur_p"] > 0:
            x = gaussian_blur(x, a["blur_p"], g=g)
        if a.get("solarize_p", 0) > 0:
            x = solarize(x, a["solarize_p"], g=g)
        return self.normalize(x)
