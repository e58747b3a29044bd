"""One run, end to end: pretraining, then its evaluation (features, probes, kNN, fine-tuning).

The notebooks call its two stages as their chapters (01 `pretrain`, 03 `evaluate`), the CLI's
`run` command and the tests call `run`; each stage reuses what a finished identical stage left
(a finished pretraining of the same params and code, an evaluation of the same inputs), so a
rebuild repeats nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from . import evaluate as evaluation
from .params import resolve
from .train import pretrain_on_visible_gpus


@dataclass(frozen=True)
class RunResult:
    """A finished run: its directory, the params it ran with, and its evaluation (eval.json)."""
    run_dir: Path
    params: dict
    evaluation: dict


def pretrain(p: dict, force: bool = False) -> Path:
    """The pretraining stage: a finished run of the same params and code is reused (force
    retrains it in place); on several visible GPUs, one process per GPU."""
    return pretrain_on_visible_gpus(p, reuse=not force, overwrite=force)


def evaluate(run_dir: Path | str, force: bool = False, device: str | None = None) -> dict:
    """The evaluation stage of a pretrained run (reused while its inputs are unchanged)."""
    return evaluation.evaluate(run_dir, device, force)


def run(params: dict | str | Path, overrides: Mapping | list[str] | None = None, *,
        force: bool = False, device: str | None = None) -> RunResult:
    """Pretrain and evaluate one run: `params` resolved (a dict) or a params file with
    `overrides`."""
    p = params if isinstance(params, dict) else resolve(params, overrides)
    run_dir = pretrain(p, force)
    return RunResult(run_dir, p, evaluate(run_dir, force, device))
