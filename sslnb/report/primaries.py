"""A report's registered primary comparisons (its params' `primaries`), checked before any run is
built: one per claim, each naming two configurations of the report, a metric, a budget, the
direction the claim predicts and an equivalence margin. sslnb.report.claims decides each claim
on its primary alone; sslnb.verdicts holds the verdict words."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import ParamsError
from ..verdicts import DELTA, Primary, family

CLAIM_KEYS = ("probe", "finetune", "data", "efficiency")
BUDGETS = {"steps": "equal optimizer steps and batch", "flops": "equal training FLOPs (within 5%)"}
METRIC = re.compile(r"^(probe|knn|finetune_gain(_k[1-9][0-9]*)?)$")
FIELDS = {"a", "b", "metric", "budget", "direction", "delta", "why"}


def registered(raw: dict, groups: set, path: Path | str) -> list[Primary]:
    """The Primary of each claim `raw` registers, in the claims' order; a clear error for a claim,
    field, configuration, metric or budget it does not know."""
    out = []
    for claim, spec in raw.items():
        where = f"{path}: primaries.{claim}"
        if claim not in CLAIM_KEYS:
            raise ParamsError(f"{where}: unknown claim; the claims are {', '.join(CLAIM_KEYS)}.")
        if not isinstance(spec, dict) or {"a", "b", "metric", "budget"} - set(spec) or \
                set(spec) - FIELDS:
            raise ParamsError(f"{where} must be a mapping with a, b (configurations of this "
                              f"report's runs), metric, budget and optional direction (1 or -1), "
                              f"delta (points) and why (the design's reason); got {spec!r}.")
        for side in ("a", "b"):
            if spec[side] not in groups:
                raise ParamsError(f"{where}.{side} names '{spec[side]}', which is not a "
                                  f"configuration of this report; its configurations: "
                                  f"{', '.join(sorted(groups))}.")
        if not isinstance(spec["metric"], str) or not METRIC.match(spec["metric"]):
            raise ParamsError(f"{where}.metric is {spec['metric']!r}; accepted: probe, knn, "
                              f"finetune_gain (all blocks) or finetune_gain_kN (the last N).")
        if spec["budget"] not in BUDGETS:
            raise ParamsError(f"{where}.budget is {spec['budget']!r}; accepted: "
                              + "; ".join(f"{k} ({v})" for k, v in BUDGETS.items()) + ".")
        direction, delta = spec.get("direction", 1), spec.get("delta", DELTA)
        if direction not in (1, -1) or isinstance(direction, bool):
            raise ParamsError(f"{where}.direction is {direction!r}; accepted: 1 (the claim "
                              f"predicts a > b) or -1 (a < b).")
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or delta <= 0:
            raise ParamsError(f"{where}.delta is {delta!r}; give the equivalence margin in "
                              f"points, a positive number such as 2.0.")
        out.append(Primary(claim, spec["a"], spec["b"], spec["metric"], spec["budget"],
                           int(direction), float(delta), str(spec.get("why", ""))))
    try:
        return sorted(family(out), key=lambda p: CLAIM_KEYS.index(p.claim))
    except ValueError as e:
        raise ParamsError(f"{path}: primaries: {e}.") from None


def named_readings(raw, groups: set, path: Path | str) -> dict[str, list[tuple[str, str]]]:
    """A report's `readings`: per claim, the pairs [a, b] of its configurations whose exploratory
    readings stand beside the claim (a - b), deciding nothing. A report names its pairs; no
    method joins one by what its objective is called."""
    if raw is None:
        return {}
    where = f"{path}: readings"
    if not isinstance(raw, dict):
        raise ParamsError(f"{where} must map claims ({', '.join(CLAIM_KEYS)}) to lists of pairs "
                          f"[a, b] of configurations; got {raw!r}.")
    out = {}
    for claim, pairs in raw.items():
        if claim not in CLAIM_KEYS:
            raise ParamsError(f"{where}.{claim}: unknown claim; the claims are "
                              f"{', '.join(CLAIM_KEYS)}.")
        if not isinstance(pairs, list) or not all(
                isinstance(p, list) and len(p) == 2 for p in pairs):
            raise ParamsError(f"{where}.{claim} must be a list of pairs [a, b], e.g. "
                              f"[[demo_simclr, demo_mae]]; got {pairs!r}.")
        for pair in pairs:
            for name in pair:
                if name not in groups:
                    raise ParamsError(f"{where}.{claim} names '{name}', which is not a "
                                      f"configuration of this report; its configurations: "
                                      f"{', '.join(sorted(groups))}.")
        out[claim] = [tuple(p) for p in pairs]
    return out
