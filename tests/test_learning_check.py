"""The report's "did it learn?" check on constructed runs: the probe against its twin decides,
the loss against the constant-output level says how a failure failed."""
import json
import math

import pytest

from sslnb.params import resolve
from sslnb.report import differences, learning, summary, tables
from sslnb.report.records import Configuration
from conftest import ROOT, run_record


def _group(tmp_path, params_file, margins, loss):
    p = resolve(ROOT / "params" / "demo" / params_file)
    runs = []
    for i, m in enumerate(margins):
        run = tmp_path / f"run{i}"
        (run / "metrics").mkdir(parents=True)
        (run / "metrics" / "steps.jsonl").write_text(
            "".join(json.dumps({"step": s, "loss": loss + (5.0 if s < 5 else 0.0)}) + "\n"
                    for s in range(50)))
        runs.append(run_record(val_top1=30.0 + m, random_val_top1=30.0, run_dir=str(run)))
    return Configuration(group="x", model="X", method=p["method"], source="shapes",
                         encoder=p["model"]["encoder"], architecture="", device="", params_file="",
                         n=len(runs), seeds=list(range(len(runs))), test_set="", mean={}, sd={},
                         ci={}, labels=None, correct={}, runs=runs, params=p)


def test_a_probe_at_its_twin_with_a_loss_at_ln_k_did_not_learn(tmp_path):
    g = _group(tmp_path, "dino_vit_tiny.yaml", [0.5], math.log(64))  # K = 64 prototypes
    c = learning.check(g)
    assert not c.learned and c.constant_loss == pytest.approx(math.log(64))
    assert c.final_loss == pytest.approx(math.log(64))  # the last tenth, not step 0
    assert len(c.why) == 2 and "constant output" in c.why[1]
    g.learning = c
    assert learning.label(g) == "X (did not learn)"
    assert "Did not learn at this budget" in learning.sentence(g)


def test_one_seed_reads_its_margin_against_the_val_images(tmp_path):
    # 2,000 val images at about 30%: a 95% half-width near 2.9 points
    small = learning.check(_group(tmp_path / "a", "simclr_resnet18.yaml", [2.0], 3.0))
    large = learning.check(_group(tmp_path / "b", "simclr_resnet18.yaml", [4.0], 3.0))
    assert small.margin.low < 0 < large.margin.low
    assert not small.learned and large.learned
    assert large.constant_loss == pytest.approx(math.log(2 * 128 - 1))


def test_seeds_give_the_interval_and_a_learned_run_keeps_a_high_loss(tmp_path):
    # a short SimCLR run: its loss near ln(2N - 1), its probe clearly above the twin
    g = _group(tmp_path, "simclr_vit_tiny.yaml", [6.0, 7.0, 6.5], math.log(63) - 0.05)
    c = learning.check(g)
    assert c.learned and c.why == [] and c.margin.n == 3
    assert c.margin.low == pytest.approx(6.5 - 4.302653 * 0.5 / math.sqrt(3), abs=1e-3)
    g = _group(tmp_path / "b", "simclr_vit_tiny.yaml", [-1.0, 2.0, 0.5], 3.0)
    assert not learning.check(g).learned


def test_a_failure_says_how_many_seeds_or_how_large_a_margin_it_would_need(tmp_path):
    # margins 0.2, 4.7, 1.1 (BYOL's three seeds in the families report): sd 2.4
    g = _group(tmp_path, "byol_resnet18.yaml", [0.2, 4.7, 1.1], 1.7)
    g.learning = learning.check(g)
    m = g.learning.margin
    assert not g.learning.learned and m.sd == pytest.approx(2.3812, abs=1e-3)
    half = 4.302653 * m.sd / math.sqrt(3)  # t(0.975, 2 df)
    said = learning.sentence(g)
    assert f"mean margin above {half:.1f} points" in said
    k = learning.seeds_needed(m.value, m.sd)
    t = {2: 12.706205, 3: 4.302653, 4: 3.182446, 5: 2.776445, 6: 2.570582, 7: 2.446912,
         8: 2.364624, 9: 2.306004, 10: 2.262157}  # t(0.975) on n - 1 df
    width = {n: t[n] * m.sd / math.sqrt(n) for n in t}
    assert width[k] < m.value <= width[k - 1] and f"{k} seeds" in said
    assert learning.seeds_needed(-1.0, m.sd) is None


def test_the_committed_families_report_ranks_no_failure():
    """BYOL did not learn there (three seeds): marked in the tables, absent from the per-cost table
    and from every model-against-model sentence of the Results."""
    from sslnb.report import load
    import os
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        spec = load(ROOT / "params" / "report" / "families.yaml")
        _, groups = summary.load(spec.runs)
    finally:
        os.chdir(cwd)
    failed = differences.failed_models(groups)
    assert {m.split()[0] for m in failed} == {"BYOL"}
    assert not {r["Model"] for r in tables.efficiency_rows(groups)} & failed
    said = differences.observations(groups, differences.differences(groups))
    models = {g.model for g in groups}
    ranked = [s for s in said if any(m in s for m in failed)
              and len({m for m in models if m in s}) > 1]
    assert ranked == [] and any("did not learn" in s.lower() for s in said)
    text = (ROOT / "report" / "families" / "report.html").read_text()
    assert all(f"{m} (did not learn)" in text for m in failed)


def test_the_choices_table_names_models_and_values_and_marks_what_ran():
    """Table A3 fits a printed page (a run by its model, a candidate by its values, a criterion
    by a label the caption spells out) and its Ran column says what the runs used."""
    import html
    import os
    import re
    from sslnb.report import load, notebook
    from sslnb.report.paper import Paper
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        spec = load(ROOT / "params" / "report" / "families.yaml")
        _, groups = summary.load(spec.runs)
        text = html.unescape(notebook.choices_html(groups, Paper()))
    finally:
        os.chdir(cwd)
    rows = re.findall(r"<tr>(.*?)</tr>", text, re.S)
    cells = [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r,
                                                                      re.S)] for r in rows]
    header, body = cells[0], [c for c in cells[1:] if c]
    assert header[:4] == ["Model", "Key", "Value", "Criterion"] and header[-1] == "Ran"
    models = {g.model for g in groups}
    assert body and all(r[0] in models for r in body)
    assert not any("=" in r[2] for r in body)  # values only: the Key column names them
    for label in {r[3] for r in body}:
        assert re.search(re.escape(label) + r" [a-z]", text)  # spelled out in the caption
    byol = [r for r in body if r[0].startswith("BYOL")]
    ran = {r[1]: r[2] for r in byol if r[-1] == "yes"}
    assert ran  # the BYOL recipe came from logged choices
    p = next(g for g in groups if g.model.startswith("BYOL")).runs[0].params
    for key, value in ran.items():
        for k, v in zip(key.split(" (with")[0].split(" x "), value.split(", ")):
            section, name = k.split(".")
            assert str(p[section][name]) == v, (k, v)
