"""Frozen-encoder features, computed once and cached on disk with the params that made them.

Cache: <run>/features/<kind>_<split>_<key>.pt where the key hashes everything the features depend
on (checkpoint step and size, data params, pooling), so a change makes new features instead of
reusing stale ones. `kind` is `pretrained` or `random_init` (the same architecture, untrained).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from . import runs
from .augment import Normalize
from .data import load_split
from .device import resolve_device
from .models import build_model
from .train import load_pretrained

KINDS = ("pretrained", "random_init")


def _key(p: dict, kind: str, split: str, ckpt: Path) -> str:
    stat = ckpt.stat() if kind == "pretrained" else None
    ident = {"kind": kind, "split": split, "data": p["data"], "model": p["model"],
             "method": p["method"], "seed": p["seed"],
             "ckpt": [stat.st_size, stat.st_mtime_ns] if stat else None}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


@torch.no_grad()
def extract(model: torch.nn.Module, images: torch.Tensor, normalize: Normalize, pool: str,
            batch_size: int, device: torch.device) -> torch.Tensor:
    """float32 (N, D) features of uint8 images (N, 3, S, S), in batches, in eval mode."""
    model.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = normalize(images[start:start + batch_size].to(device, non_blocking=True))
        out.append(model.features(x, pool).float().cpu())
    return torch.cat(out)


def random_init_model(p: dict) -> torch.nn.Module:
    """The baseline encoder: same architecture, same initialisation seed, never trained."""
    torch.manual_seed(p["seed"])
    return build_model(p)


def features(run: Path | str, kind: str = "pretrained", split: str = "train",
             device: str | None = None, refresh: bool = False) -> dict:
    """{'features': (N, D) float32, 'labels': (N,), 'classes': [...], 'key': str}, cached."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    run = Path(run)
    model, p = load_pretrained(run)  # validates the run even for the random-init baseline
    ckpt = run / "checkpoints" / "last.pt"
    cache = run / "features" / f"{kind}_{split}_{_key(p, kind, split, ckpt)}.pt"
    if cache.is_file() and not refresh:
        return runs.load_checkpoint(cache)
    dev = resolve_device(device or p["device"])
    if kind == "random_init":
        model = random_init_model(p)
    data = load_split(p["data"], split)
    normalize = Normalize(p["data"]["mean"], p["data"]["std"], p["data"]["image_size"])
    feats = extract(model.to(dev), data.images, normalize, p["model"]["feature_pool"],
                    p["eval"]["batch_size"], dev)
    out = {"features": feats, "labels": data.labels.clone(), "classes": list(data.classes),
           "key": cache.stem}
    runs.save_checkpoint(cache, out)
    return out
