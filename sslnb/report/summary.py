"""One module loads and summarises: every run of a report read once from its logs (params,
summary, model, env, data, eval, predictions) into a `Run`, its seeds gathered into a
`Configuration` with every test accuracy recomputed from the saved predictions (so a number prints
the same wherever it appears), each named once and checked once ("did it learn?"). The analyses
read these records, never the files."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import methods
from ..checkpoint import saved_params
from ..errors import RunError
from ..stats import accuracy_interval, mean_sd
from . import learning
from .records import EVALUATORS, Configuration, Point, Run, RunPoint, RunSpec, sweeps

ROOT = Path(__file__).resolve().parents[2]


def _need(path: Path) -> Path:
    if not path.is_file():
        raise RunError(f"'{path}' is missing: the run has not been pretrained and evaluated. "
                       f"Run `python -m sslnb pretrain` and `python -m sslnb evaluate` for it, or "
                       f"build the whole report with `make report`.")
    return path


def _json(path: Path) -> dict:
    return json.loads(_need(path).read_text())


def relative(path: str) -> str:
    """A path relative to the repository where it lies inside it (params files as named)."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)


def read_run(run_dir: Path | str, group: str | None = None, params_file: str = "") -> Run:
    """One run from its logs. Raises RunError naming the file a run lacks."""
    run = Path(run_dir)
    _need(run / "params.yaml")
    p = saved_params(run, fill=False)
    s, m, e = _json(run / "summary.json"), _json(run / "model.json"), _json(run / "eval.json")
    env = _json(run / "env.json")
    pre, rnd = e["pretrained"], e["random_init"]
    method = methods.get(p)
    architecture = method.architecture(p)
    curve = [RunPoint(**{k: pt.get(k) for k in
                         ("step", "kind", "epoch", "images_seen", "train_flops", "train_seconds",
                          "probe_test_top1", "knn_test_top1")}) for pt in e.get("curve", [])]
    flops = (curve[-1].train_flops / curve[-1].images_seen if curve and curve[-1].images_seen
             else methods.train_flops_per_image(p))
    isolated = s.get("isolated_epoch_time_s")  # absent in runs that predate sslnb.clock
    return Run(
        run=run.name, run_dir=str(run), group=group or run.name, params_file=params_file,
        seed=p["seed"], model=f"{method.title} {architecture.split(',')[0]}", method=p["method"],
        source=p["data"]["source"], encoder=p["model"]["encoder"], architecture=architecture,
        encoder_params_m=m["encoder_params"] / 1e6, steps=s["steps"],
        epoch_time_s=s["epoch_time_s"], pretrain_time_s=s["epoch_time_s"] * s["epochs"],
        isolated_epoch_time_s=isolated, epochs_alone=s.get("epochs_alone", 0),
        epochs_contended=s.get("epochs_contended", 0),
        isolated_images_per_s=(s["steps"] * s["images_per_step"] / s["epochs"] / isolated
                               if isolated else None),
        train_top1=pre["probe_train_top1"], val_top1=pre["probe_val_top1"],
        test_top1=pre["probe_test_top1"], test_top5=pre["probe_test_top5"],
        knn_top1=pre["knn_test_top1"], random_test_top1=rnd["probe_test_top1"],
        random_knn_top1=rnd["knn_test_top1"], random_val_top1=rnd["probe_val_top1"],
        finetune_top1=pre.get("finetune_test_top1"),
        random_finetune_top1=rnd.get("finetune_test_top1"),
        epochs=s["epochs"], images_per_s=s["images_per_s"], peak_mem_mb=s["peak_mem_mb"],
        device=s["device"], git_commit=env.get("git_commit"),
        pretrain_images=_json(run / "data.json")["images"], train_flops_per_image=flops,
        train_flops=flops * s["steps"] * s["images_per_step"],
        effective_rank=pre.get("effective_rank"), random_effective_rank=rnd.get("effective_rank"),
        finetune={k: v["test_top1"] for k, v in pre.get("finetune", {}).items()},
        random_finetune={k: v["test_top1"] for k, v in rnd.get("finetune", {}).items()},
        finetune_val={k: v["val_top1"] for k, v in pre.get("finetune", {}).items()},
        curve=curve, params=p)


def read_runs(runs: list[RunSpec | Path | str]) -> list[Run]:
    """Every run of a report spec's `runs` (RunSpec) or of a list of run directories."""
    return [read_run(r.run_dir, r.group, relative(r.params) if r.params else "")
            if isinstance(r, RunSpec) else read_run(r) for r in runs]


def predictions_of(run_dir: Path | str) -> dict:
    return _json(Path(run_dir) / "predictions.json")


def test_set_of(preds: dict, run: str) -> str:
    """The fingerprint of the test images (and labels) a run's predictions were made on."""
    if not preds.get("test_set"):
        raise RunError(f"'{run}/predictions.json' does not say which test set it was made on (no "
                       f"'test_set' fingerprint: an older sslnb wrote it). Re-evaluate the run "
                       f"(python -m sslnb evaluate --run {run} --force) before comparing it.")
    return preds["test_set"]


def configurations(runs: list[Run]) -> list[Configuration]:
    """One Configuration per group of runs (its seeds, sorted). Every test accuracy of a run is
    replaced by the one its saved predictions give."""
    by_group: dict[str, list[Run]] = {}
    for r in runs:
        by_group.setdefault(r.group, []).append(r)
    out = []
    numbers = Run.numbers()
    for name, members in by_group.items():
        members = sorted(members, key=lambda r: r.seed)
        preds = [predictions_of(r.run_dir) for r in members]
        test_sets = {test_set_of(q, r.run_dir) for q, r in zip(preds, members)}
        if len(test_sets) != 1:
            raise RunError(f"the seeds of '{name}' were tested on different test sets "
                           f"({', '.join(sorted(test_sets))}); rebuild them with the same data "
                           f"params.")
        labels = np.asarray(preds[0]["labels"])
        keys = set.intersection(*(set(q["predictions"]) for q in preds))
        correct = {k: np.stack([np.asarray(q["predictions"][k]) == labels for q in preds])
                   for k in sorted(keys)}
        for i, m in enumerate(members):  # one source for every test accuracy
            for key, ev in EVALUATORS.items():
                if ev in correct:
                    setattr(m, key, 100.0 * float(correct[ev][i].mean()))
        present = [k for k in numbers if all(getattr(m, k) is not None for m in members)]
        stats_ = {k: mean_sd([getattr(m, k) for m in members]) for k in present}
        ci = {k: accuracy_interval(correct[ev]) for k, ev in EVALUATORS.items() if ev in correct}
        first = members[0]
        out.append(Configuration(
            group=name, model=first.model, method=first.method, source=first.source,
            encoder=first.encoder, architecture=first.architecture, device=first.device,
            params_file=first.params_file, n=len(members), seeds=[m.seed for m in members],
            test_set=test_sets.pop(),
            # an accuracy's mean is its interval's centre, to the last bit
            mean={**{k: v[0] for k, v in stats_.items()}, **{k: iv.value for k, iv in ci.items()}},
            sd={k: v[1] for k, v in stats_.items()}, ci=ci, labels=labels, correct=correct,
            runs=members, params=first.params, curve=_curve(members, correct)))
    return out


def _curve(members: list[Run], correct: dict) -> list[Point]:
    """Across pretraining: each snapshot's x values (mean over seeds) and probe/kNN intervals."""
    points = []
    for i, pt in enumerate(members[0].curve):
        if f"{pt.kind}/probe" not in correct:
            continue
        xs = {k: float(np.mean([getattr(m.curve[i], k) for m in members]))
              for k in ("epoch", "images_seen", "train_flops", "train_seconds")
              if all(getattr(m.curve[i], k) is not None for m in members)}
        points.append(Point(step=pt.step, kind=pt.kind, **xs,
                            probe=accuracy_interval(correct[f"{pt.kind}/probe"]),
                            knn=accuracy_interval(correct[f"{pt.kind}/knn"])))
    return points


def _name_schedules(out: list[Configuration]) -> None:
    """A smaller set of a sweep is named by its images (and steps where two share them); one
    model trained for several schedules (one to another's FLOPs) by its steps."""
    for sweep in sweeps(out):
        for g in sweep:
            if g.pretrain_images < sweep[-1].pretrain_images:
                g.sweep_smaller = True
                twins = [h for h in sweep if h.pretrain_images == g.pretrain_images]
                g.model += f", {g.pretrain_images:,.0f} pretraining images" + (
                    f", {g.steps:,.0f} steps" if len(twins) > 1 else "")
    suffix = {}
    for g in out:
        same = [h for h in out if h.model == g.model]
        if len({h.steps for h in same}) == len(same) > 1:
            suffix[id(g)] = f", {g.steps:,.0f} steps"
    for g in out:
        g.model += suffix.get(id(g), "")


def load(runs: list[RunSpec | Path | str]) -> tuple[list[Run], list[Configuration]]:
    """A report's runs and configurations, each named and checked ("did it learn?") once."""
    rows = read_runs(runs)
    out = configurations(rows)
    _name_schedules(out)
    for g in out:
        g.learning = learning.check(g)
    return rows, out
