"""The report as a short paper: numbered figures and tables with captions, a collapsible appendix,
and the prose that is generated from the results (abstract, methods).

Every figure and table is one HTML `<figure>` with its caption, so that the print stylesheet can
keep it on one page and the tests can find every caption. Numbers are given in order of first
mention, so that a reference written before the figure ("decided by Table 2") and the figure's
own caption agree.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from .. import encoders, evaluators as ev, methods
from ..verdicts import percent
from . import records
from .records import Configuration, main_groups
from .results_file import Results
from .wording import class_label, dataset_name, listing, plural, study_classes


class Paper:
    """Figure and table numbering for one report (the appendix's are A1, A2, ...)."""

    def __init__(self):
        self.numbers: dict[tuple[str, str], str] = {}
        self.count = {"Figure": 0, "Table": 0, "Figure A": 0, "Table A": 0}

    def ref(self, kind: str, key: str, appendix: bool = False) -> str:
        """'Figure 3' for key: the number it got when first mentioned or shown."""
        label = kind + (" A" if appendix else "")
        if (label, key) not in self.numbers:
            self.count[label] += 1
            self.numbers[(label, key)] = f"{kind} {'A' if appendix else ''}{self.count[label]}"
        return self.numbers[(label, key)]

    def figure_html(self, image: bytes, key: str, caption: str, appendix: bool = False) -> str:
        data = base64.b64encode(image).decode()
        return (f'<figure class="sslnb-figure" id="figure-{html.escape(key)}">'
                f'<img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
                f"<figcaption><b>{self.ref('Figure', key, appendix)}.</b> {caption}</figcaption>"
                f"</figure>")

    def table_html(self, table, key: str, caption: str, appendix: bool = False) -> str:
        body = table.to_html() if hasattr(table, "to_html") else str(table)
        return (f'<figure class="sslnb-table" id="table-{html.escape(key)}">'
                f"<figcaption><b>{self.ref('Table', key, appendix)}.</b> {caption}</figcaption>"
                f'<div class="table-scroll">{body}</div></figure>')

    # In a notebook ---------------------------------------------------------------------------
    def figure(self, fig, key: str, caption: str) -> None:
        """Show a matplotlib figure (closed afterwards), or a saved PNG, as a numbered figure."""
        if fig is None:
            return
        if isinstance(fig, (str, Path)):
            return self.figure_file(fig, key, caption)
        _show(self.figure_html(png(fig), key, caption), self._summary(key, caption))

    def figure_file(self, path: Path | str, key: str, caption: str) -> None:
        if Path(path).is_file():
            _show(self.figure_html(Path(path).read_bytes(), key, caption),
                  self._summary(key, caption))

    def _summary(self, key: str, caption: str) -> str:
        return f"{self.ref('Figure', key)}: {caption} (the image: in graphs/ and report.html)"

    def table(self, table, key: str, caption: str) -> None:
        _show(self.table_html(table, key, caption))

    def appendix(self, parts: list[tuple[str, str]]) -> None:
        """The appendix, collapsed in the browser (the PDF prints it open, last): (title, HTML)."""
        inner = "".join(f"<h3>{html.escape(t)}</h3>{h}" for t, h in parts)
        _show(f'<details class="appendix" id="appendix"><summary><h2 id="Appendix">Appendix</h2>'
              f"<span>per-run setup, parameters, environment, per-seed results, benchmarks"
              f"</span></summary>{inner}</details>",
              "The appendix: in report.html (its figures embed images)", ("Appendix", "Appendix"))


def png(fig) -> bytes:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _show(text: str, summary: str | None = None, heading: tuple | None = None) -> None:
    """Display HTML; `summary` stands in for it where its images are stripped from the executed
    notebook, `heading` (id, title) enters the report's table of contents (sslnb.report.builder
    reads both from the output's metadata)."""
    from IPython.display import HTML, display
    meta = {**({"sslnb_summary": summary} if summary else {}),
            **({"sslnb_heading": list(heading)} if heading else {})}
    display(HTML(text), metadata=meta or None)


def pretraining_data(groups: list[Configuration], shown: int = 20) -> list[str]:
    """Methods lines: the classes each pretraining saw (names and ids, from the run's data.json)
    and the files the decode-once cache skipped, with reasons."""
    import json
    seen: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for g in groups:
        path = Path(g.runs[0].run_dir) / "data.json"
        if not path.is_file():
            continue
        d = json.loads(path.read_text())
        names = [class_label(c) for c in d["classes"]]
        label = f"{len(names)} classes{study_classes(g.params['data'])}: {', '.join(names)}"
        seen.setdefault(label, []).append(g.model)
        skipped.update({s["file"]: s["reason"] for s in d.get("skipped", [])})
    lines = []
    for label, models in seen.items():
        who = "" if len(seen) == 1 else f" ({listing(models)})"
        lines.append(f"**Pretraining classes{who}.** {label}.")
    if skipped:
        listed = "; ".join(f"`{f}` ({r})" for f, r in list(skipped.items())[:shown])
        more = f"; and {len(skipped) - shown} more (in each run's data.json)" \
            if len(skipped) > shown else ""
        lines.append(f"**Skipped files.** The decode-once cache could not read "
                     f"{plural(len(skipped), 'file')}: {listed}{more}.")
    return lines


def abstract(results: Results) -> str:
    """The abstract, from results.json alone (results_file.read; a test recomputes it from the
    file)."""
    main, data = results.main, results.data
    seeds = sorted({c.n_seeds for c in results.configurations})
    out = [f"{listing([c.model for c in main])} were pretrained without labels on "
           f"{data.description} and read out by a linear probe on their frozen features, each "
           f"next to the same architecture at random initialisation; every accuracy is on "
           f"{data.test_images:,} test images that no choice read"
           + (f", over {listing([str(s) for s in seeds])} seeds" if seeds != [1] else "") + "."]
    reads = []
    for c in main:
        ci, rnd = c.ci["test_top1"], c.ci.get("random_test_top1")
        reads.append(f"{c.model} reaches {ci.value:.1f}% (95% CI {ci.low:.1f} to "
                     f"{ci.high:.1f})" + (f" against {rnd.value:.1f}% at random init"
                                          if rnd else ""))
    out.append(listing(reads) + ".")
    failed = {c.model: c.why_not for c in main if not c.learned}
    if failed:
        out.append(listing([f"{m} ({' and '.join(why)})" for m, why in failed.items()])
                   + f" did not learn at {'its budget' if len(failed) == 1 else 'their budgets'}"
                   f": shown, marked and left out of every ranking.")
    if results.claims:  # the registered primaries speak; no other comparison is stated beside them
        said = []
        for c in results.claims:
            d = c.deciding
            at = (f": {c.a} - {c.b} {d.value:+.1f} points ({percent(d.level)} CI "
                  f"{d.low:+.1f} to {d.high:+.1f}"
                  + (f", minimum detectable effect {c.mde:.1f}" if c.mde else "") + ")"
                  if d else "")
            said.append(f"claim {c.number} ({c.short}) is {c.verdict}{at}")
        out.append("Each of the study's claims is decided on one primary comparison registered "
                   "before the build, Holm-adjusted over the primaries: " + "; ".join(said)
                   + ". At full scale each could change, as the Claims section says.")
    else:
        # Pairs on one encoder compare objectives; with several methods per encoder only those
        # are stated here (every pair is in the Comparisons section).
        arch = {c.model: c.architecture for c in main}
        pairs = [d for d in results.differences
                 if d.kind == "model_vs_model" and d.what == "under the linear probe"]
        pairs = [d for d in pairs if not {d.a, d.b} & set(failed)]
        same = [d for d in pairs if arch.get(d.a) and arch.get(d.a) == arch.get(d.b)]
        for d in same or pairs:
            iv = d.interval
            if iv.low > 0 or iv.high < 0:
                ahead, behind = (d.a, d.b) if iv.value > 0 else (d.b, d.a)
                lo, hi = sorted((abs(iv.low), abs(iv.high)))
                out.append(f"Under the probe {ahead} leads {behind} by "
                           f"{abs(iv.value):.1f} points (95% CI {lo:.1f} to {hi:.1f}, "
                           f"unadjusted).")
            else:
                out.append(f"Under the probe {d.a} and {d.b} cannot be told apart "
                           f"({iv.value:+.1f} points, 95% CI {iv.low:+.1f} to "
                           f"{iv.high:+.1f}, unadjusted).")
        out.append("This report registers no primary comparison, so it decides none of the "
                   "study's claims (the claims report does).")
    costs = [f"{c.model} {c.mean['isolated_epoch_time_s']:.0f} s" for c in main
             if c.mean.get("isolated_epoch_time_s")]
    if len(costs) == len(main):
        out.append(f"One pretraining epoch took {listing(costs)} on {data.device}, measured "
                   f"with nothing else running.")
    return " ".join(out)


def methods_markdown(groups: list[Configuration]) -> str:
    """What the resolved params say of this report: its data and splits, each configuration's
    recipe, the evaluation's settings, the hardware and the objectives' papers. The protocol
    every report shares is prose in 04_compare's Methods cell."""
    first = groups[0].params
    d, e = first["data"], first["eval"]
    if d["source"] == "shapes":
        data = (f"The embedded `shapes` dataset: {d['num_classes']} classes of procedurally "
                f"generated {d['image_size']}x{d['image_size']} images, {d['num_train']:,} for "
                f"training, {d['num_val']:,} for validation and {d['num_test']:,} for testing, each "
                f"split generated with its own seed (object size {d['scale'][0]:g}-"
                f"{d['scale'][1]:g}, shift {d['max_shift']:g}, noise {d['noise']:g}, texture "
                f"{d['texture']:g}).")
    else:
        data = (f"{dataset_name(d['source'])} (`data.source: {d['source']}`) at "
                f"{d['image_size']}px: `val` holds "
                f"{d['val_per_class']} images per class carved from the training images (seeded), "
                f"`test` is the official held-out set (see docs/datasets.md).")
    lines = ["**Data and splits.** " + data, ""]
    for line in pretraining_data(groups):
        lines += [line, ""]
    lines += ["**Configurations.** Each row is one pretraining (every parameter is in the run's "
              "`params.yaml`, listed in the appendix):", ""]
    lines += ["| Model | Encoder | Params file | Epochs | Batch | Optimizer, base lr | "
              "Pretraining images |", "|---|---|---|---|---|---|---|"]
    for g in groups:
        p, m = g.params, g.mean
        enc = p["model"]["encoder"] + (" (timm)" if encoders.family(p["model"]["encoder"]) == "vit"
                                       else " (torchvision)")
        src = g.params_file
        lines.append(f"| {g.model} | {enc} | {src} | {p['train']['epochs']} | "
                     f"{p['train']['batch_size']} | {p['train']['optimizer']}, "
                     f"{p['train']['base_lr']:g} | {m['pretrain_images']:,.0f} |")
    lines += ["", f"**Evaluation.** Linear probe: BatchNorm without affine parameters, then a "
              f"linear layer, on frozen features (the MAE protocol), "
              f"{plural(e['probe_epochs'], 'epoch')}, "
              f"{e['probe_optimizer'].upper()} at base lr {e['probe_base_lr']:g} x batch/256 "
              f"(batch {e['probe_batch_size']}), {plural(e['probe_warmup_epochs'], 'warm-up epoch')}, "
              f"cosine. kNN: cosine similarity, k = {e['knn_k']}, temperature "
              f"{e['knn_temperature']:g}."]
    tuned = [g for g in main_groups(groups) if g.params["eval"]["finetune_epochs"] > 0]
    if tuned:
        f = tuned[0].params["eval"]
        lines[-1] += (f" Fine-tuning: the exported encoder as a timm / torchvision classifier, "
                      f"{plural(f['finetune_epochs'], 'epoch')}"
                      + (f" on {f['finetune_max_train']:,} labelled images" if
                         f["finetune_max_train"] else "")
                      + f", AdamW at base lr {f['finetune_base_lr']:g}, layer-wise lr decay "
                      f"{f['finetune_layer_decay']:g} and drop path {f['finetune_drop_path']:g} "
                      f"(ViTs), label smoothing {f['finetune_label_smoothing']:g}; the last "
                      f"{listing([str(k) for k in f['finetune_blocks']])} blocks (stages) train"
                      + ("; every depth starts from a linear probe trained on the same labelled "
                         "images (depth 0, what each gain is measured from), and BatchNorm keeps "
                         "the statistics that probe read." if any(
                             ev.finetune(0).key in g.correct for g in tuned) else "."))
    lines += ["", "**Hardware.** " + listing(sorted({g.device for g in groups})) + "."]
    used = sorted({methods.get(g.method) for g in groups}, key=lambda m: m.title)
    cited = "; ".join(f"{m.title}: {m.citation}" for m in used if m.citation)
    lines += ["", f"**Objectives.** {listing([m.title for m in used])} as in their papers"
              + (f" ({cited})" if cited else "") + "; what is faithful and how it is tested is "
              "listed in docs/methods.md and docs/protocol.md."]
    return "\n".join(lines)


def limitations(groups: list[Configuration]) -> list[str]:
    """What the report cannot say, from what it contains (what holds for every report, such as
    how a rebuild reproduces, is prose in 04_compare's Limitations cell)."""
    out = []
    seeds = sorted({g.n for g in groups})
    if seeds == [1]:
        out.append("One seed per configuration: the intervals cover which test images were drawn, "
                   "not run-to-run variation of pretraining (`seeds: [0, 1, 2]` in the report "
                   "params repeats every run), so a rebuild on other hardware can land outside "
                   "them.")
    else:
        out.append(f"{' or '.join(map(str, seeds))} seeds per configuration: the seed part of each "
                   f"interval takes Student's t with n - 1 degrees of freedom, which is why the "
                   f"intervals are wide; more seeds narrow them.")
    if any(g.source == "shapes" for g in groups):
        out.append("The embedded `shapes` data and the CPU-sized schedules are far from "
                   "ImageNet-scale pretraining, and the demo's data difficulty and recipes were "
                   "chosen on `val` for short schedules; they show the pipeline and the direction "
                   "of effects, not the published numbers. The study's configurations run with "
                   "`make report REPORT=imagenet100 DATA=/path/to/imagenet100` on a GPU.")
    main = main_groups(groups)
    missing = [g.model for g in main if "finetune_top1" not in g.mean]
    tuned = [g for g in main if "finetune_top1" in g.mean]
    if missing:
        out.append(f"Fine-tuning was not run for {listing(missing)} "
                   f"(eval.finetune_epochs: 0): this report does not test whether fine-tuning "
                   f"changes their ranking.")
    if tuned:
        e = tuned[0].params["eval"]
        out.append(f"Fine-tuning is short ({plural(e['finetune_epochs'], 'epoch')}"
                   + (f" on {e['finetune_max_train']:,} labelled images" if e["finetune_max_train"]
                      else "") + ", without mixup or cutmix): it says little about how each "
                   "method fine-tunes at a full budget.")
    sweeps = records.sweeps(groups)
    if any(g.steps < records.full_set(s).steps for s in sweeps for g in s):
        out.append("Some data-scale runs train a smaller pretraining set for the same epochs as "
                   "the full one, so it also gets fewer optimizer steps: those comparisons do not "
                   "separate less data from less compute (shown, labelled; only equal-step "
                   "comparisons decide the data claim).")
    out.append("Random-init twins use the same architecture and initialisation seed, never trained "
               "(ResNet BatchNorm statistics at their initial values)" + (
                   "; the linear probe uses SGD rather than the protocol's LARS because its "
                   "batches are small (see docs/protocol.md)." if all(
                       g.params["eval"]["probe_optimizer"] == "sgd" for g in groups) else "."))
    return out
