"""`make report`: run the study's notebooks with papermill, assemble one offline HTML report with
nbconvert (and a PDF where headless Chromium exists).

A report params file (params/report/<name>.yaml) names the runs:

    title: MAE vs SimCLR on shapes
    description: one paragraph shown under the title
    set: {train.epochs: 2}            # overrides applied to every run (optional)
    seeds: [0, 1, 2]                  # every run repeated per seed (optional; default: its own)
    extends: params/report/demo.yaml  # start from another report's keys (optional)
    runs:
      - params: params/demo/mae_vit_tiny.yaml
        set: {train.epochs: 4}        # overrides for this run (optional)

The build happens in a staging folder; `report/` is replaced only when every notebook succeeded,
so a failing notebook leaves the previous report in place.
"""
from __future__ import annotations

import difflib
import html
import os
import shutil
import subprocess
import time
from pathlib import Path
from xml.etree import ElementTree

import yaml

from ..errors import ParamsError, SslnbError
from ..params import deep_merge, extended_file, read_text, resolve, save as save_params, yaml_error
from ..runs import run_dir_of
from .primaries import named_readings, registered
from .records import ReportSpec, RunSpec

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
REPORT_KEYS = {"title": str, "description": str, "set": dict, "seeds": list, "runs": list,
               "extends": str, "primaries": dict, "readings": dict}


class ReportError(SslnbError):
    """A notebook failed or the report could not be assembled."""


def load(path: str | Path, overrides: dict | None = None) -> ReportSpec:
    """Validate a report params file and resolve every run's params once (errors before any
    work): each run carries its resolved params (`resolved`), which the build freezes into the
    file its notebooks read. `overrides` (dotted keys) apply to every run, over the report's."""
    path = Path(path)
    if not path.is_file():
        known = sorted(f.stem for f in (ROOT / "params" / "report").glob("*.yaml"))
        raise ParamsError(f"{path}: report params file not found. Known reports: "
                          f"{', '.join(known)} (make report REPORT=<name>).")
    try:
        r = yaml.safe_load(read_text(path, "report params file")) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: malformed YAML: {yaml_error(e)}.") from None
    if not isinstance(r, dict):
        raise ParamsError(f"{path}: a report params file is a mapping of {', '.join(REPORT_KEYS)}.")
    if isinstance(r.get("extends"), str):  # another report's keys, then this file's over them,
        base = extended_file(path, r["extends"])  # merged as a run file's extends are
        if base is None or base.resolve() == path.resolve():
            raise ParamsError(f"{path}: key 'extends' names '{r['extends']}', which is not another "
                              f"report params file (e.g. params/report/demo.yaml).")
        base_keys = yaml.safe_load(read_text(base, "report params file")) or {}
        base_keys.pop("extends", None)
        r = deep_merge(base_keys, {k: v for k, v in r.items() if k != "extends"})
    for key, value in r.items():
        if key not in REPORT_KEYS:
            close = difflib.get_close_matches(key, REPORT_KEYS, n=1)
            raise ParamsError(f"{path}: unknown key '{key}'" + (f"; did you mean '{close[0]}'?" if close
                              else "") + f" Accepted: {', '.join(REPORT_KEYS)}.")
        if not isinstance(value, REPORT_KEYS[key]):
            raise ParamsError(f"{path}: key '{key}' must be a {REPORT_KEYS[key].__name__}.")
    if not r.get("runs"):
        raise ParamsError(f"{path}: key 'runs' must list at least one run, e.g. "
                          f"runs: [{{params: params/demo/mae_vit_tiny.yaml}}].")
    seeds = _seeds(r.get("seeds"), path, "seeds")
    runs = []
    for i, item in enumerate(r["runs"]):
        item = {"params": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or "params" not in item or \
                set(item) - {"params", "set", "seeds"}:
            raise ParamsError(f"{path}: runs[{i}] must be a params path or a mapping with "
                              f"'params' (a run's YAML file), optional 'set' (overrides) and "
                              f"optional 'seeds' (this run's seeds, when not the report's).")
        run_seeds = _seeds(item.get("seeds"), path, f"runs[{i}].seeds") or seeds
        params_file = (ROOT / item["params"]) if not Path(item["params"]).is_absolute() \
            else Path(item["params"])
        if not params_file.is_file():
            raise ParamsError(f"{path}: runs[{i}] names '{item['params']}', which does not "
                              f"exist. Name a run params file such as params/demo/mae_vit_tiny.yaml.")
        run_overrides = {**(r.get("set") or {}), **(item.get("set") or {}), **(overrides or {})}
        base = resolve(params_file, run_overrides)
        for seed in run_seeds or [base["seed"]]:
            # The params' own seed keeps the run's name, so a seeds report reuses the runs of
            # the one-seed report; every other seed is a run of its own.
            name = base["name"] if seed == base["seed"] else f"{base['name']}_seed{seed}"
            run_set = {**run_overrides, "seed": seed, "name": name} if run_seeds else run_overrides
            p = base if run_set == run_overrides else resolve(params_file, run_set)
            runs.append({"params": str(params_file), "set": run_set, "resolved": p,
                         "run_dir": str(run_dir_of(p)),
                         "name": p["name"], "method": p["method"], "group": base["name"],
                         "seed": seed, "order": (seed if run_seeds else 0, i)})
    # Seed by seed (every configuration's first seed, then every second...): a build cut short
    # leaves whole seeds of every arm, which a paired comparison can read.
    runs.sort(key=lambda run: run.pop("order"))
    by_dir: dict[str, int] = {}
    for run in runs:
        if run["run_dir"] in by_dir:
            first = runs[by_dir[run["run_dir"]]]
            raise ParamsError(
                f"{path}: two entries of 'runs' resolve to the same run '{run['name']}' "
                f"(directory {run['run_dir']}): {first['params']} and {run['params']}"
                + (f" with seed {run['seed']}" if seeds else "") + ". The second would reuse or "
                f"overwrite the first's run. Give one a name of its own, e.g. "
                f"set: {{name: {run['name']}_b}} under that entry, or remove the duplicate.")
        by_dir[run["run_dir"]] = len(by_dir)
    groups = {run["group"] for run in runs}
    return ReportSpec(title=r.get("title", path.stem), description=r.get("description", ""),
                      runs=[RunSpec(**run) for run in runs], path=str(path),
                      seeds=seeds or [None],
                      primaries=registered(r.get("primaries") or {}, groups, path),
                      readings=named_readings(r.get("readings"), groups, path))


def _seeds(seeds, path: Path, key: str) -> list | None:
    if seeds is not None and (not isinstance(seeds, list) or not seeds or
                              not all(type(x) is int and x >= 0 for x in seeds)
                              or len(set(seeds)) != len(seeds)):
        raise ParamsError(f"{path}: key '{key}' must list distinct non-negative integers, e.g. "
                          f"seeds: [0, 1, 2]; got {seeds!r}.")
    return seeds


def kernel_name() -> str:
    """The kernel `make` registers inside the venv, else the default python3 kernel."""
    from jupyter_client.kernelspec import find_kernel_specs
    return "sslnb" if "sslnb" in find_kernel_specs() else "python3"


def _execute(nb: str, out: Path, parameters: dict, kernel: str) -> None:
    import papermill as pm
    src = NOTEBOOKS / nb
    print(f"[report] {nb} {' '.join(f'{k}={v}' for k, v in parameters.items() if k != 'report')}",
          flush=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(src), str(out), parameters=parameters, kernel_name=kernel,
                            cwd=str(ROOT), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as e:
        raise ReportError(
            f"notebook {nb} failed in cell {e.cell_index} (execution count {e.exec_count}): "
            f"{e.ename}: {e.evalue.rstrip('.')}. The executed copy with the full traceback is {out}; the "
            f"previous report was left in place.") from None
    print(f"[report] {nb} done in {time.perf_counter() - start:.0f} s", flush=True)


def default_dirs(report_params: str | Path) -> tuple[Path, Path]:
    """Where a report and its figures go: report/ and graphs/ for the demo, report/<name>/ and
    graphs/<name>/ for every other report, so that each can be committed beside the demo's."""
    name = Path(report_params).stem
    if name == "demo":
        return ROOT / "report", ROOT / "graphs"
    return ROOT / "report" / name, ROOT / "graphs" / name


def build(report_params: str | Path, force: bool = False, report_dir: str | Path | None = None,
          graphs_dir: str | Path | None = None, pdf: bool = True,
          overrides: dict | None = None, render: bool = False) -> Path:
    """Execute every notebook for every run, then the comparison; return the HTML report path.

    overrides: dotted keys applied to every run (`make report DATA=/path` sets data.root), passed
    to the notebooks as a parameter: each run's params are resolved once and frozen into a file
    that its first notebook reads (params/<run>.yaml beside the report).
    render: only the comparison, from the runs' logs (eval.json, predictions.json, metrics):
    no checkpoint, no training, no evaluation (`make render`); the per-run notebooks of the
    report already built are kept."""
    default_report, default_graphs = default_dirs(report_params)
    report_dir, graphs_dir = report_dir or default_report, graphs_dir or default_graphs
    return _build(report_params, force, Path(report_dir), Path(graphs_dir), pdf, render,
                  overrides or {})


def _build(report_params, force: bool, report_dir: Path, graphs_dir: Path, pdf: bool,
           render: bool, overrides: dict) -> Path:
    spec = load(report_params, overrides)
    if render:
        missing = [r.run_dir for r in spec.runs
                   if not (Path(r.run_dir) / "predictions.json").is_file()]
        if missing:
            raise ReportError(f"render: {', '.join(missing)} have no saved predictions (the runs "
                              f"were never evaluated here). Build the report with `make report"
                              f"{'' if Path(report_params).stem == 'demo' else ' REPORT=' + Path(report_params).stem}`.")
    staging = report_dir.parent / f".{report_dir.name}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "executed").mkdir(parents=True)
    kernel = kernel_name()
    # Progress bars would fill the rendered report with stderr; the build log shows each notebook.
    previous = os.environ.get("SSLNB_PROGRESS")
    os.environ["SSLNB_PROGRESS"] = "0"  # inherited by the papermill kernels
    try:
        if render:  # keep the per-run notebooks of the last full build
            for old in sorted((report_dir / "executed").glob("0[123]_*.ipynb")):
                shutil.copy2(old, staging / "executed" / old.name)
            compare_out = _execute_compare(spec, staging, graphs_dir, kernel, overrides)
        else:
            compare_out = _execute_all(spec, staging, graphs_dir, force, kernel, overrides)
    finally:
        if previous is None:
            os.environ.pop("SSLNB_PROGRESS", None)
        else:
            os.environ["SSLNB_PROGRESS"] = previous
    html = assemble(spec, compare_out, staging / "report.html")
    if pdf:  # printed with the appendix open, where the HTML keeps it collapsed
        printable = staging / ".print.html"
        printable.write_text(html.read_text(encoding="utf-8").replace(
            '<details class="appendix"', '<details open class="appendix"'), encoding="utf-8")
        print_pdf(printable, staging / "report.pdf")
        printable.unlink()
    for nb in (staging / "executed").glob("*.ipynb"):
        strip_figures(nb)
    _replace(staging, report_dir)
    return report_dir / "report.html"


def strip_figures(notebook: Path) -> None:
    """Drop the images from an executed notebook's outputs, keeping their text: every figure is
    a PNG in graphs/ and embedded in report.html, so a third copy in the notebooks would only
    grow the repository with every rebuild. An HTML output that embeds images (a numbered
    figure, the appendix) says what it shows in its metadata (sslnb.report.paper), which stands
    in its place."""
    import nbformat
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            images = [k for k in data if k.startswith("image/")]
            for k in images:
                del data[k]
            if images and "text/plain" not in data:
                data["text/plain"] = "[figure: in graphs/ and in report.html]"
            summary = out.get("metadata", {}).get(SUMMARY)
            if summary and "text/html" in data:
                data["text/html"] = f"<p>[{html.escape(summary)}]</p>"
    nbformat.write(nb, notebook)


def _execute_all(spec: ReportSpec, staging: Path, graphs_dir: Path, force: bool, kernel: str,
                 overrides: dict) -> Path:
    """01-03 for every run, then 04_compare (returned).
    Each run's params, resolved once by `load`, are frozen into staging/params/<run>.yaml (kept
    beside the report), the file its pretraining notebook reads with no overrides."""
    (staging / "params").mkdir()
    for run in spec.runs:
        frozen = staging / "params" / f"{run.name}.yaml"
        save_params(run.resolved, frozen)
        common = {"force": force, "graphs_dir": str(graphs_dir)}
        for nb, params in (
                ("01_pretrain.ipynb", {"params_file": str(frozen), "overrides": {}}),
                ("02_extract_features.ipynb", {"run_dir": run.run_dir}),
                ("03_linear_probe.ipynb", {"run_dir": run.run_dir})):
            out = staging / "executed" / f"{nb[:-6]}_{run.name}.ipynb"
            _execute(nb, out, {**params, **common}, kernel)
    return _execute_compare(spec, staging, graphs_dir, kernel, overrides)


def _execute_compare(spec: ReportSpec, staging: Path, graphs_dir: Path, kernel: str,
                     overrides: dict) -> Path:
    compare_out = staging / "executed" / "04_compare.ipynb"
    _execute("04_compare.ipynb", compare_out, {"report_params": spec.path,
                                               "overrides": overrides,
                                               "graphs_dir": str(graphs_dir),
                                               "results_dir": str(staging)}, kernel)
    return compare_out


TEMPLATES = Path(__file__).with_name("templates")  # sslnb_report: lab, made self-contained
STYLE = Path(__file__).with_name("report.css")
SUMMARY, HEADING = "sslnb_summary", "sslnb_heading"  # output metadata set by report.paper


def assemble(spec: ReportSpec, compare_nb: Path, out: Path) -> Path:
    """The comparison notebook as one self-contained HTML page, rendered by the sslnb_report
    template: code, prompts and every stream output (progress, warnings, the runs' chatter)
    left out, figures embedded, the report stylesheet (screen, print, dark mode) and a table
    of contents of its sections. The per-run notebooks stay in report/executed/."""
    import nbformat
    from nbconvert import HTMLExporter
    merged = nbformat.read(compare_nb, as_version=4)
    hidden = {"injected-parameters", "parameters", "notebook-only"}  # not part of the paper
    merged.cells = [c for c in merged.cells
                    if not hidden & set(c.get("metadata", {}).get("tags", []))]
    for c in merged.cells:
        if c.cell_type == "code":
            c.outputs = [o for o in c.outputs if o.get("output_type") != "stream"]
    exporter = HTMLExporter(template_name="sslnb_report", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, embed_images=True, anchor_link_text="")
    resources = {"metadata": {"name": spec.title},
                 "sslnb": {"css": STYLE.read_text(), "contents": contents(merged)}}
    body, _ = exporter.from_notebook_node(merged, resources=resources)
    out.write_text(body, encoding="utf-8")
    return out


def heading_id(title: str) -> str:
    """The id nbconvert gives a markdown heading (its own add_anchor, read back)."""
    from nbconvert.filters import add_anchor
    return ElementTree.fromstring(add_anchor(f"<h2>{html.escape(title)}</h2>")).get("id")


def contents(nb) -> list[tuple[str, str]]:
    """(id, title) of each second-level heading, in order: those of the markdown cells and of
    the markdown the cells display, and an HTML output's own (its metadata names it)."""
    found = []
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        texts = [cell.source] if cell.cell_type == "markdown" else [
            o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
        for text in texts:
            found += [(heading_id(line[3:].strip()), line[3:].strip())
                      for line in text.splitlines() if line.startswith("## ")]
        found += [tuple(o["metadata"][HEADING]) for o in outputs
                  if HEADING in o.get("metadata", {})]
    return found


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(html: Path, pdf: Path) -> Path | None:
    """A PDF of the HTML, printed by headless Chromium; skipped (and said) where none exists."""
    exe = chromium()
    if exe is None:
        print("[report] no PDF: headless Chromium not found (apt-get install chromium)", flush=True)
        return None
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={pdf.parent / '.chromium'}", "--no-pdf-header-footer",
           f"--print-to-pdf={pdf}", html.resolve().as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    shutil.rmtree(pdf.parent / ".chromium", ignore_errors=True)
    if r.returncode or not pdf.is_file():
        print(f"[report] no PDF: Chromium failed ({r.stderr.strip()[-300:]})", flush=True)
        return None
    return pdf


def _replace(staging: Path, report_dir: Path) -> None:
    """Each built file or folder replaces its namesake in report_dir; other entries (another
    report's folder inside report/) stay."""
    report_dir.mkdir(parents=True, exist_ok=True)
    old = report_dir.parent / f".{report_dir.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    for entry in staging.iterdir():
        target = report_dir / entry.name
        if target.exists():
            os.replace(target, old / entry.name)
        os.replace(entry, target)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


