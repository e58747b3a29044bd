"""`python -m sslnb export --run DIR --out FILE`: a trained encoder as a plain state dict that
loads into timm / torchvision with no sslnb installed, plus FILE.json saying exactly how."""
from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from . import runs
from .train import load_pretrained


def load_snippet(p: dict, out: Path) -> str:
    """The Python that rebuilds the encoder and loads the exported weights."""
    m = p["model"]
    if p["method"] == "mae":
        depth = f", depth={m['depth']}" if m["depth"] is not None else ""
        pool = "[:, 0]  # the cls token" if m["feature_pool"] == "cls" else \
            "[:, 1:].mean(dim=1)  # mean of the patch tokens"
        return (f"import timm, torch\n"
                f"model = timm.create_model('{m['encoder']}', pretrained=False, "
                f"img_size={p['data']['image_size']}, patch_size={m['patch_size']}{depth}, "
                f"num_classes=0, global_pool='')\n"
                f"model.load_state_dict(torch.load('{out.name}', weights_only=True))\n"
                f"model.eval()\n"
                f"features = model.forward_features(images){pool}")
    stem = ("model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)\n"
            "model.maxpool = torch.nn.Identity()\n") if m["stem"] == "cifar" else ""
    return (f"import torch, torchvision\n"
            f"model = torchvision.models.{m['encoder']}()\n{stem}"
            f"model.fc = torch.nn.Identity()\n"
            f"model.load_state_dict(torch.load('{out.name}', weights_only=True))\n"
            f"model.eval()\n"
            f"features = model(images)")


def export(run: Path | str, out: Path | str) -> Path:
    run, out = Path(run), Path(out)
    model, p = load_pretrained(run)
    state = {k: v.detach().cpu().clone().contiguous() for k, v in model.encoder.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    runs.atomic_write_bytes(out, buf.getvalue())
    info = {"method": p["method"], "encoder": p["model"]["encoder"], "run": str(run),
            "feature_dim": model.feature_dim, "image_size": p["data"]["image_size"],
            "normalize": {"mean": p["data"]["mean"], "std": p["data"]["std"]},
            "load": load_snippet(p, out)}
    runs.write_json(out.with_name(out.name + ".json"), info)
    return out
