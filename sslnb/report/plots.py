"""Figures of the study, each saved as a PNG named for what it shows (graphs/<name>.png) and
returned as a matplotlib Figure for the notebook to display."""
from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, NullFormatter
import seaborn as sns
import torch
import yaml

from .. import evaluators as ev, methods
from ..checkpoint import has_checkpoint, load_pretrained
from ..data import load_split
from ..features import features
from ..params import fill_missing
from ..runs import read_jsonl
from ..stats import accuracy_interval
from ..verdicts import percent
from . import learning
from .claims import ClaimResult
from .records import Configuration, full_set, main_groups, sweeps
from .wording import listing

sns.set_theme(style="whitegrid", context="notebook")


# The PDF prints a figure across the A4 text width (report.css: 14 mm margins); its text must
# read at 8 pt or more there.
PRINT_WIDTH_IN = (210 - 2 * 14) / 25.4
MIN_PRINT_PT = 8.0


def legible(fig) -> None:
    """Raise every text of the figure (titles, labels, ticks, legends) to MIN_PRINT_PT at print
    size, and thin the ticks of an axis whose labels would then overlap."""
    scale = min(1.0, PRINT_WIDTH_IN / fig.get_figwidth())
    least = MIN_PRINT_PT / scale
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            size = max(axis.get_ticklabels()[0].get_fontsize() if axis.get_ticklabels() else 0,
                       least)
            ax.tick_params(axis="x" if axis is ax.xaxis else "y", labelsize=size)
    for text in fig.findobj(Text):
        if text.get_text() and text.get_fontsize() < least:
            text.set_fontsize(least)
    fig.canvas.draw()
    for ax in fig.axes:
        for nbins in (4, 3, 2):
            boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]
            if not any(a.x1 > b.x0 for a, b in zip(boxes, boxes[1:])):
                break
            ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins))
            fig.canvas.draw()


def _save(fig, graphs_dir: Path | str | None, name: str):
    legible(fig)
    fig.tight_layout()
    if graphs_dir is not None:
        Path(graphs_dir).mkdir(parents=True, exist_ok=True)
        # "tight" keeps a legend placed below the axes inside the picture
        fig.savefig(Path(graphs_dir) / f"{name}.png", dpi=110, bbox_inches="tight")
    return fig


def training_curves(run: Path | str, graphs_dir=None):
    """Pretraining loss and learning rate per step, and images/s."""
    run = Path(run)
    steps = read_jsonl(run / "metrics" / "steps.jsonl")
    fig, ax = plt.subplots(1, 3, figsize=(10, 3.2))
    x = [s["step"] for s in steps]
    ax[0].plot(x, [s["loss"] for s in steps], color="C0", label="loss")
    ax[0].set(title="pretraining loss", xlabel="step", ylabel="loss")
    p = yaml.safe_load((run / "params.yaml").read_text()) if (run / "params.yaml").is_file() else None
    level = methods.get(p).constant_loss(fill_missing(p)) if p else None
    if level is not None:  # where a collapsed (input-independent) output sits, from 0 up
        ax[0].axhline(level, color="0.3", ls="--", lw=1, label=f"constant output ({level:.2f})")
        ax[0].set_ylim(bottom=0, top=max(level, max(s["loss"] for s in steps)) * 1.05)
        ax[0].legend(fontsize=8, loc="lower left")
    ax[1].plot(x, [s["lr"] for s in steps], color="C1")
    ax[1].set(title="learning rate", xlabel="step")
    ax[2].plot(x, [s["images_per_s"] for s in steps], color="C2")
    ax[2].set(title="throughput", xlabel="step", ylabel="images/s")
    ax[2].set_ylim(bottom=0)
    return _save(fig, graphs_dir, f"pretraining_curves_{run.name}")


def _show(ax, img: torch.Tensor, title: str | None = None):
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


@torch.no_grad()
def what_the_method_sees(run: Path | str, graphs_dir=None, n: int = 8):
    """The method's own pictures of n validation images, one of each class in turn (MAE: masked
    inputs and reconstructions; SimCLR: two augmented views)."""
    run = Path(run)
    model, p = load_pretrained(run)
    method = methods.get(p)
    images = load_split(p["data"], "val").stratified(n, seed=0).images
    rows = method.showcase(model, p, images)
    fig, ax = plt.subplots(len(rows), n, figsize=(1.4 * n, 1.55 * len(rows)), squeeze=False)
    for r, (name, imgs) in enumerate(rows):
        for c in range(min(n, len(imgs))):
            _show(ax[r, c], imgs[c], name if c == 0 else None)
    return _save(fig, graphs_dir, f"{method.showcase_name}_{run.name}")


def probe_curves(runs: list[Path | str], graphs_dir=None, name: str = "linear_probe_curves",
                 labels: list[str] | None = None):
    """Per-epoch linear-probe accuracy and loss (train and val) of every run, pretrained (solid)
    and random init (dashed), on shared axes: the study's probing graphs. labels: how a reader
    names each run's model (default: the run's name)."""
    fig, ax = plt.subplots(1, 2, figsize=(9.5, 3.8))
    for i, run in enumerate(map(Path, runs)):
        model = labels[i] if labels else run.name
        for kind, style in (("pretrained", "-"), ("random_init", "--")):
            hist = read_jsonl(run / "metrics" / f"probe_{kind}.jsonl")
            if not hist:
                continue
            ep = [h["epoch"] for h in hist]
            label = f"{model} ({'pretrained' if kind == 'pretrained' else 'random init'})"
            ax[0].plot(ep, [h["val_top1"] for h in hist], style, color=f"C{i}", label=label + " val")
            ax[0].plot(ep, [h["train_top1"] for h in hist], style, color=f"C{i}", alpha=0.35)
            ax[1].plot(ep, [h["val_loss"] for h in hist], style, color=f"C{i}", label=label + " val")
            ax[1].plot(ep, [h["train_loss"] for h in hist], style, color=f"C{i}", alpha=0.35)
    ax[0].set(title="linear probe top-1 (faint: train)", xlabel="probe epoch", ylabel="accuracy (%)")
    ax[1].set(title="linear probe loss (faint: train)", xlabel="probe epoch", ylabel="cross-entropy")
    handles, names = ax[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper center", ncol=2, bbox_to_anchor=(0.5, 0.0))
    return _save(fig, graphs_dir, name)


AXES = (("epoch", "pretraining epochs", None), ("images_seen", "images seen (millions)", 1e6),
        ("train_flops", "training FLOPs", None),
        ("train_seconds", "pretraining wall-clock (minutes)", 60.0))


def _flops_unit(groups: list[Configuration]) -> tuple[float, str]:
    """The FLOPs unit that puts the largest value between 1 and 1000 (no '0.0025' ticks)."""
    largest = max((pt.train_flops for g in groups for pt in g.curve if pt.train_flops is not None),
                  default=1.0)
    return next(((s, u) for s, u in ((1e18, "EFLOP"), (1e15, "PFLOP"), (1e12, "TFLOP"))
                 if largest >= s), (1e9, "GFLOP"))


def across_pretraining(groups: list[Configuration], graphs_dir=None,
                       name: str = "accuracy_across_pretraining"):
    """Test top-1 of the encoder snapshots kept during pretraining (step 0 = random init), against
    epochs, images seen, training FLOPs and wall-clock time: one line per model (solid: linear
    probe, dotted: kNN) with its 95% band and each seed's probe as a faint dot; the legend says
    at which step each model's probe first overtook its random-init twin's. The study's
    per-epoch probing graph, and the compute-matched view (which method gives better features
    per unit of compute)."""
    fig, axes = plt.subplots(2, 2, figsize=(9.5, 6.4), sharey=True)
    axes = list(axes.flat)
    flops_scale, flops_unit = _flops_unit(groups)
    for i, g in enumerate(groups):
        pts = g.curve
        step = learning.overtakes_twin(g)
        overtakes = ("" if len(pts) < 2 else ", never above its twin" if step is None else
                     f", above its twin from step {step:,}")
        for ax, (key, label, scale) in zip(axes, AXES):
            if not pts or any(getattr(pt, key) is None for pt in pts):
                continue
            if key == "train_flops":
                scale, label = flops_scale, f"{label} ({flops_unit})"
            x = [getattr(pt, key) / (scale or 1.0) for pt in pts]
            if len(x) > 1 and x[-1] <= 0:
                continue  # not measured (a run shorter than one epoch logs no epoch time)
            for readout, style, alpha in (("probe", "-o", 0.2), ("knn", ":", 0.08)):
                ax.plot(x, [getattr(pt, readout).value for pt in pts], style, color=f"C{i}",
                        markersize=3, label=f"{g.model} " + (f"probe{overtakes}" if readout == "probe"
                                                              else "kNN"))
                ax.fill_between(x, [getattr(pt, readout).low for pt in pts],
                                [getattr(pt, readout).high for pt in pts],
                                color=f"C{i}", alpha=alpha, linewidth=0)
            if g.n > 1:  # each seed's own probe at each snapshot
                for xi, pt in zip(x, pts):
                    seeds = 100 * g.correct[f"{pt.kind}/probe"].mean(axis=1)
                    ax.scatter([xi] * len(seeds), seeds, s=8, color=f"C{i}", alpha=0.45,
                               linewidths=0)
            ax.set(xlabel=label)
    for ax in axes[::2]:
        ax.set(ylabel="test top-1 (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(2, max(1, len(labels))),
               bbox_to_anchor=(0.5, 0.0))
    device = groups[0].device if groups else ""
    axes[-1].set_title(device)
    return _save(fig, graphs_dir, name)


def primaries_forest(results: list[ClaimResult], graphs_dir=None, name: str = "primaries"):
    """Each registered primary's difference (a - b, points) with its Holm-adjusted interval, the
    equivalence margin +-delta shaded and 0 drawn, labelled with its verdict: the claims at a
    glance. None without a decided primary."""
    rows = [(i, r) for i, r in enumerate(results, 1) if r.primary and r.deciding]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.2, 0.9 + 0.75 * len(rows)))
    delta = max(r.primary.delta for _, r in rows)
    ax.axvspan(-delta, delta, color="0.9", zorder=0, label=f"\u00b1{delta:g} points (equivalence margin)")
    ax.axvline(0, color="0.3", lw=1)
    for y, (i, r) in enumerate(reversed(rows)):
        d = r.deciding
        ax.errorbar(d.value, y, xerr=[[d.value - d.low], [d.high - d.value]],
                    fmt="o", color="C3" if r.verdict == "invalid test" else "C0", capsize=4)
        ax.annotate(f"{r.verdict} ({percent(d.level)})", (d.high, y),
                    xytext=(6, 0), textcoords="offset points", va="center")
    ax.set_yticks(range(len(rows)), [f"{i}. {r.short}" for i, r in reversed(rows)])
    ax.set(xlabel="primary difference a - b (points), Holm-adjusted interval")
    ax.margins(x=0.35)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _save(fig, graphs_dir, name)


def _errorbar(ax, x, ivs, **kw):
    ax.errorbar(x, [v.value for v in ivs], yerr=[[v.value - v.low for v in ivs],
                                                  [v.high - v.value for v in ivs]],
                capsize=3, markersize=4, **kw)


def partial_finetuning(groups: list[Configuration], graphs_dir=None,
                       name: str = "partial_finetuning"):
    """Test top-1 against how many of the last blocks (ViT) or stages (ResNet) were fine-tuned,
    0 being the linear probe (on fine-tuning's labelled images where the run has it), pretrained
    vs random init, with 95% intervals: the MAE paper's Figure 9 (probe -> partial -> full), one
    panel per model. None without fine-tuning."""
    tuned = [g for g in main_groups(groups) if ev.finetunings(g.correct)]
    if not tuned:
        return None
    fig, axes = plt.subplots(1, len(tuned), figsize=(4.0 * len(tuned), 3.4), sharey=True,
                             squeeze=False)
    for ax, g in zip(axes[0], tuned):
        blocks = g.params["eval"]["finetune_blocks"]
        ks = [0, *sorted(k for k in blocks if k != "all"), *(["all"] if "all" in blocks else [])]
        for kind, color, label in (("pretrained", "C0", "pretrained"),
                                   ("random_init", "C7", "random init")):
            start = ev.finetune(0, kind).key  # the probe on fine-tuning's own labelled images
            keys = [(start if start in g.correct else ev.probe(kind).key) if k == 0
                    else ev.finetune(k, kind).key for k in ks]
            shown = [(i, key) for i, key in enumerate(keys) if key in g.correct]
            _errorbar(ax, [i for i, _ in shown],
                      [accuracy_interval(g.correct[key]) for _, key in shown],
                      fmt="-o", color=color, label=label)
            for i, key in shown:  # each seed's own accuracy beside the interval
                seeds = 100 * g.correct[key].mean(axis=1)
                ax.scatter([i + 0.08] * len(seeds), seeds, s=14, color=color, alpha=0.55,
                           linewidths=0)
        ax.set_xticks(range(len(ks)), ["probe" if k == 0 else "all" if k == "all" else f"last {k}"
                                       for k in ks])
        ax.set(title=g.model, xlabel="blocks fine-tuned")
    axes[0][0].set(ylabel="test top-1 (%)")
    axes[0][0].legend(fontsize=8)
    return _save(fig, graphs_dir, name)


def finetuning_readout(groups: list[Configuration]) -> str:
    """What the partial fine-tuning figure shows, in words: for each pretrained model, the test
    top-1 after fine-tuning its deepest fine-tuned depth minus the probe it started from, so a
    caption says so when fine-tuning lowers accuracy."""
    said = []
    for g in main_groups(groups):
        c = g.correct
        start = ev.finetune(0).key if ev.finetune(0).key in c else ev.probe().key
        tuned = ev.finetunings(c)  # fewest layers first, every block last
        end = tuned[-1] if tuned else None  # the deepest fine-tuning
        if end is None or start not in c:
            continue
        d = accuracy_interval(c[end.key]).value - accuracy_interval(c[start]).value
        depth = ("every block" if end.depth == "all" else "the last block" if end.depth == 1
                 else f"the last {end.depth} blocks")
        said.append(f"{g.model} {'gains' if d > 0 else 'loses'} {abs(d):.1f} points "
                    f"fine-tuning {depth}")
    if not said:
        return ""
    return "Here " + listing(said) + " (test top-1 against the probe it starts from)."


def _epochs(g: Configuration):
    """A configuration's epochs, or None where train.steps set its length instead."""
    t = g.params["train"]
    return None if t.get("steps") else t["epochs"]


def data_scale(groups: list[Configuration], graphs_dir=None, name: str = "data_scale"):
    """Linear-probe test top-1 against the number of pretraining images, one colour per method
    (runs that differ only in their pretraining set): solid, every set at the full set's
    optimizer steps; dotted, every set at the full set's epochs (fewer steps for fewer images);
    95% intervals; the random-init probe dashed. None without such runs."""
    found = sweeps(groups)
    if not found:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, s in enumerate(found):
        full = full_set(s)
        series = [("equal steps", "-o", [g for g in s if g.steps == full.steps]),
                  ("equal epochs", ":s", [g for g in s if _epochs(g) == _epochs(full)])]
        for label, fmt, line in series:
            if len({g.pretrain_images for g in line}) < 2:
                continue
            x = [g.pretrain_images for g in line]
            _errorbar(ax, x, [g.ci["test_top1"] for g in line], fmt=fmt, color=f"C{i}",
                      label=f"{full.model}, {label}")
            for g in line:  # each seed's own accuracy
                ax.scatter([g.pretrain_images] * len(g.runs),
                           [r.test_top1 for r in g.runs], s=14, color=f"C{i}", alpha=0.55,
                           linewidths=0)
        random = {g.pretrain_images: g.mean["random_test_top1"] for g in s}
        ax.plot(list(random), list(random.values()), "--", color=f"C{i}", alpha=0.5,
                label=f"{full.model}, random init")
    sizes = [g.pretrain_images for s in found for g in s]
    if max(sizes) >= 10 * min(sizes):
        ax.set_xscale("log")
    ax.set_xticks(sorted(set(sizes)))  # the set sizes themselves, no log-scale minor labels
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set(xlabel="pretraining images", ylabel="test top-1 (%)")
    ax.legend(fontsize=7)
    return _save(fig, graphs_dir, name)


def finetune_curves(groups: list[Configuration], name: str = "finetune_curves",
                    graphs_dir=None):
    """Validation top-1 after each fine-tuning epoch (end to end), pretrained (solid) against
    random init (dashed), one colour per model (first seed). None without fine-tuning."""
    fig, ax = plt.subplots(figsize=(6, 3.4))
    drawn = False
    for i, g in enumerate(main_groups(groups)):
        run = Path(g.runs[0].run_dir)
        for kind, style in (("pretrained", "-o"), ("random_init", "--")):
            recs = read_jsonl(run / "metrics" / f"finetune_{kind}.jsonl")
            if recs:
                ax.plot([r["epoch"] for r in recs], [r["val_top1"] for r in recs], style,
                        color=f"C{i}", markersize=3,
                        label=f"{g.model}{', random init' if kind == 'random_init' else ''}")
                drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set(xlabel="fine-tuning epoch", ylabel="val top-1 (%)")
    ax.legend(fontsize=7)
    return _save(fig, graphs_dir, name)


def _pca2(x: torch.Tensor) -> torch.Tensor:
    """Centred rows projected on their first two principal components."""
    torch.manual_seed(0)  # pca_lowrank projects randomly: same figure every build
    _, _, v = torch.pca_lowrank(x.float(), q=2, center=False)
    return x.float() @ v[:, :2]


def feature_maps(groups: list[Configuration], name: str = "feature_maps", graphs_dir=None,
                 n: int = 1000):
    """The first two principal components of each model's frozen val features (first seed, up
    to n images, coloured by class): how separable the classes are before any probe."""
    shown = main_groups(groups)
    saved = Path(graphs_dir or ".") / f"{name}.png"
    if not all(has_checkpoint(Path(g.runs[0].run_dir)) for g in shown) and saved.is_file():
        return saved  # rendering from logs alone: the map drawn when the runs were built
    fig, axes = plt.subplots(1, len(shown), figsize=(3.3 * len(shown), 3.2), squeeze=False)
    for ax, g in zip(axes[0], shown):
        f = features(g.runs[0].run_dir, "pretrained", "val")
        x, y = f["features"][:n], f["labels"][:n]
        xy = _pca2(x - x.mean(0))
        for c, cls in enumerate(f["classes"]):  # one colour and legend entry per class
            sel = (y == c).numpy()
            ax.scatter(xy[sel, 0], xy[sel, 1], s=4, color=plt.cm.tab20(c % 20),
                       label=str(cls))
        ax.set(title=g.model, xticks=[], yticks=[])
    handles, labels = axes[0][0].get_legend_handles_labels()
    if len(labels) <= 20:  # more classes than a legend can name: colours only
        fig.legend(handles, labels, loc="upper center", ncol=min(5, len(labels)), markerscale=3,
                   bbox_to_anchor=(0.5, 0.0))
    return _save(fig, graphs_dir, name)


def feature_pca(feats: dict, classes: list[str], name: str, graphs_dir=None, split: str = "val"):
    """2-D PCA of frozen features coloured by class: pretrained vs random-init encoder."""
    kinds = [k for k in ("pretrained", "random_init") if (k, split) in feats]
    fig, ax = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), squeeze=False)
    for a, kind in zip(ax[0], kinds):
        x = feats[(kind, split)]["features"].float()
        y = feats[(kind, split)]["labels"]
        xy = _pca2((x - x.mean(0)) / (x.std(0) + 1e-6)).numpy()
        for c in range(len(classes)):
            sel = (y == c).numpy()
            a.scatter(xy[sel, 0], xy[sel, 1], s=4, alpha=0.6, label=classes[c])
        a.set(title=f"{kind.replace('_', ' ')} encoder ({split})", xticks=[], yticks=[])
    ax[0][-1].legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1, 0.5))
    return _save(fig, graphs_dir, f"feature_pca_{name}")
