"""results.json and results_per_seed.csv: what a report found, written once from the records
(per configuration: mean, sd, n, intervals, its curve and its did-it-learn check; every stated
difference; the claims when the report registers primaries; every run). The abstract, the scale
box and the tests read this file, not the logs."""
from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import claims, wording
from .differences import INTERVALS_NOTE, Difference
from ..stats import Interval
from .records import Configuration, Run, interval_json


def write(groups: list[Configuration], diffs: list[Difference], rows: list[Run],
          results_dir: Path | str, verdicts: list[claims.ClaimResult] = ()) -> Path:
    """Only a report that registers primaries decides claims (one voice across reports): the
    others write `claims: []`."""
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    largest = max(groups, key=lambda g: g.pretrain_images)
    doc = {"note": INTERVALS_NOTE, "split": "test",
           "data": {"description": wording.data_description(largest.params,
                                                          largest.pretrain_images),
                    "test_images": len(groups[0].labels),
                    "classes": len(np.unique(groups[0].labels)),
                    "device": " and ".join(sorted({g.device for g in groups}))},
           "configurations": [{
               "group": g.group, "model": g.model, "architecture": g.architecture,
               "sweep_smaller": g.sweep_smaller, "learning": dataclasses.asdict(g.learning),
               "n_seeds": g.n, "seeds": g.seeds, "mean": g.mean, "sd": g.sd,
               "ci": {k: interval_json(c) for k, c in g.ci.items()},
               "curve": [pt.to_json() for pt in g.curve]} for g in groups],
           "differences": [d.to_json() for d in diffs],
           "claims": [r.to_json() for r in verdicts if any(v.primary for v in verdicts)],
           "runs": [r.row() for r in rows]}
    (results_dir / "results.json").write_text(json.dumps(doc, indent=2))
    table = [{k: v for k, v in r.row().items() if not isinstance(v, (list, dict))} for r in rows]
    with open(results_dir / "results_per_seed.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    return results_dir / "results.json"


# Reading it back: the abstract and the scale box read the file, as typed records -------------
@dataclass(frozen=True)
class DataSummary:
    description: str
    test_images: int
    classes: int
    device: str


@dataclass(frozen=True)
class ConfigurationSummary:
    """One configuration as results.json keeps it."""
    group: str
    model: str
    architecture: str
    sweep_smaller: bool
    learned: bool
    why_not: list[str]        # what failed when it did not learn
    n_seeds: int
    mean: dict[str, float]
    ci: dict[str, Interval]


@dataclass(frozen=True)
class DifferenceSummary:
    kind: str
    a: str
    b: str
    what: str
    interval: Interval


@dataclass(frozen=True)
class ClaimSummary:
    """A claim's verdict where the report registers its primary (a - b, the deciding interval
    at its adjusted level, the minimum detectable effect)."""
    number: int               # the study's claim number, 1 to 4
    short: str
    verdict: str
    a: str | None
    b: str | None
    deciding: Interval | None
    mde: float | None


@dataclass(frozen=True)
class Results:
    data: DataSummary
    configurations: list[ConfigurationSummary]
    differences: list[DifferenceSummary]
    claims: list[ClaimSummary]

    @property
    def main(self) -> list[ConfigurationSummary]:
        """The configurations beside a data-scale sweep's smaller sets."""
        return [c for c in self.configurations if not c.sweep_smaller]


def _interval(d: dict | None) -> Interval | None:
    return None if d is None else Interval(d["value"], d["low"], d["high"], d.get("level", 0.95))


def read(path: Path | str) -> Results:
    """results.json as typed records (the file is the record of what the report found: the
    abstract and the scale box are computed from it, and a test recomputes them from it)."""
    doc = json.loads(Path(path).read_text())
    configs = [ConfigurationSummary(
        c["group"], c["model"], c.get("architecture") or "", bool(c.get("sweep_smaller")),
        c.get("learning", {}).get("learned", True), list(c.get("learning", {}).get("why", [])),
        c["n_seeds"], c["mean"], {k: _interval(v) for k, v in c["ci"].items()})
        for c in doc["configurations"]]
    diffs = [DifferenceSummary(d["kind"], d["a"], d["b"], d["what"], _interval(d["interval"]))
             for d in doc["differences"]]
    found = [ClaimSummary(i, c["short"], c["verdict"], c["primary"]["a"], c["primary"]["b"],
                          _interval(c.get("deciding")), c.get("mde"))
             for i, c in enumerate(doc.get("claims", []), 1) if c.get("primary")]
    d = doc["data"]
    return Results(DataSummary(d["description"], d["test_images"], d["classes"], d["device"]),
                   configs, diffs, found)
