"""The committed reports say what their committed logs say: every per-run accuracy, interval,
difference and verdict is recomputed from logs/*/predictions.json and eval.json and compared with
results.json and the page; every committed report has its params file; a configuration's cost
agrees across reports; one number is printed one way."""
import json
import re
from pathlib import Path

import pytest

from sslnb.report import claims, differences, load, summary
from sslnb.report.records import EVALUATORS, NOT_PRETRAINING
from sslnb.params import flatten

from conftest import ROOT


def committed_reports() -> list[tuple[str, Path]]:
    found = [("demo", ROOT / "report")] if (ROOT / "report" / "results.json").is_file() else []
    found += [(d.name, d) for d in sorted((ROOT / "report").iterdir())
              if d.is_dir() and (d / "results.json").is_file()]
    return found


def text_of(folder: Path) -> str:
    page = (folder / "report.html").read_text(encoding="utf-8")
    page = re.sub(r"<(style|script)[^>]*>.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    import html
    return re.sub(r"\s+", " ", html.unescape(page))


def close(a: dict, b, keys=("value", "low", "high")) -> bool:
    return all(abs(a[k] - getattr(b, k)) < 1e-9 for k in keys)


@pytest.fixture(scope="module")
def recomputed(request):
    import os
    cwd = os.getcwd()
    os.chdir(ROOT)  # run directories are relative to the repository, as the reports name them
    try:
        out = {}
        for name, folder in committed_reports():
            spec = load(ROOT / "params" / "report" / f"{name}.yaml")
            rows, groups = summary.load(spec.runs)
            out[name] = (rows, groups, differences.differences(groups),
                         claims.evaluate_claims(groups, spec.primaries, spec.readings)
                         if spec.primaries else [])
        return out
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("name,folder", committed_reports())
def test_committed_report_has_its_params_file(name, folder):
    assert (ROOT / "params" / "report" / f"{name}.yaml").is_file(), (
        f"{folder} is committed but params/report/{name}.yaml is gone: remove the report or "
        f"restore its params")


@pytest.mark.parametrize("name,folder", committed_reports())
def test_committed_report_agrees_with_its_logs(name, folder, recomputed):
    rows, groups, diffs, verdicts = recomputed[name]
    results = json.loads((folder / "results.json").read_text())
    assert [c["group"] for c in results["configurations"]] == [g.group for g in groups]
    for c, g in zip(results["configurations"], groups):
        assert c["seeds"] == g.seeds
        assert set(c["ci"]) == set(g.ci), c["group"]
        for key, iv in g.ci.items():
            assert close(c["ci"][key], iv), (name, c["group"], key, c["ci"][key], iv)
            assert c["mean"][key] == pytest.approx(iv.value, abs=1e-9)  # one number, one value
    for r_saved, r in zip(results["runs"], rows):
        assert r_saved["run"] == r.run
        for key in EVALUATORS:
            if getattr(r, key) is not None:
                assert r_saved[key] == pytest.approx(getattr(r, key), abs=1e-9), (r.run, key)
    assert len(results["differences"]) == len(diffs)
    for d_saved, d in zip(results["differences"], diffs):
        assert close(d_saved["interval"], d.interval) and d_saved["sentence"] == d.sentence
    # one voice: only a report that registers primaries gives verdicts, and it gives all four
    assert len(results["claims"]) == len(verdicts) in (0, len(claims.CLAIMS)), name
    for c_saved, c in zip(results["claims"], verdicts):
        assert (c_saved["verdict"], c_saved["lines"]) == (c.verdict, c.lines)
    text = text_of(folder)
    assert ("Verdict:" in text) == bool(verdicts), name
    for g in groups:
        ci = g.ci["test_top1"]
        assert f"{ci.low:.1f} to {ci.high:.1f}" in text, (name, g.group)
    for d in diffs:
        assert d.sentence in text, (name, d.sentence)


def _configuration(p: dict) -> str:
    """What makes two runs the same configuration for their cost: everything pretraining reads
    (name, seed and evaluation aside)."""
    return json.dumps({k: v for k, v in flatten(p).items()
                       if not k.startswith(NOT_PRETRAINING + ("eval.", "train.snapshots"))},
                      sort_keys=True, default=str)


def test_a_configurations_time_per_epoch_agrees_across_committed_reports(recomputed):
    """Only isolated clocks are stated, so one configuration's cost cannot differ 4.5x between
    two reports as a contended one once did. Clocks agree on one machine: a build on another
    host (its platform string in env.json) runs at that host's speed, which is why time decides
    no claim and each report names the machine its clocks came from."""
    times: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for name, (rows, *_rest) in recomputed.items():
        for r in rows:
            if r.isolated_epoch_time_s:
                host = json.loads((Path(r.run_dir) / "env.json").read_text())["platform"]
                times.setdefault((_configuration(r.params), host), []).append(
                    (f"{name}/{r.run}", r.isolated_epoch_time_s))
    for seen in times.values():
        values = [t for _, t in seen]
        assert max(values) <= 1.5 * min(values), seen


@pytest.mark.parametrize("name,folder", committed_reports())
def test_every_committed_run_resolves_to_the_params_it_ran_with(name, folder):
    """Moving a setting between homes (sslnb/schema.py, a method's file, a run file) changes no
    committed run: each run's params file and its report's overrides resolve today to the
    params.yaml it saved (keys added since take their defaults, which reproduce the old
    behaviour)."""
    from sslnb.checkpoint import saved_params
    from sslnb.params import effective, resolve
    spec = load(ROOT / "params" / "report" / f"{name}.yaml")
    checked = 0
    for r in spec.runs:
        if not (ROOT / r.run_dir / "params.yaml").is_file():
            continue
        # what the run reads (not other methods' sections or the other encoder family's keys)
        a = effective(resolve(ROOT / r.params, r.set))
        b = effective(saved_params(ROOT / r.run_dir))
        assert a == b, (r.run_dir, {k: (b.get(k), a.get(k)) for k in set(a) | set(b)
                                       if a.get(k) != b.get(k)})
        checked += 1
    assert checked == len(spec.runs), "every run of a committed report has its params.yaml"
