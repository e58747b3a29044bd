"""The self-supervised methods, one file each (mae.py, simclr.py, ...), and the few calls the
rest of sslnb makes on them. Every module of this folder that defines a `METHOD` is
registered when the package is imported, so adding a method touches no other file here;
`register` adds one defined elsewhere (a notebook, a test), `SSLNB_METHODS` one in the user's
own module."""
from __future__ import annotations

import importlib
import os
import pkgutil

import torch.nn as nn

from .. import encoders
from ..encoders import count_params
from ..errors import ParamsError
from .base import Key, Method

METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Make `method` available as the params' `method: <method.name>`."""
    METHODS[method.name] = method
    return method


for _info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
    _module = importlib.import_module(f"{__name__}.{_info.name}")
    if isinstance(getattr(_module, "METHOD", None), Method):
        register(_module.METHOD)


def load_extra(modules: str | None = None) -> None:
    """Register the methods of modules outside sslnb: SSLNB_METHODS="my_method,other" (each
    importable, defining METHOD), so that a notebook kernel, a torchrun process and the CLI all
    know a method that lives in the user's own file."""
    names = os.environ.get("SSLNB_METHODS", "") if modules is None else modules
    for name in filter(None, (n.strip() for n in names.split(","))):
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ParamsError(f"SSLNB_METHODS names '{name}', which cannot be imported ({e}). "
                              f"Name an importable module (its folder on PYTHONPATH) that "
                              f"defines METHOD, or unset SSLNB_METHODS.") from None
        if not isinstance(getattr(module, "METHOD", None), Method):
            raise ParamsError(f"SSLNB_METHODS names '{name}', which defines no METHOD (an "
                              f"instance of sslnb.methods.Method). See docs/adding-a-method.md.")
        register(module.METHOD)


def get(p: dict | str) -> Method:
    """The method of a resolved params dict (or of a method name)."""
    return METHODS[p if isinstance(p, str) else p["method"]]


def build_model(p: dict) -> nn.Module:
    """The method's training module for resolved params; an unbuildable encoder is a ParamsError."""
    try:
        return get(p).build(p)
    except (RuntimeError, ValueError) as e:
        raise ParamsError(f"key 'model.encoder' is {encoders.spec(p).name!r}, which cannot build "
                          f"a {p['method']} model ({e}); accepted: {get(p).accepts}.") from None


def train_flops_per_image(p: dict, model: nn.Module | None = None) -> float:
    """Training FLOPs per image (3x forward) of resolved params (formulas in flops.py)."""
    return get(p).train_flops_per_image(p, model if model is not None else build_model(p))


def describe(p: dict, model: nn.Module | None = None) -> dict:
    """Sizes of a configuration, as `python -m sslnb info` prints them."""
    model = model if model is not None else build_model(p)
    method = get(p)
    enc = encoders.spec(p)
    return {"method": p["method"], "encoder": enc.name,
            "architecture": method.architecture(p),
            "encoder_params": count_params(model.encoder), "total_params": count_params(model),
            "feature_dim": model.feature_dim, "image_size": enc.image_size,
            **method.describe(p)}


__all__ = ["METHODS", "Key", "Method", "register", "load_extra", "get", "build_model",
           "train_flops_per_image", "describe", "count_params"]
