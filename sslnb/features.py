"""Frozen-encoder features, computed once and cached on disk with the params that made them.

Cache: <run>/features/<kind>_<split>_<key>.pt where the key hashes everything the features depend
on: the encoder's weights (the checkpoint or snapshot file for a trained one; for the random-init
one the weights themselves, so any setting that changes the random encoder changes the key), the
data params, the pooling and the engine code. `kind` is `pretrained` (the end of pretraining),
`random_init` (the same architecture, untrained) or `step_N` (the snapshot kept at step N).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from .code_version import code_version
from .augment import Normalize, normalizer
from .checkpoint import load_checkpoint, load_pretrained, save_checkpoint, snapshots
from .data import guard, load_split
from .device import matmul_precision, resolve_device
from .methods import build_model

KINDS = ("pretrained", "random_init")


def weights_digest(module: torch.nn.Module) -> str:
    """A hash of a module's parameters and buffers (names, shapes and values)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode() + str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def _key(p: dict, kind: str, split: str, ckpt: Path | None, device: torch.device,
         random_encoder=None) -> str:
    stat = ckpt.stat() if ckpt is not None else None
    ident = {"kind": kind, "split": split, "data": p["data"], "model": p["model"],
             "method": p["method"], "code": code_version("features", p["method"]),
             "matmul": matmul_precision(device),  # TF32 features on a GPU are not fp32 ones
             "ckpt": [stat.st_size, stat.st_mtime_ns] if stat else None,
             "weights": weights_digest(random_encoder) if random_encoder is not None else None}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


@torch.no_grad()
def extract(model: torch.nn.Module, images: torch.Tensor, normalize: Normalize,
            batch_size: int, device: torch.device) -> torch.Tensor:
    """float32 (N, D) features of uint8 images (N, 3, S, S), in batches, in eval mode."""
    model.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = normalize(images[start:start + batch_size].to(device, non_blocking=True))
        out.append(model.features(x).float().cpu())
    return torch.cat(out)


def extraction_batch(p: dict, device: torch.device) -> int:
    """eval.batch_size, or when null 512 on a GPU and 128 on a CPU (cache-sized: a ViT-Ti/4
    extracts 1.4x faster at 128 than at 512 on a 2-core CPU; a ResNet-18 the same)."""
    return p["eval"]["batch_size"] or (128 if device.type == "cpu" else 512)


def random_init_model(p: dict) -> torch.nn.Module:
    """The baseline encoder: same architecture, same initialisation seed, never trained. Its
    BatchNorm layers (ResNets) keep their initial running statistics (mean 0, variance 1): the
    network exactly as pretraining starts it, read in eval mode."""
    torch.manual_seed(p["seed"])
    return build_model(p)


def encoder_of(run: Path, kind: str, loaded: tuple | None = None,
               snapshot_states: dict[int, dict] | None = None
               ) -> tuple[torch.nn.Module, dict, Path | None]:
    """(model, params, weights file) of `pretrained`, `random_init` or a snapshot `step_N`.
    `loaded`: the run's (model, params) when the caller opened it already (an evaluation opens
    last.pt, optimiser and target networks included, once rather than once per kind and split);
    `snapshot_states`: the snapshots' contents by step, when the caller read them already."""
    # the run is validated (its checkpoint loaded) even for the random-init baseline
    model, p = loaded if loaded is not None else load_pretrained(run)
    if kind == "pretrained":
        return model, p, run / "checkpoints" / "last.pt"
    if kind == "random_init":
        return random_init_model(p), p, None
    step = int(kind.split("_")[1]) if kind.startswith("step_") and kind[5:].isdigit() else None
    path = snapshots(run).get(step)
    if path is None:
        raise ValueError(f"kind must be one of {KINDS} or step_N of a kept snapshot "
                         f"({', '.join(f'step_{s}' for s in snapshots(run)) or 'none kept'}), "
                         f"not {kind!r}")
    model = random_init_model(p)
    state = snapshot_states[step] if snapshot_states else load_checkpoint(path)
    model.encoder.load_state_dict(state["encoder"])
    return model.eval(), p, path


def features(run: Path | str, kind: str = "pretrained", split: str = "train",
             device: str | None = None, refresh: bool = False,
             loaded: tuple | None = None, built: tuple | None = None) -> dict:
    """{'features': (N, D) float32, 'labels': (N,), 'classes': [...], 'key': str}, cached.
    `loaded`: the run's (model, params) from load_pretrained, when the caller has them; `built`:
    this kind's (model, params, weights file) from encoder_of, so that an evaluation reads each
    weights file once for all three splits."""
    guard(split)
    run = Path(run)
    model, p, weights_file = built if built is not None else encoder_of(run, kind, loaded)
    dev = resolve_device(device or p["device"])
    key = _key(p, kind, split, weights_file, dev,
               model.encoder if kind == "random_init" else None)
    cache = run / "features" / f"{kind}_{split}_{key}.pt"
    if cache.is_file() and not refresh:
        return load_checkpoint(cache)
    data = load_split(p["data"], split)
    normalize = normalizer(p)
    feats = extract(model.to(dev), data.images, normalize, extraction_batch(p, dev), dev)
    out = {"features": feats, "labels": data.labels.clone(), "classes": list(data.classes),
           "key": cache.stem}
    save_checkpoint(cache, out)
    return out
