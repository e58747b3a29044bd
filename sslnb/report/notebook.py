"""Small display helpers for the notebooks, so that they hold narrative and a few calls only."""
from __future__ import annotations

import html
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt

from ..bench_results import results_table as bench_table
from .. import encoders, methods
from ..checkpoint import saved_params
from ..data import SOURCE_PARAMS
from ..params import flatten, resolve
from ..runs import run_dir_of
from . import plots, tables
from .differences import Difference, other_differences
from .records import Configuration, Run
from .results_file import Results
from .wording import class_label

DEFAULT_RUN_PARAMS = "params/demo/mae_vit_tiny.yaml"


def default_run_dir(run_dir: str | None) -> Path:
    """`run_dir`, or the run that 01_pretrain makes with its own defaults."""
    if run_dir:
        return Path(run_dir)
    return run_dir_of(resolve(DEFAULT_RUN_PARAMS))


def graphs_for(graphs_dir: str | None, run_dir: Path | str) -> Path:
    """Where a notebook saves its figures: `graphs_dir` (the report passes the repository's
    graphs/), else a graphs/ folder beside the run's own files."""
    return Path(graphs_dir) if graphs_dir else Path(run_dir) / "graphs"


def _table(rows: list[tuple], header: tuple | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header) if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table>{'<thead><tr>' + head + '</tr></thead>' if head else ''}<tbody>{body}</tbody></table>"


def scale_box(results: Results, report_params: str | Path, rows: list[Run]) -> str:
    """What this report is, at a glance, before any number: data, image size, pretraining
    images, the pretraining minutes its runs logged, hardware, seeds and the command."""
    name = Path(report_params).stem
    seeds = sorted({c.n_seeds for c in results.configurations})
    fewer = [c.model for c in results.configurations if c.n_seeds != seeds[-1]]
    minutes = sum(r.pretrain_time_s or 0 for r in rows) / 60
    sizes = sorted({r.params["data"]["image_size"] for r in rows})
    images = sorted({r.pretrain_images for r in rows})
    cells = [
        ("Data", results.data.description.replace("`", "")),
        ("Image size", " and ".join(f"{s}px" for s in sizes)),
        ("Pretraining images", f"{images[0]:,}" + (f" to {images[-1]:,}" if len(images) > 1
                                                     else "")),
        ("Pretraining", f"{minutes:.0f} min over {len(rows)} runs (their logged epochs)"),
        ("Hardware", results.data.device),
        ("Seeds", f"{seeds[-1]} per configuration" + (
            f" ({', '.join(fewer)}: {seeds[0]})" if fewer else "")),
        ("Build", f"make report{'' if name == 'demo' else ' REPORT=' + name} "
                  f"(make render: from the logs, no training)"),
    ]
    return '<div class="scale-box">' + _table(cells) + "</div>"


def show_scale(results: Results, report_params: str | Path, rows: list[Run]) -> None:
    _show(scale_box(results, report_params, rows))


def _show(html_text: str) -> None:
    from IPython.display import HTML, display
    display(HTML(html_text))


# The shared keys a run's table shows; each method's own shown keys (methods.Key.shown) go where
# METHOD_KEYS stands.
METHOD_KEYS = "<the method's own keys>"
KEY_PARAMS = ["method", "name", "model.encoder", "model.patch_size", "model.depth", "model.stem",
              "model.feature_pool", "data.source", "data.pretrain_classes",
              "data.image_size", "data.num_train",
              "data.num_val", "data.num_test", "data.val_per_class", METHOD_KEYS,
              "augment.crop_scale", "augment.jitter_p", "augment.gray_p", "train.epochs",
              "train.steps", "train.batch_size", "train.optimizer", "train.base_lr",
              "train.weight_decay", "train.snapshots", "eval.probe_epochs",
              "eval.probe_optimizer", "eval.finetune_epochs", "device", "seed"]


def key_params() -> list[str]:
    """KEY_PARAMS with every registered method's shown keys in place."""
    mine = [f"{name}.{k}" for name, m in methods.METHODS.items()
            for k, key in m.keys.items() if key.shown]
    return [k for item in KEY_PARAMS for k in (mine if item == METHOD_KEYS else [item])]


def params_rows(p: dict) -> list[tuple]:
    """KEY_PARAMS of this run, without the keys that only other methods, the other encoder family
    or other data sources read, and without unset (null) ones."""
    flat = flatten(p)
    fam = encoders.spec(p).family
    others = [k for name, m in methods.METHODS.items() if name != p["method"] for k in m.own_params]
    others += [k for f, keys in encoders.FAMILY_PARAMS.items() if f != fam for k in keys]
    mine = methods.get(p).own_params + encoders.FAMILY_PARAMS[fam]
    hidden = lambda k: any(k.startswith(o) for o in others) and not any(  # noqa: E731
        k.startswith(o) for o in mine)
    source = p["data"]["source"]
    elsewhere = lambda k: source not in SOURCE_PARAMS.get(k, (source,))  # noqa: E731
    return [(k, flat[k]) for k in key_params()
            if k in flat and flat[k] is not None and not hidden(k) and not elsewhere(k)]


def show_params(p: dict) -> None:
    """What the run's method does (from its file), then the run's main parameters as a small
    table (all of them are in the run's params.yaml)."""
    from IPython.display import Markdown, display
    m = methods.get(p)
    display(Markdown(f"**{m.title}** ({m.citation}): {m.description}."))
    _show(_table(params_rows(p), ("parameter", "value")))


def show_json(path: Path | str, keys: list[str] | None = None) -> None:
    d = json.loads(Path(path).read_text())
    _show(_table([(k, _fmt(d[k])) for k in (keys or d) if k in d], ("", "")))


def _fmt(v):
    if isinstance(v, dict):
        return ", ".join(f"{k} {x}" for k, x in v.items())
    return f"{v:.4g}" if isinstance(v, float) else v


def show_features(feats: dict) -> None:
    rows = [(kind, split, tuple(f["features"].shape), f["key"]) for (kind, split), f in feats.items()]
    _show(_table(rows, ("encoder", "split", "features", "cache file")))


def show_eval(result: dict) -> None:
    keys = [k for k in result["pretrained"]]
    rows = [(k, _fmt(result["pretrained"][k]), _fmt(result["random_init"].get(k))) for k in keys]
    _show(_table(rows, ("metric", "pretrained", "random init")))


def show_data(run_dir: Path | str) -> None:
    """Which data pretraining saw: source, counts, skipped files, class list (with names)."""
    path = Path(run_dir) / "data.json"
    if not path.is_file():
        _show("<p>(no data.json: this run predates it)</p>")
        return
    d = json.loads(path.read_text())
    rows = [("source", d.get("source")), ("root", d.get("root", "(generated)")),
            ("pretraining images", d["images"]), ("pretraining classes", len(d["classes"])),
            ("unreadable files skipped", d.get("skipped_count", 0))]
    rows += [("note", n) for n in d.get("notes", [])]
    _show(_table(rows, ("", "")))
    if d.get("skipped"):
        _show(_table([(s["file"], s["reason"]) for s in d["skipped"]], ("skipped file", "reason")))
    names = ", ".join(class_label(c) for c in d["classes"])
    _show(f"<p><b>Classes seen in pretraining:</b> {html.escape(names)}</p>")


def candidate_scores(c: dict) -> dict:
    """One candidate's val numbers as table cells: a probe choice logs its probe and kNN top-1,
    a fine-tuning choice the probe it starts from, the fine-tuned top-1 and their gain."""
    cells = {"Probe val top-1 (%)": c.get("probe_val_top1", c.get("start_val_top1")),
             "kNN val top-1 (%)": c.get("knn_val_top1"),
             "Fine-tuned val top-1 (%)": c.get("finetune_val_top1"),
             "Gain (points)": c.get("gain")}
    return {k: "" if v is None else f"{v:+.1f}" if k.startswith("Gain") else f"{v:.1f}"
            for k, v in cells.items()}


def _same(candidate, ran) -> bool:
    """A candidate's value against what a run used: 1 matches eval.finetune_blocks [1], a list
    matches a tuple, 1e-3 matches 0.001."""
    if isinstance(ran, (list, tuple)) and not isinstance(candidate, (list, tuple)):
        return len(ran) == 1 and _same(candidate, ran[0])
    if isinstance(candidate, (list, tuple)) and isinstance(ran, (list, tuple)):
        return len(candidate) == len(ran) and all(map(_same, candidate, ran))
    if isinstance(candidate, (int, float)) and isinstance(ran, (int, float)) \
            and not isinstance(candidate, bool):
        return math.isclose(candidate, ran, rel_tol=1e-9)
    return candidate == ran


def ran_with(doc: dict, c: dict, params: dict) -> bool:
    """Whether the report's run of this choice used the candidate (its value and the choice's
    fixed overrides): the val-best candidate of a superseded choice did not run."""
    keys = doc["key"].split(" x ")
    value = c["value"] if len(keys) > 1 else {keys[0]: c["value"]}
    flat = flatten(params)
    wanted = {**doc.get("overrides", {}), **value}
    return all(k in flat and _same(v, flat[k]) for k, v in wanted.items()
               if k not in ("name", "out_dir"))


def choices_html(groups: list[Configuration], paper) -> str:
    """Every logged choice (logs/choices/) of this report's configurations: the candidates, their
    val numbers, the best on val and the one its runs used."""
    import pandas as pd
    from ..choose import choices_for  # deferred: choose reaches the training loop (pretrain_setting)
    rows = []
    folder = Path(groups[0].runs[0].run_dir).parent / "choices"
    # A run named in a report (families_byol_resnet18) keeps the recipe chosen for its params
    # file (byol_resnet18, logged under the file's name).
    params, model = {}, {}
    for g in groups:
        for r in g.runs:
            for name in (g.group, Path(r.params_file).stem):
                params.setdefault(name, r.params)
                model.setdefault(name, g.model)
    # In print the table must fit a page without breaking words: a run is named by its model,
    # a candidate by its values alone (the Key column names them), a criterion by a short label
    # the caption spells out.
    criteria: dict[str, str] = {}
    for doc in choices_for(sorted(params), folder):
        fixed = ", ".join(f"{k}={v}" for k, v in doc.get("overrides", {}).items()
                          if k not in ("name", "out_dir"))  # where it ran, not what
        criterion = doc.get("criterion", "linear-probe val top-1")
        short = criteria.setdefault(criterion, f"({len(criteria) + 1})")
        for c in doc["candidates"]:
            rows.append({"Model": model.get(doc["name"], doc["name"]),
                         "Key": doc["key"] + (f" (with {fixed})" if fixed else ""),
                         "Value": (", ".join(str(v) for v in c["value"].values())
                                   if isinstance(c["value"], dict) else str(c["value"])),
                         "Criterion": short,
                         **candidate_scores(c),
                         "Best on val": "yes" if c["value"] == doc["chosen"] else "",
                         "Ran": "yes" if ran_with(doc, c, params[doc["name"]]) else ""})
    text = ("<p>Every choice below was made with `python -m sslnb choose`, which pretrains (or "
            "fine-tunes) one candidate per value and reads it out on <code>val</code> inside "
            "<code>sslnb.data.choosing()</code>: nothing of <code>test</code> is read or "
            "computed. Choices made before this command existed (the demo's data difficulty, "
            "MAE's batch, SimCLR's grayscale and stem) are described with their val numbers in "
            "the comments of the runs' params files; their runs were fully evaluated, so test "
            "numbers were computed then, though not read for the choice.</p>")
    if not rows:
        return text + "<p>No logged choice for this report's configurations.</p>"
    return text + paper.table_html(pd.DataFrame(rows).style.hide(axis="index"), "choices",
                                   "Candidates of every logged choice (logs/choices/), each "
                                   "scored on val: the best on val, and the value this "
                                   "report's runs used (a later choice can supersede an "
                                   "earlier one's best). A candidate of several keys lists "
                                   "their values in the Key column's order. Criterion: " +
                                   "; ".join(f"{k} {c}" for c, k in criteria.items()) + ".",
                                   appendix=True)


def appendix_parts(rows: list[Run], groups: list[Configuration], diffs: list[Difference],
                   paper, graphs_dir: Path, bench_dir: Path) -> list[tuple[str, str]]:
    """The report's appendix as (title, HTML): per-seed results, each run's setup (environment,
    main parameters, data, pretraining curves), and the benchmarks of its own configurations."""
    parts = [("Per-seed results", paper.table_html(
        tables.per_seed_table(rows), "per-seed", "Every run's numbers (also in "
        "results_per_seed.csv beside the report).", appendix=True))]
    others = other_differences(diffs, groups)
    if len(others.data):
        parts.append(("Every other difference", paper.table_html(
            others, "differences", "The differences the Results do not state in prose (a "
            "model that did not learn is compared there only with its own twin), each with its "
            "95% interval (descriptive, not adjusted for multiplicity).",
            appendix=True)))
    parts.append(("How the recipes were chosen", choices_html(groups, paper)))
    bench = bench_table(bench_dir, {g.encoder for g in groups},
                        {g.params["data"]["image_size"] for g in groups},
                        {g.device for g in groups})
    if len(bench.data):
        parts.append(("Benchmarks", paper.table_html(
            bench, "bench", "Benchmarks of this report's configurations on its hardware "
            "(logs/bench/): training-step images/s with real augmentation, model-FLOP "
            "utilisation, loop overhead, feeding and augmentation throughput.", appendix=True)))
    # platform names the host: isolated clocks agree on one host, not across hosts
    env_keys = ["python", "torch", "torchvision", "timm", "device_name", "platform", "git_commit",
                "code_version"]
    for g in groups:  # one configuration's seeds differ only in `seed`: its first run stands
        first, others = g.runs[0], g.runs[1:]
        run = Path(first.run_dir)
        env = json.loads((run / "env.json").read_text()) if (run / "env.json").is_file() else {}
        setup = _table([(k, _fmt(env[k])) for k in env_keys if k in env], ("environment", ""))
        if "+dirty" in str(env.get("git_commit")):
            setup += ("<p><b>Uncommitted code.</b> This run ran from a tree with uncommitted "
                      "changes to code or params: its commit is not the whole story"
                      + (f"; {run / 'env.json'} keeps the diff (git_diff), whose sha256 starts "
                         f"with the hash after '+dirty.'" if env.get("git_diff") else
                         " (recorded before runs kept the diff)") + ".</p>")
        made = saved_params(run)  # what ran, and the evaluation settings it was read with
        setup += _table(params_rows(made), ("parameter", "value"))
        if others:
            setup += (f"<p>Seeds {', '.join(str(r.seed) for r in others)}: the same parameters "
                      f"but <code>seed</code> (runs "
                      f"{', '.join(html.escape(r.run) for r in others)}); their numbers are in "
                      f"the per-seed table, their files in logs/.</p>")
        if (run / "metrics" / "steps.jsonl").is_file():  # redrawn from the logs at each render
            plt.close(plots.training_curves(run, graphs_dir))
        curves = graphs_dir / f"pretraining_curves_{run.name}.png"
        if curves.is_file():
            setup += paper.figure_html(curves.read_bytes(), f"curves-{run.name}",
                                       f"Pretraining loss, learning rate and images/s per step "
                                       f"of {run.name}.", appendix=True)
        source = f" ({g.params_file})" if g.params_file else ""
        parts.append((f"{g.model}: run {run.name}{source}", setup))
    return parts
