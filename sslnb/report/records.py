"""The report's typed records: `Run` (one pretraining, as its logs say), `Configuration` (the
seeds of one run spec together), their points across pretraining and the did-it-learn check, and
which configurations are which (data-scale sweeps). sslnb.report.summary makes them once from the
logs; every analysis reads them, never the files. Accuracies are on `test` unless a field says
`val`."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from .. import evaluators as ev
from ..params import flatten
from ..stats import Interval


@dataclass(frozen=True)
class RunSpec:
    """One run of a report (sslnb.report.builder.load): its run directory and configuration
    (`group`: the run spec its seeds share), the params file and overrides it came from, the
    params they resolved to (once: the build freezes them into the file its notebook reads), its
    method and seed."""
    run_dir: str
    group: str
    params: str = ""
    set: dict = field(default_factory=dict)
    resolved: dict = field(default_factory=dict, repr=False)
    name: str = ""
    method: str = ""
    seed: int | None = None


@dataclass(frozen=True)
class ReportSpec:
    """A report params file, validated and resolved: what it is called and says, its runs, and
    the primaries and readings it registers (sslnb.report.primaries)."""
    title: str
    description: str
    runs: list[RunSpec]
    path: str
    seeds: list
    primaries: list = field(default_factory=list)
    readings: dict = field(default_factory=dict)


@dataclass
class RunPoint:
    """One kept snapshot of a run (eval.json's curve): where it was taken and its test top-1."""
    step: int
    kind: str  # the evaluator whose predictions it is: random_init, step_N or pretrained
    epoch: float
    images_seen: float
    train_flops: float
    train_seconds: float | None
    probe_test_top1: float
    knn_test_top1: float


@dataclass
class Run:
    """One pretraining run as its logs (params, summary, model, env, data, eval) describe it."""
    run: str
    run_dir: str
    group: str
    params_file: str
    seed: int
    model: str
    method: str
    source: str
    encoder: str
    architecture: str
    encoder_params_m: float
    steps: int
    epoch_time_s: float
    pretrain_time_s: float
    isolated_epoch_time_s: float | None
    epochs_alone: int
    epochs_contended: int
    isolated_images_per_s: float | None
    train_top1: float
    val_top1: float | None
    test_top1: float
    test_top5: float
    knn_top1: float
    random_test_top1: float
    random_knn_top1: float
    random_val_top1: float | None
    finetune_top1: float | None
    random_finetune_top1: float | None
    epochs: float
    images_per_s: float
    peak_mem_mb: float
    device: str
    git_commit: str | None
    pretrain_images: int
    train_flops_per_image: float
    train_flops: float
    effective_rank: float | None = None  # of its val features (runs evaluated before: None)
    random_effective_rank: float | None = None
    finetune: dict[str, float] = field(default_factory=dict)  # depth -> test top-1
    random_finetune: dict[str, float] = field(default_factory=dict)
    finetune_val: dict[str, float] = field(default_factory=dict)  # depth -> val top-1
    curve: list[RunPoint] = field(default_factory=list, repr=False)
    params: dict = field(default_factory=dict, repr=False)  # the run's resolved params.yaml

    # the fields that are measurements, averaged over a configuration's seeds
    @classmethod
    def numbers(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)
                if f.type in ("int", "float", "float | None") and f.name != "seed"]

    def row(self) -> dict:
        """The run as results.json lists it (no curve, no params)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in ("curve", "params")}


@dataclass
class Point:
    """A configuration's point across pretraining: its x values (means over seeds) and the
    probe and kNN test top-1 intervals (over images and seeds)."""
    step: int
    kind: str
    probe: Interval
    knn: Interval
    epoch: float | None = None
    images_seen: float | None = None
    train_flops: float | None = None
    train_seconds: float | None = None

    def to_json(self) -> dict:
        iv = interval_json
        xs = {k: getattr(self, k) for k in ("epoch", "images_seen", "train_flops",
                                             "train_seconds") if getattr(self, k) is not None}
        return {"step": self.step, "kind": self.kind, **xs, "probe": iv(self.probe),
                "knn": iv(self.knn)}


@dataclass
class Margin:
    """A pretrained encoder's probe on val minus its random-init twin's, with its 95% interval
    (over seeds; with one seed over the val images; None where the val size is unknown)."""
    value: float
    n: int
    low: float | None
    high: float | None
    sd: float | None = None  # of the per-seed margins (None with one seed)


@dataclass
class Learning:
    """The "did it learn?" check of one configuration (its seeds together)."""
    learned: bool
    margin: Margin | None
    final_loss: float | None
    constant_loss: float | None
    why: list[str]
    effective_rank: float | None = None  # of its val features, mean over seeds
    twin_effective_rank: float | None = None  # of its random-init twin's


@dataclass
class Configuration:
    """The seeds of one configuration together: mean, sd and n of every number of its runs, the
    interval of every accuracy, and the per-image test correctness differences are built from."""
    group: str
    model: str  # as tables name it: `name`, and the pretraining set or steps that tell it apart
    method: str
    source: str
    encoder: str
    architecture: str
    device: str
    params_file: str
    n: int
    seeds: list[int]
    test_set: str
    mean: dict[str, float]
    sd: dict[str, float]
    ci: dict[str, Interval]
    labels: np.ndarray = field(repr=False)
    correct: dict[str, np.ndarray] = field(repr=False)  # evaluator -> (seeds, images) bool
    runs: list[Run] = field(repr=False)
    params: dict = field(repr=False)  # the first seed's params
    curve: list[Point] = field(default_factory=list, repr=False)
    learning: Learning | None = None
    sweep_smaller: bool = False  # a smaller pretraining set of a data-scale sweep
    name: str = ""  # method and architecture, e.g. "MAE ViT-Ti/4"

    def __post_init__(self):
        self.name = self.name or self.model

    @property
    def steps(self) -> float:
        """Optimizer steps (the same for every seed)."""
        return self.mean.get("steps", 0)

    @property
    def batch(self) -> int:
        t = self.params["train"]
        return t["batch_size"] * t.get("accum_steps", 1)

    @property
    def pretrain_images(self) -> float:
        return self.mean["pretrain_images"]


def interval_json(c: Interval) -> dict:
    return {"value": c.value, "low": c.low, "high": c.high, "level": c.level}


# record field -> the evaluator whose saved test predictions give its interval
EVALUATORS = {"test_top1": ev.probe().key, "knn_top1": ev.knn().key,
              "finetune_top1": ev.finetune("all").key,
              "random_test_top1": ev.probe("random_init").key,
              "random_knn_top1": ev.knn("random_init").key,
              "random_finetune_top1": ev.finetune("all", "random_init").key}


# Which configurations are which --------------------------------------------------------------
PRETRAINING_SET = ("data.pretrain_fraction", "data.pretrain_classes")
NOT_PRETRAINING = ("name", "seed", "eval.finetune_")  # evaluation and naming, not the features
# A smaller set may run more epochs (with its warm-up scaled) so that every set of a sweep gets
# the same optimizer steps; the schedule is what makes that possible, not a different recipe.
SCHEDULE = ("train.epochs", "train.steps", "train.warmup_epochs")


def _sweep_key(p: dict) -> str:
    drop = NOT_PRETRAINING + PRETRAINING_SET + SCHEDULE
    return json.dumps({k: v for k, v in flatten(p).items() if not k.startswith(drop)},
                      sort_keys=True, default=str)


def sweeps(groups: list[Configuration]) -> list[list[Configuration]]:
    """Configurations that pretrain the same way on two or more different pretraining sets (the
    set, and with it the epochs, aside), smallest set first, then fewest steps."""
    families: dict[str, list[Configuration]] = {}
    for g in groups:
        families.setdefault(_sweep_key(g.params), []).append(g)
    return [sorted(f, key=lambda g: (g.pretrain_images, g.steps)) for f in families.values()
            if len({g.pretrain_images for g in f}) > 1]


def smaller_sets(groups: list[Configuration]) -> list[Configuration]:
    """The configurations of a sweep on fewer images than its largest set."""
    return [m for s in sweeps(groups) for m in s if m.pretrain_images < s[-1].pretrain_images]


def main_groups(groups: list[Configuration]) -> list[Configuration]:
    """Every configuration but the smaller pretraining sets of a sweep (those only answer the
    data claim)."""
    smaller = {id(m) for m in smaller_sets(groups)}
    return [g for g in groups if id(g) not in smaller]


def full_set(sweep: list[Configuration]) -> Configuration:
    """A sweep's reference: its largest pretraining set (the longest run of it)."""
    most = sweep[-1].pretrain_images
    return max((g for g in sweep if g.pretrain_images == most), key=lambda g: g.steps)


