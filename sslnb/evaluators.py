"""Which readout of which encoder a set of predictions comes from, as a typed value.

predictions.json names each evaluator by its `key` ('pretrained/probe', 'random_init/knn',
'step_208/probe', 'pretrained/finetune' for every block, 'pretrained/finetune_k2' for the last two,
'pretrained/finetune_k0' for the probe fine-tuning starts from): that is the file's format, made
and read here and nowhere else. A registered primary's fine-tuning metric ('finetune_gain',
'finetune_gain_k1') is likewise parsed here once.
"""
from __future__ import annotations

from dataclasses import dataclass

READOUTS = ("probe", "knn", "finetune")


@dataclass(frozen=True)
class Evaluator:
    kind: str                     # pretrained | random_init | step_N (a kept snapshot)
    readout: str                  # probe | knn | finetune
    depth: int | str | None = None  # fine-tuning: 0 (the probe it starts from), N last, "all"

    @property
    def key(self) -> str:
        """The evaluator's name in predictions.json."""
        if self.readout != "finetune":
            return f"{self.kind}/{self.readout}"
        return f"{self.kind}/finetune" + ("" if self.depth == "all" else f"_k{self.depth}")

    @classmethod
    def parse(cls, key: str) -> Evaluator:
        kind, name = key.split("/", 1)
        if name.startswith("finetune"):
            k = name.removeprefix("finetune").removeprefix("_k")
            return cls(kind, "finetune", int(k) if k else "all")
        return cls(kind, name)


def probe(kind: str = "pretrained") -> Evaluator:
    return Evaluator(kind, "probe")


def knn(kind: str = "pretrained") -> Evaluator:
    return Evaluator(kind, "knn")


def finetune(depth: int | str, kind: str = "pretrained") -> Evaluator:
    """Fine-tuning of the last `depth` blocks (ViT) or stages (ResNet), "all", or 0: the linear
    probe on fine-tuning's own labelled images that every depth starts from."""
    return Evaluator(kind, "finetune", depth)


def finetunings(keys, kind: str = "pretrained") -> list[Evaluator]:
    """The fine-tunings among predictions' keys (its starting probe, depth 0, left out), fewest
    layers first, every block last."""
    found = [Evaluator.parse(k) for k in keys]
    tuned = [e for e in found if e.kind == kind and e.readout == "finetune" and e.depth != 0]
    return sorted(tuned, key=lambda e: (e.depth == "all", 0 if e.depth == "all" else e.depth))


def gain_depth(metric: str) -> int | str:
    """The depth of a fine-tuning gain metric: 'finetune_gain' -> 'all', 'finetune_gain_k1' -> 1."""
    k = metric.removeprefix("finetune_gain").removeprefix("_k")
    return int(k) if k else "all"


def gain_metric(depth: int | str) -> str:
    """The inverse of gain_depth."""
    return "finetune_gain" + ("" if depth == "all" else f"_k{depth}")
