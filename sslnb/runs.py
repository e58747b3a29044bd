"""A run's directory: resolved params, environment, metrics logs and checkpoints.

logs/<name>/
  params.yaml        the resolved params (what made this run)
  env.json           python/torch/timm versions, device, git commit
  metrics/steps.jsonl, metrics/epochs.jsonl
  checkpoints/last.pt  written atomically: temporary file, fsync, rename
  summary.json       written when pretraining ends
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from . import params as params_mod
from .checkpoint import atomic_write_bytes, has_checkpoint, save_eval_params, saved_params
from .code_version import STAGES, code_version
from .device import device_name
from .errors import RunError


def run_dir_of(p: dict) -> Path:
    return Path(p["out_dir"]) / p["name"]


# The study's committed outputs (logs/, graphs/, report/) are rewritten by every build and do not
# count as changes to what a run runs.
_OUTPUTS = [":(exclude)logs", ":(exclude)graphs", ":(exclude)report"]


def _git(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)


def git_commit(cwd: Path | None = None) -> str | None:
    """HEAD of the repository holding sslnb; with uncommitted changes to its code or params,
    '+dirty.' and the first 12 hex digits of the diff's sha256 (git_diff() gives the diff), so
    two runs from different uncommitted trees never read as the same code."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        head = _git(["rev-parse", "HEAD"], cwd)
        if head.returncode:
            return None
        diff = git_diff(cwd)
        return head.stdout.strip() + (
            f"+dirty.{hashlib.sha256(diff.encode()).hexdigest()[:12]}" if diff else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def git_diff(cwd: Path | None = None) -> str:
    """The uncommitted changes to tracked code and params ('' when clean or not in git)."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        top = _git(["rev-parse", "--show-toplevel"], cwd)
        if top.returncode:
            return ""
        return _git(["diff", "HEAD", "--", ".", *_OUTPUTS], Path(top.stdout.strip())).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def finished_same_run(p: dict) -> Path | None:
    """The run directory when it holds a finished pretraining of exactly these params (the `eval`
    section aside: evaluation settings never invalidate a pretraining) and this code. The run's
    new eval section is stored beside params.yaml (checkpoint.save_eval_params), which is never
    rewritten, and `evaluate` reads it."""
    import yaml
    run = run_dir_of(p)
    try:
        summary = json.loads((run / "summary.json").read_text())
        saved = saved_params(run)
    except (OSError, ValueError, yaml.YAMLError, RunError):
        return None
    strip = lambda d: {k: v for k, v in params_mod.effective(d).items()  # noqa: E731
                       if not k.startswith("eval.")}
    ok = strip(saved) == strip(p) and \
        summary.get("code_version") == code_version("pretrain", p["method"]) and \
        (run / "checkpoints" / "last.pt").is_file()
    if ok and saved.get("eval") != p["eval"]:
        save_eval_params(run, p)
    return run if ok else None


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; else what platform says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device, method: str | None = None) -> dict:
    import timm
    import torchvision
    return {
        "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision.__version__, "timm": timm.__version__,
        "device": str(device), "device_name": device_name(device),
        "cuda": torch.version.cuda, "platform": platform.platform(),
        "cpu_threads": torch.get_num_threads(),
        # which CPU and which of torch's kernel sets ran: another CPU's kernels round floats
        # differently, so a retrain matches a committed run's losses bit for bit only on both
        "cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "git_commit": git_commit(),
        # the uncommitted changes themselves, so a '+dirty' run still names the code it ran
        **({"git_diff": diff} if (diff := git_diff()) else {}),
        "code_version": {stage: code_version(stage, method) for stage in STAGES},
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
        if not overwrite and not only_a_failed_start(run):
            raise RunError(
                f"run directory '{run}' already holds a run. Choose another name (--set name=...), "
                f"continue it with --resume, or replace it with --overwrite.")
        shutil.rmtree(run)
    (run / "metrics").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    params_mod.save(p, run / "params.yaml")
    return run


STARTED = {"params.yaml", "env.json", "model.json", "data.json", "metrics", "checkpoints"}


def only_a_failed_start(run: Path) -> bool:
    """True when `run` holds only what a pretraining writes as it starts, with no checkpoint and
    no finished summary (a start that failed before its first checkpoint): nothing to lose, so
    the next attempt may replace it. Any other file keeps the directory protected."""
    if not {f.name for f in run.iterdir()} <= STARTED:
        return False
    ckpts = run / "checkpoints"
    return not ckpts.exists() or (ckpts.is_dir() and not any(ckpts.iterdir()))


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
    old = params_mod.flatten(yaml.safe_load((run / "params.yaml").read_text()))
    new = params_mod.flatten(p)
    may_change = {k for k, key in params_mod.keys().items() if key.resumable}
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k) and k not in may_change)
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:5])
        raise RunError(f"--resume: the params differ from those of the run in '{run}' ({shown}). "
                       f"Resume with the same params (only train.epochs or train.steps may grow), or start a new "
                       f"run under another name.")
    if save:
        params_mod.save(p, run / "params.yaml")


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
