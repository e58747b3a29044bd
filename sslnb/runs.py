"""A run's directory: resolved params, environment, metrics logs and checkpoints.

logs/<name>/
  params.yaml        the resolved params (what made this run)
  env.json           python/torch/timm versions, device, git commit
  metrics/steps.jsonl, metrics/epochs.jsonl
  checkpoints/last.pt  written atomically: temporary file, fsync, rename
  summary.json       written when pretraining ends
"""
from __future__ import annotations

import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from . import params as params_mod
from .errors import RunError


def run_dir_of(p: dict) -> Path:
    return Path(p["out_dir"]) / p["name"]


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD of the repository holding sslnb, with '+dirty' when its sources have changes."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10)
        if head.returncode:
            return None
        # Dirty means the code or params differ from the commit; the study's committed outputs
        # (logs/, graphs/, report/) are rewritten by every build and do not count.
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)logs", ":(exclude)graphs", ":(exclude)report"],
                               cwd=cwd.parent if (cwd.parent / ".git").exists() else cwd,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


PRESENTATION = {"plots.py", "compare.py", "report.py", "notebook.py", "__main__.py"}


def code_version() -> str:
    """Hash of the sslnb source that makes runs: a run made by other code is not reused.
    Presentation modules (figures, tables, report assembly) are left out, so editing them
    rebuilds the report in seconds."""
    import hashlib
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    # defaults.yaml is left out: the resolved params, compared separately, already contain it.
    for f in sorted(f for f in pkg.rglob("*.py") if f.name not in PRESENTATION):
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def finished_same_run(p: dict) -> Path | None:
    """The run directory when it holds a finished pretraining of exactly these params (the `eval`
    section aside: evaluation settings never invalidate a pretraining) and this code. The run's
    params.yaml then takes the new eval section, which `evaluate` reads."""
    import yaml
    run = run_dir_of(p)
    try:
        summary = json.loads((run / "summary.json").read_text())
        saved = yaml.safe_load((run / "params.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    strip = lambda d: {k: v for k, v in d.items() if k not in ("eval", "resume")}  # noqa: E731
    ok = strip(saved) == strip(p) and summary.get("code_version") == code_version() and \
        (run / "checkpoints" / "last.pt").is_file()
    if ok and saved.get("eval") != p["eval"]:
        params_mod.save(p, run / "params.yaml")
    return run if ok else None


def environment(device: torch.device) -> dict:
    import timm
    import torchvision
    from .device import device_name
    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "timm": timm.__version__,
        "device": str(device), "device_name": device_name(device),
        "cuda": torch.version.cuda, "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(), "git_commit": git_commit(),
        "code_version": code_version(),
        "argv": sys.argv,
        "world_size": (torch.distributed.get_world_size() if torch.distributed.is_available()
                       and torch.distributed.is_initialized() else 1),
    }


def prepare(p: dict, resume: bool = False, overwrite: bool = False) -> Path:
    """Create (or reopen, with resume) the run directory; never silently reuse another run's."""
    run = run_dir_of(p)
    ckpt = run / "checkpoints" / "last.pt"
    if resume:
        if not has_checkpoint(run):
            raise RunError(f"--resume: no checkpoint at '{ckpt}'. Start the run without --resume, "
                           f"or check the run name (params key 'name') and out_dir.")
        _check_same_run(run, p)
        for stale in (run / "checkpoints").glob(".*.tmp"):  # writes cut short by a kill
            stale.unlink(missing_ok=True)
        return run
    if run.exists() and any(run.iterdir()):
        if not overwrite:
            raise RunError(
                f"run directory '{run}' already holds a run. Choose another name (--set name=...), "
                f"continue it with --resume, or replace it with --overwrite.")
        shutil.rmtree(run)
    (run / "metrics").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    params_mod.save(p, run / "params.yaml")
    return run


def auto_resume(p: dict) -> tuple[bool, bool]:
    """resume: auto -> (resume, overwrite): continue from a checkpoint when there is one; restart
    a run of the same params that was killed before its first checkpoint; else neither (and
    `prepare` refuses to touch another run's directory)."""
    run = run_dir_of(p)
    if has_checkpoint(run):
        return True, False
    try:
        _check_same_run(run, p, save=False)
    except (RunError, OSError, ValueError):
        return False, False
    return False, True


def _check_same_run(run: Path, p: dict, save: bool = True) -> None:
    """A resumed run may extend its epochs and re-split its global batch (batch_size x
    accum_steps x processes, checked against the checkpoint); other changes would mix two runs."""
    import yaml
    old = params_mod._flatten(yaml.safe_load((run / "params.yaml").read_text()))
    new = params_mod._flatten(p)
    diff = sorted(k for k in set(old) | set(new)
                  if old.get(k) != new.get(k)
                  and k not in ("train.epochs", "resume", "train.batch_size", "train.accum_steps"))
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:5])
        raise RunError(f"--resume: the params differ from those of the run in '{run}' ({shown}). "
                       f"Resume with the same params (only train.epochs may grow), or start a new "
                       f"run under another name.")
    if save:
        params_mod.save(p, run / "params.yaml")


def write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=str) + "\n").encode())


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


def check_writable(out_dir: Path) -> None:
    """Before any work: the nearest existing folder of out_dir must be a writable directory."""
    probe = Path(out_dir).resolve()
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        what = "is a file, not a directory" if not probe.is_dir() else "is not writable"
        raise RunError(f"out_dir '{out_dir}' cannot be written: '{probe}' {what}. Set out_dir "
                       f"(params key 'out_dir' or --set out_dir=...) to a writable directory; "
                       f"on Kaggle, under /kaggle/working.")


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


class JsonlLog:
    """Append-only metric lines; on resume, lines past the checkpoint's step are dropped first so
    that no step is logged twice."""

    def __init__(self, path: Path, keep_until_step: int | None = None, key: str = "step"):
        self.path = path
        if keep_until_step is not None and path.exists():
            kept = [ln for ln in path.read_text().splitlines()
                    if _parse(ln) is not None and _parse(ln)[key] <= keep_until_step]
            atomic_write_bytes(path, "".join(ln + "\n" for ln in kept).encode())

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _parse(line: str) -> dict | None:
    """A metrics line, or None for a blank or torn one (a kill in the middle of a write)."""
    try:
        return json.loads(line) if line.strip() else None
    except ValueError:
        return None


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [r for r in map(_parse, path.read_text().splitlines()) if r is not None]
