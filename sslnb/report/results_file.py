"""results.json and results_per_seed.csv: what a report found, written once from the records
(per configuration: mean, sd, n, intervals, its curve and its did-it-learn check; every stated
difference; the claims when the report registers primaries; every run). The abstract, the scale
box and the tests read this file, not the logs."""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from . import claims, wording
from .differences import INTERVALS_NOTE, Difference
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
