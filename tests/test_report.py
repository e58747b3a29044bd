"""The report, built and read as a reader would. params/report/tiny.yaml (a few steps, a few
hundred images, two seeds, every kind of run) is written in this process with the very calls its
notebooks make (01-03, no kernel start per run), then rendered for real: papermill runs the
comparison notebook in a real kernel, nbconvert assembles the HTML, headless Chromium prints the
PDF and opens the page. One small report also goes through the whole build (every notebook in a
kernel). Temporary folders only: the committed report is never touched."""
import json
import os
import shutil
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_cli
from test_committed_reports import committed_reports
from sslnb.report.builder import kernel_name


class Tables(HTMLParser):
    """Every <table> of a page as a list of rows of cell texts."""

    def __init__(self):
        super().__init__()
        self.tables, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def into(tmp: Path) -> list[str]:
    """The CLI's override that writes a report's runs under tmp (as `make report DATA=...` sets
    data.root): passed as an argument, never through the environment."""
    return ["--set", f"out_dir={tmp / 'logs'}"]


def write_runs(report: str, tmp: Path, draw: bool = True) -> list[Path]:
    """Every run of a report, pretrained and evaluated by the pipeline the notebooks' stages are
    (sslnb.pipeline.run) and (with `draw`) drawn as notebooks 01-03 do it, in this process;
    returns the run directories. Reuses finished runs, as a rebuild does."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sslnb import pipeline
    from sslnb.features import KINDS, features
    from sslnb.report import builder, plots
    saved = os.environ.get("SSLNB_PROGRESS")
    os.environ["SSLNB_PROGRESS"] = "0"
    try:
        runs = []
        spec = builder.load(ROOT / "params" / "report" / f"{report}.yaml",
                            {"out_dir": str(tmp / "logs")})
        for run in spec.runs:
            graphs = tmp / "graphs"
            run_dir = pipeline.run(run.resolved).run_dir  # 01 and 03
            feats = {(k, s): features(run_dir, k, s) for k in KINDS  # 02 (cached by 03)
                     for s in ("train", "val", "test")}
            if draw:
                plots.training_curves(run_dir, graphs)
                plots.what_the_method_sees(run_dir, graphs)
                plots.feature_pca(feats, feats[("pretrained", "val")]["classes"], run_dir.name,
                                  graphs)
                plots.probe_curves([run_dir], graphs, name=f"linear_probe_curves_{run_dir.name}")
                plt.close("all")
            runs.append(run_dir)
        return runs
    finally:
        os.environ.pop("SSLNB_PROGRESS", None) if saved is None else \
            os.environ.__setitem__("SSLNB_PROGRESS", saved)


def render(report: str, tmp: Path) -> subprocess.CompletedProcess:
    """`make render` for real: 04_compare in a kernel, nbconvert, Chromium's PDF."""
    return subprocess.run([sys.executable, "-m", "sslnb", "report", "--params",
                           f"params/report/{report}.yaml", "--render", "--report-dir",
                           str(tmp / "report"), "--graphs-dir", str(tmp / "graphs"), *into(tmp)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    write_runs("tiny", tmp)
    r = render("tiny", tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    return tmp


def _mean_sd(cell: str) -> tuple[float, float]:
    mean, sd = cell.split(" ± ")
    return float(mean), float(sd)


def test_html_table_equals_the_metrics_files(tiny_report):
    """Two seeds per configuration: each cell is mean ± sd of the runs' eval.json, each interval
    a recomputation from the saved test predictions; the sentences come from the intervals."""
    from sslnb import stats
    html = (tiny_report / "report" / "report.html").read_text()
    parser = Tables()
    parser.feed(html)
    tables = [t for t in parser.tables if t and "Model" in t[0]]
    study = next(t for t in tables if "Test top-1 (%)" in t[0] and "95% CI" in t[0])
    more = next(t for t in tables if "kNN (%)" in t[0])
    # (a tiny run may be marked "did not learn": the name is the same)
    assert [r[0].removesuffix(" (did not learn)") for r in study[1:]] == [
        "MAE ViT-Ti/4", "SimCLR ResNet-18", "SimCLR ViT-Ti/4",
        "MAE ViT-Ti/4, 126 pretraining images"]
    logs = tiny_report / "logs"
    for row, more_row, name in zip(study[1:], more[1:], ("mae_vit_tiny", "simclr_resnet18")):
        cells, more_cells = dict(zip(study[0], row)), dict(zip(more[0], more_row))
        runs = [logs / name, logs / f"{name}_seed1"]
        evals = [json.loads((r / "eval.json").read_text()) for r in runs]
        preds = [json.loads((r / "predictions.json").read_text()) for r in runs]
        for column, table, pick in [
                ("Test top-1 (%)", cells, lambda e: e["pretrained"]["probe_test_top1"]),
                ("Probe train top-1 (%)", cells, lambda e: e["pretrained"]["probe_train_top1"]),
                ("kNN (%)", more_cells, lambda e: e["pretrained"]["knn_test_top1"]),
                ("Random init, probe (%)", more_cells, lambda e: e["random_init"]["probe_test_top1"]),
                ("Fine-tune (%)", more_cells, lambda e: e["pretrained"]["finetune_test_top1"])]:
            values = [pick(e) for e in evals]
            mean, sd = _mean_sd(table[column])
            assert mean == pytest.approx(np.mean(values), abs=0.051), column
            assert sd == pytest.approx(np.std(values, ddof=1), abs=0.051), column
        assert cells["Seeds"] == "2"
        correct = np.stack([np.asarray(q["predictions"]["pretrained/probe"]) == q["labels"]
                            for q in preds])
        ci = stats.accuracy_interval(correct)
        assert cells["95% CI"] == f"{ci.low:.1f} to {ci.high:.1f}"
    results = json.loads((tiny_report / "report" / "results.json").read_text())
    assert [c["n_seeds"] for c in results["configurations"]] == [2, 2, 2, 2]
    # Every claim has its registered primary (the tiny report has every kind of run), each
    # verdict in the verdicts' words and in the HTML, with its sentence and readings.
    from sslnb.report import claims
    from sslnb.verdicts import WORDS
    text = html_text(html)
    assert [c["claim"] for c in results["claims"]] == list(claims.CLAIMS)
    for c in results["claims"]:
        assert c["verdict"] in WORDS and c["primary"], c
        assert f"Verdict: {c['verdict']}" in text and c["quote"] in text
        assert c["sentence"] in text and all(line in text for line in c["lines"])
    # the efficiency primary has no run trained to MAE's FLOPs in the tiny report
    assert results["claims"][3]["verdict"] == "not tested"
    assert "training FLOPs differ" in results["claims"][3]["sentence"]
    for d in results["differences"]:
        iv = stats.Interval(d["interval"]["value"], d["interval"]["low"], d["interval"]["high"])
        assert stats.compare(d["a"], d["b"], iv, d["what"]) == d["sentence"]
        assert html_text(html).count(d["sentence"]) == 1
    assert (tiny_report / "report" / "results_per_seed.csv").read_text().count("\n") == 9
    assert "cdnjs" not in html and 'src="http' not in html
    # Every figure is a file named for what it shows, and the executed notebooks are kept.
    graphs = {p.name for p in (tiny_report / "graphs").glob("*.png")}
    assert {"linear_probe_curves.png", "accuracy_across_pretraining.png",
            "mae_reconstructions_mae_vit_tiny.png", "simclr_views_simclr_resnet18.png",
            "partial_finetuning.png", "data_scale.png"} <= graphs


@pytest.mark.slow
def test_a_whole_build_runs_every_notebook_in_a_kernel(tmp_path):
    """`make report` end to end on the smallest report: each run's notebooks 01-03 and the
    comparison through papermill in real kernels, nbconvert's HTML, Chromium's PDF; the executed
    notebooks kept without a third copy of every figure (graphs/ and report.html hold them)."""
    spec = tmp_path / "one.yaml"
    spec.write_text("title: One run\nset: {data.num_train: 128, data.num_val: 32, data.num_test: "
                    "32, train.epochs: 1, train.batch_size: 32, model.depth: 1, "
                    "mae.decoder_depth: 1, eval.probe_epochs: 2, eval.probe_warmup_epochs: 1}\n"
                    "runs:\n  - params: params/demo/mae_vit_tiny.yaml\n")
    r = subprocess.run([sys.executable, "-m", "sslnb", "report", "--params", str(spec),
                        "--report-dir", str(tmp_path / "report"), "--graphs-dir",
                        str(tmp_path / "graphs"), *into(tmp_path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    executed = sorted(p.name for p in (tmp_path / "report" / "executed").glob("*.ipynb"))
    assert executed == ["01_pretrain_mae_vit_tiny.ipynb", "02_extract_features_mae_vit_tiny.ipynb",
                        "03_linear_probe_mae_vit_tiny.ipynb", "04_compare.ipynb"]
    assert not [n for n in executed if '"image/png"' in (tmp_path / "report" / "executed" / n)
                .read_text() or "data:image/" in (tmp_path / "report" / "executed" / n).read_text()]
    graphs = {p.name for p in (tmp_path / "graphs").glob("*.png")}
    assert {"mae_reconstructions_mae_vit_tiny.png", "linear_probe_curves.png"} <= graphs
    assert "MAE ViT-Ti/4" in (tmp_path / "report" / "report.html").read_text()
    if shutil.which("chromium"):
        assert (tmp_path / "report" / "report.pdf").stat().st_size > 10_000


def html_text(page: str) -> str:
    """What a reader sees of the page: tags, stylesheets and scripts removed."""
    import html as html_module
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return html_module.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page)))


def test_report_opens_offline_in_chromium(tiny_report):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    from playwright.sync_api import sync_playwright
    requests = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.on("request", lambda req: requests.append(req.url))
        page.goto((tiny_report / "report" / "report.html").as_uri(), wait_until="load")
        headers = page.eval_on_selector_all("table th", "els => els.map(e => e.textContent)")
        images = page.eval_on_selector_all(
            "img", "els => els.map(e => [e.complete && e.naturalWidth > 0, e.naturalWidth])")
        browser.close()
    assert "Test top-1 (%)" in headers and "Model" in headers
    assert len(images) >= 8 and all(ok for ok, _ in images), images
    outside = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert outside == [], outside


def test_failing_notebook_stops_the_build_and_keeps_the_previous_report(tmp_path):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.html").write_text("previous report")
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"runs:\n  - params: params/demo/mae_vit_tiny.yaml\n    set:\n"
                   f"      data.source: imagefolder\n      data.root: {tmp_path / 'missing'}\n")
    r = subprocess.run([sys.executable, "-m", "sslnb", "report", "--params", str(bad),
                        "--report-dir", str(report_dir), "--graphs-dir", str(tmp_path / "g"),
                        *into(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    assert "01_pretrain.ipynb" in r.stderr and "cell" in r.stderr and "DataError" in r.stderr
    assert (report_dir / "report.html").read_text() == "previous report"


def test_report_params_naming_a_missing_run_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - params: params/demo/no_such_run.yaml\n")
    r = run_cli("report", "--params", bad, "--report-dir", tmp_path / "report")
    assert r.returncode != 0 and "no_such_run.yaml" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_each_notebook_runs_with_its_own_defaults(tmp_path):
    """papermill as a notebook opened on Kaggle runs it: the first cell's defaults, with only
    the overrides that make it tiny and the run it reads passed as parameters."""
    import papermill as pm
    tiny = {"out_dir": str(tmp_path / "logs"), "data.num_train": 128, "data.num_val": 32,
            "train.epochs": 1, "train.batch_size": 32, "model.depth": 1, "mae.decoder_depth": 1,
            "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 1}
    run = tmp_path / "logs" / "mae_vit_tiny"
    for nb, parameters in (("01_pretrain", {"overrides": tiny}),
                           ("02_extract_features", {"run_dir": str(run)}),
                           ("03_linear_probe", {"run_dir": str(run)})):
        pm.execute_notebook(str(ROOT / "notebooks" / f"{nb}.ipynb"), str(tmp_path / f"{nb}.ipynb"),
                            parameters=parameters, cwd=str(ROOT / "notebooks"),
                            kernel_name=kernel_name(), progress_bar=False)
    report = tmp_path / "one_run.yaml"  # 04 compares the runs a report file names
    report.write_text("runs:\n  - params: params/demo/mae_vit_tiny.yaml\n")
    pm.execute_notebook(str(ROOT / "notebooks" / "04_compare.ipynb"), str(tmp_path / "04.ipynb"),
                        parameters={"report_params": str(report), "overrides": tiny,
                                    "graphs_dir": str(tmp_path)},
                        cwd=str(ROOT / "notebooks"), kernel_name=kernel_name(), progress_bar=False)
    assert (run / "eval.json").is_file()
    # Without graphs_dir, figures go next to the run, never into the repository's graphs/.
    assert (run / "graphs" / "mae_reconstructions_mae_vit_tiny.png").is_file()


def test_rebuild_reuses_finished_runs(tiny_report):
    """A second pass with nothing changed (what every notebook of a rebuild calls) reuses
    pretraining, features and probe results: no checkpoint, cache or eval.json is rewritten."""
    logs = tiny_report / "logs"
    files = sorted([*logs.glob("*/checkpoints/last.pt"), *logs.glob("*/eval.json"),
                    *logs.glob("*/features/*")])
    before = [p.stat().st_mtime_ns for p in files]
    runs = write_runs("tiny", tiny_report, draw=False)  # drawing reads, it writes no run file
    assert len(runs) == 8 and len([f for f in files if f.name == "last.pt"]) == 8
    assert [p.stat().st_mtime_ns for p in files] == before


def test_render_rebuilds_the_report_from_logs_alone(tiny_report, tmp_path):
    """`make render` on a fresh clone: the logs as committed (no checkpoint, snapshot or feature
    cache), the figures of the last build; the comparison re-rendered, the same numbers."""
    logs = tmp_path / "logs"
    shutil.copytree(tiny_report / "logs", logs,
                    ignore=shutil.ignore_patterns("checkpoints", "snapshots", "features"))
    shutil.copytree(tiny_report / "graphs", tmp_path / "graphs")
    shutil.copytree(tiny_report / "report", tmp_path / "report")
    r = subprocess.run([sys.executable, "-m", "sslnb", "report", "--params",
                        "params/report/tiny.yaml", "--render", "--report-dir",
                        str(tmp_path / "report"), "--graphs-dir", str(tmp_path / "graphs"),
                        *into(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "01_pretrain" not in r.stdout and "04_compare" in r.stdout  # nothing but the comparison
    assert not list(logs.glob("*/checkpoints"))
    built = json.loads((tiny_report / "report" / "results.json").read_text())
    rendered = json.loads((tmp_path / "report" / "results.json").read_text())
    assert rendered["configurations"] == built["configurations"]
    assert rendered["claims"] == built["claims"]
    kept = lambda d: sorted(p.name for p in (d / "report" / "executed").glob("*.ipynb"))  # noqa
    assert kept(tmp_path) == kept(tiny_report)  # the per-run notebooks of the last build stay


def test_force_replaces_a_finished_run(tiny_report, monkeypatch):
    """FORCE=1 reaches the notebooks as force=True: the pretraining notebook of a finished run
    retrains it in place instead of reusing it or refusing its directory."""
    from sslnb.report import builder
    monkeypatch.setenv("SSLNB_PROGRESS", "0")
    spec = builder.load("params/report/tiny.yaml", {"out_dir": str(tiny_report / "logs")})
    run = next(r for r in spec.runs if r.method == "mae")
    ckpt = Path(run.run_dir) / "checkpoints" / "last.pt"
    before = ckpt.stat().st_mtime_ns
    builder._execute("01_pretrain.ipynb", tiny_report / "forced.ipynb",
                     {"params_file": run.params, "overrides": run.set, "force": True,
                      "graphs_dir": str(tiny_report / "graphs")}, kernel_name())
    assert ckpt.stat().st_mtime_ns > before


# ---------------------------------------------------------------- the report as a paper
SECTIONS = ["Abstract", "Contents", "Results", "Claims", "Comparisons", "Figures", "Methods",
            "Limitations", "Appendix"]
A4_TEXT_WIDTH_PX = round((210 - 2 * 14) / 25.4 * 96)  # report.css: A4, 14 mm side margins


def browser_page(pw, **kw):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    return browser, browser.new_page(**kw)


def pdf_pages(path: Path) -> list[tuple[tuple[float, float], str]]:
    import pypdfium2 as pdfium
    pdf = pdfium.PdfDocument(str(path))
    pages = [(tuple(p.get_size()), p.get_textpage().get_text_range()) for p in pdf]
    pdf.close()
    return pages


def test_pdf_has_the_sections_in_order_and_page_numbers(tiny_report):
    pdf = tiny_report / "report" / "report.pdf"
    if not pdf.is_file():
        pytest.skip("no PDF: Debian's chromium is not installed")
    pages = pdf_pages(pdf)
    for i, (size, text) in enumerate(pages, 1):
        assert size[0] == pytest.approx(595.3, abs=2) and size[1] == pytest.approx(841.9, abs=2)
        assert f"Page {i} of {len(pages)}" in text, (i, text[-200:])
    text = " ".join(t for _, t in pages)
    contents = text.find("Contents")
    # After the table of contents (which lists them), each section's own heading, in order.
    at = [text.find("Abstract"), contents] + [text.find(s, text.find(s, contents) + 1)
                                              for s in SECTIONS[2:]]
    assert all(a >= 0 for a in at) and at == sorted(at), dict(zip(SECTIONS, at))


# In print, per table cell: each word split over two lines other than after - / _ . , = : (a
# header reading "Epoc|hs"); and every element that would print a scrollbar.
PRINT_PROBLEMS_JS = """w => {
  const broken = [], scrolls = [];
  for (const cell of document.querySelectorAll('th, td')) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let n; (n = walker.nextNode());) {
      for (const m of n.data.matchAll(/\\S+/g)) {
        let prev = null;
        for (let i = 0; i < m[0].length; i++) {
          const r = document.createRange();
          r.setStart(n, m.index + i); r.setEnd(n, m.index + i + 1);
          const rect = r.getClientRects()[0];
          if (!rect) continue;
          const top = Math.round(rect.top);
          if (prev !== null && top !== prev && !'-/_.,=:'.includes(m[0][i - 1])) {
            broken.push(m[0]); break;
          }
          prev = top;
        }
      }
    }
  }
  for (const e of document.querySelectorAll('*')) {
    const s = getComputedStyle(e);
    if ((['auto', 'scroll'].includes(s.overflowX) && e.scrollWidth > e.clientWidth + 1)
        || s.overflowX === 'scroll' || s.overflowY === 'scroll'
        || (s.overflowY === 'auto' && e.scrollHeight > e.clientHeight + 1))
      scrolls.push(e.tagName + '.' + e.className);
  }
  const wide = [...document.querySelectorAll('table, img, figure, pre, p, li, h1, h2, h3, nav')]
    .filter(e => e.getBoundingClientRect().right > w + 1 || e.getBoundingClientRect().left < -1)
    .map(e => e.tagName + ': ' + (e.textContent || e.getAttribute('alt') || '').slice(0, 60));
  return {wide, broken, scrolls,
          scroll: document.documentElement.scrollWidth > w ? document.documentElement.scrollWidth : 0};
}"""


def print_layout_problems(page_file: Path) -> dict:
    """What a printed page would show wrong: elements wider than the A4 text width, words
    broken inside in a table, scrollbars (all empty when the print is clean)."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = browser_page(pw, viewport={"width": A4_TEXT_WIDTH_PX, "height": 1100})
        page.emulate_media(media="print")
        page.goto(page_file.as_uri(), wait_until="load")
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        found = page.evaluate(PRINT_PROBLEMS_JS, A4_TEXT_WIDTH_PX)
        browser.close()
    return {k: v for k, v in found.items() if v}


def test_nothing_in_the_print_layout_is_wider_than_the_page(tiny_report):
    assert print_layout_problems(tiny_report / "report" / "report.html") == {}


@pytest.mark.parametrize("folder", [f for _, f in committed_reports()],
                         ids=[n for n, _ in committed_reports()])
def test_committed_reports_print_without_broken_words_or_scrollbars(folder):
    assert print_layout_problems(folder / "report.html") == {}


def test_phone_width_text_does_not_overflow_and_dark_mode_is_dark(tiny_report):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = browser_page(pw, viewport={"width": 400, "height": 800})
        page.emulate_media(media="screen", color_scheme="dark")
        page.goto((tiny_report / "report" / "report.html").as_uri(), wait_until="load")
        overflow = page.evaluate("""() => [...document.querySelectorAll(
            'p, li, h1, h2, h3, figcaption, summary, nav')]
            .filter(e => e.getBoundingClientRect().right > 401)
            .map(e => e.textContent.slice(0, 60))""")
        scroll = page.evaluate("document.documentElement.scrollWidth")
        colours = page.evaluate("""() => [getComputedStyle(document.body).backgroundColor,
                                          getComputedStyle(document.querySelector('p')).color]""")
        browser.close()
    assert overflow == [] and scroll <= 400, (overflow[:5], scroll)  # wide tables scroll inside

    def luminance(css):
        r, g, b = [int(x) for x in re.findall(r"\d+", css)[:3]]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    assert luminance(colours[0]) < 60 and luminance(colours[1]) > 180, colours


def test_every_figure_is_numbered_and_the_contents_resolve(tiny_report):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser, page = browser_page(pw)
        page.goto((tiny_report / "report" / "report.html").as_uri(), wait_until="load")
        loose = page.evaluate("[...document.querySelectorAll('img')]"
                              ".filter(i => !i.closest('figure.sslnb-figure')).length")
        captions = page.evaluate("[...document.querySelectorAll('figure > figcaption')]"
                                 ".map(c => c.textContent)")
        links = page.evaluate("""[...document.querySelectorAll('nav.toc a')].map(a =>
            [a.getAttribute('href'), !!document.getElementById(a.getAttribute('href').slice(1))])""")
        browser.close()
    assert loose == 0
    numbers = {}
    for c in captions:
        found = re.match(r"(Figure|Table) (A?)(\d+)\. \S", c)
        assert found, c
        numbers.setdefault((found[1], found[2]), []).append(int(found[3]))
    for kind, seen in numbers.items():
        assert seen == list(range(1, len(seen) + 1)), (kind, seen)  # in order, none twice
    assert ("Figure", "") in numbers and ("Table", "") in numbers
    assert [h for h, _ in links] and all(ok for _, ok in links), links
    assert [h for h, _ in links][:2] == ["#Results", "#Claims"]


def test_abstract_is_generated_from_the_results_file(tiny_report):
    from sslnb.report import paper, results_file
    html = html_text((tiny_report / "report" / "report.html").read_text())
    results = json.loads((tiny_report / "report" / "results.json").read_text())
    abstract = paper.abstract(results_file.read(tiny_report / "report" / "results.json"))
    assert f"Abstract. {abstract.replace('`', '')}" in html  # `code` renders without backticks
    for c in results["configurations"]:
        if not c["sweep_smaller"]:
            ci = c["ci"]["test_top1"]
            assert f"{c['model']} reaches {ci['value']:.1f}% (95% CI {ci['low']:.1f} to " \
                   f"{ci['high']:.1f})" in abstract


def test_nothing_a_reader_should_not_see(tiny_report):
    text = html_text((tiny_report / "report" / "report.html").read_text())
    pdf = tiny_report / "report" / "report.pdf"
    if pdf.is_file():
        text += " ".join(t for _, t in pdf_pages(pdf))
    for bad in ("Traceback", "reusing finished run", "issue #", "Warning", "1 epochs"):
        assert bad not in text, bad
    for word in ("None", "nan", "NaN"):
        assert not re.search(rf"\b{word}\b", text), word


def test_the_committed_demo_report_fits_fourteen_pages():
    """Twelve before notebook 04 gained its chapter prose (claims rules, Methods protocol)."""
    pages = pdf_pages(ROOT / "report" / "report.pdf")
    assert len(pages) <= 14, len(pages)
