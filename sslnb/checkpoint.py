"""Checkpoints and atomic files: what pretraining writes and evaluation reads, in one module that
both import (evaluation never imports the training loop).

Every write goes to a temporary file in the same directory, is fsynced and renamed into place, so
a kill at any moment leaves the previous file or the new one, never a torn one. Loading uses
`torch.load(weights_only=True)`: a crafted pickle cannot run code.
"""
from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import torch
import yaml

from . import encoders
from .errors import RunError
from .methods import build_model
from .params import fill_missing


def write_json(path: Path, obj, indent: int | None = 2) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=indent, default=str) + "\n").encode())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, state: dict, keep_previous: bool = False) -> None:
    """torch.save to a temporary file in the same directory, fsync, rename: a kill at any moment
    leaves either the previous checkpoint or the new one, never a torn file. keep_previous: the
    replaced file stays as prev.pt, a second good checkpoint to fall back on."""
    buf = io.BytesIO()
    torch.save(state, buf)
    if keep_previous and path.is_file():
        os.replace(path, path.with_name("prev.pt"))  # a kill right here leaves prev.pt: resumable
    atomic_write_bytes(path, buf.getvalue())


CHECKPOINTS = ("last.pt", "prev.pt")  # newest first


def has_checkpoint(run: Path) -> bool:
    return any((run / "checkpoints" / name).is_file() for name in CHECKPOINTS)


def latest_checkpoint(run: Path, map_location="cpu") -> tuple[Path, dict]:
    """The newest checkpoint of a run that loads (last.pt, else prev.pt)."""
    errors = []
    for name in CHECKPOINTS:
        path = run / "checkpoints" / name
        if path.is_file():
            try:
                return path, load_checkpoint(path, map_location)
            except RunError as e:
                errors.append(str(e))
    raise RunError(f"no loadable checkpoint in '{run / 'checkpoints'}'"
                   + (f" ({'; '.join(errors)})" if errors else "") + ". Start the run without "
                   "--resume (or with --overwrite), or check the run name and out_dir.")


def rng_states() -> dict:
    """Python, NumPy, torch and CUDA generator states, as tensors and plain lists (loadable with
    weights_only). sslnb draws its own randomness from per-step generators; these keep any other
    code that uses the global generators on the same path after a resume."""
    import random

    import numpy as np
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_states(state: dict) -> None:
    import random

    import numpy as np
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """Tensors and plain containers only (weights_only): a crafted pickle cannot run code."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise RunError(f"checkpoint '{path}' does not exist. Pretrain the run first "
                       f"(python -m sslnb pretrain --params ...).") from None
    except Exception as e:  # unpickling refused or a torn file
        raise RunError(f"checkpoint '{path}' cannot be loaded safely ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:200]}). Re-run or resume the pretraining.") from None


def snapshot_path(run: Path | str, step: int) -> Path:
    """Where the encoder snapshot of a step is kept (train.snapshots)."""
    return Path(run) / "snapshots" / f"step_{step:07d}.pt"


def snapshots(run: Path | str) -> dict[int, Path]:
    """step -> snapshot file of a run, in step order."""
    files = sorted((Path(run) / "snapshots").glob("step_*.pt"))
    return {int(f.stem.split("_")[1]): f for f in files}


def load_pretrained(run: Path | str, device: torch.device | str = "cpu"):
    """(model in eval mode, resolved params) of a finished or stopped run."""
    return load_run(run, device)[:2]


EVAL_PARAMS = "eval_params.yaml"  # a later evaluation's settings, beside params.yaml


def saved_params(run: Path | str, fill: bool = True) -> dict:
    """A run's params as its evaluation reads them: params.yaml, written once when the run
    started, with the `eval` section of eval_params.yaml where a later report evaluated the
    finished pretraining with other settings; with `fill`, keys added to sslnb since take their
    defaults."""
    run = Path(run)
    if not (run / "params.yaml").is_file():
        raise RunError(f"'{run}' is not a run directory (no params.yaml). Pretrain it first, "
                       f"or pass the directory printed by `python -m sslnb pretrain`.")
    p = yaml.safe_load((run / "params.yaml").read_text())
    if (run / EVAL_PARAMS).is_file():
        p["eval"] = yaml.safe_load((run / EVAL_PARAMS).read_text())
    return fill_missing(p) if fill else p


def save_eval_params(run: Path | str, p: dict) -> None:
    """Store the evaluation settings a finished run is next evaluated with, beside its params
    (params.yaml itself is never rewritten)."""
    atomic_write_bytes(Path(run) / EVAL_PARAMS,
                       yaml.safe_dump(p["eval"], sort_keys=False).encode())


def load_run(run: Path | str, device: torch.device | str = "cpu"):
    """(model in eval mode, resolved params, the step its checkpoint holds): last.pt read once."""
    run = Path(run)
    p = saved_params(run)
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    check_origin(state, p, f"checkpoint in '{run}'", "The run directory is inconsistent.")
    model = build_model(p)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), p, state["step"]


def check_origin(state: dict, p: dict, what: str, fix: str) -> None:
    """A checkpoint made by another method or encoder than the params say is refused."""
    encoder = encoders.spec(p).name
    if (state.get("method"), state.get("encoder")) != (p["method"], encoder):
        raise RunError(f"{what} was made by {state.get('method')}/{state.get('encoder')}, but the "
                       f"params say {p['method']}/{encoder}. {fix}")
