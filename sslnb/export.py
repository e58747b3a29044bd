"""`python -m sslnb export --run DIR --out FILE.safetensors`: a trained encoder as plain tensors
that timm / torchvision load with no sslnb installed, plus FILE.json saying exactly how.

safetensors (the format timm and the Hugging Face tools load) holds tensors only, so loading it
runs no code; a FILE ending in .pt gets a `torch.save` state dict instead, for older tooling.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch
from safetensors.torch import save as safetensors_bytes

from . import encoders, methods
from .augment import normalizer
from .checkpoint import atomic_write_bytes, load_pretrained, write_json
from .errors import RunError

FORMATS = (".safetensors", ".pt")


def export(run: Path | str, out: Path | str) -> Path:
    run, out = Path(run), Path(out)
    if out.suffix not in FORMATS:
        raise RunError(f"--out '{out}': name the file with a suffix of {' or '.join(FORMATS)} "
                       f"(safetensors is the one timm and Hugging Face load without pickle).")
    model, p = load_pretrained(run)
    enc, norm = encoders.spec(p), normalizer(p)
    state, snippet = methods.get(p).export(model, p, out.name)
    state = {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}
    if out.suffix == ".pt":
        buf = io.BytesIO()
        torch.save(state, buf)
        data = buf.getvalue()
        snippet = snippet.replace("from safetensors.torch import load_file\n", "").replace(
            f"load_file('{out.name}')", f"torch.load('{out.name}', weights_only=True)")
    else:
        data = safetensors_bytes(state, metadata={"method": p["method"], "encoder": enc.name})
    atomic_write_bytes(out, data)
    info = {"method": p["method"], "encoder": enc.name, "run": str(run),
            "feature_dim": model.feature_dim, "image_size": enc.image_size,
            "normalize": {"mean": norm.mean, "std": norm.std},
            "load": snippet}
    write_json(out.with_name(out.name + ".json"), info)
    return out
