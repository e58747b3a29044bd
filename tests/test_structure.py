"""The shape of the code, checked: modules import downward only (no cycle, evaluation never
reaches the training loop), nothing outside sslnb/methods/ branches on a method's name, and the
notebooks share one short set-up cell."""
import ast
import json
import re
from pathlib import Path

import pytest

import sslnb
from conftest import ROOT

PKG = Path(sslnb.__file__).parent
METHOD_NAMES = set(sslnb.methods.METHODS)  # every registered method, not a list typed here


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every sslnb module this file imports, at the top or inside functions. `from pkg import mod`
    is an import of pkg.mod; a package that holds this file (always initialised first) is not
    counted as an import of it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("sslnb")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("sslnb"):
                target = node.module
            else:
                continue
            subs = {f"{target}.{a.name}" for a in node.names} & modules  # `from . import runs`
            if len(subs) < len(node.names) and not name.startswith(target + "."):
                found.add(target)
            found |= subs
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(f): f for f in PKG.rglob("*.py")}
    return {m: {t for t in imports_of(f, set(files)) if t in files and t != m}
            for m, f in files.items()}


def reachable(graph, start):
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 20  # the walk found the package
    cycles = sorted(m for m in graph if m in reachable(graph, m))
    assert not cycles, {m: sorted(graph[m]) for m in cycles}


def test_evaluation_never_imports_the_training_loop():
    graph = import_graph()
    for m in ("sslnb.features", "sslnb.probe", "sslnb.finetune", "sslnb.evaluate",
              "sslnb.export", "sslnb.checkpoint", "sslnb.report.plots", "sslnb.report.summary",
              "sslnb.report.claims", "sslnb.bench_results"):
        assert "sslnb.train" not in reachable(graph, m), m


def method_comparisons(path: Path) -> list[int]:
    """Lines comparing something with the string 'mae' or 'simclr'."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for c in [node.left, *node.comparators]:
                if isinstance(c, ast.Constant) and c.value in METHOD_NAMES:
                    lines.append(node.lineno)
                if isinstance(c, (ast.Tuple, ast.List, ast.Set)) and any(
                        isinstance(e, ast.Constant) and e.value in METHOD_NAMES for e in c.elts):
                    lines.append(node.lineno)
    return lines


def test_only_the_method_files_branch_on_a_method():
    offenders = {str(f.relative_to(ROOT)): method_comparisons(f)
                 for f in [*PKG.rglob("*.py"), *(ROOT / "bench").glob("*.py")]
                 if "methods" not in f.parts and method_comparisons(f)}
    assert not offenders, offenders


def method_mentions(path: Path) -> list[tuple[int, str]]:
    """String constants (docstrings aside) that name a registered method or one of its keys:
    'mae', 'simclr.temperature', {'mae': ...}."""
    tree = ast.parse(path.read_text())
    docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                  if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                    ast.AsyncFunctionDef)) and n.body
                  and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
            and (n.value in METHOD_NAMES or n.value.split(".")[0] in METHOD_NAMES and "." in n.value))


def test_the_engine_and_the_report_know_no_method_by_name():
    """A new method is one file: the training loop, the benchmark, the params, the augmentation,
    the data, the report (all of sslnb outside sslnb/methods/) name no method and none of a
    method's keys; what they need to know, they ask the method."""
    offenders = {str(f.relative_to(ROOT)): method_mentions(f) for f in PKG.rglob("*.py")
                 if "methods" not in f.relative_to(PKG).parts and method_mentions(f)}
    # the `method` setting's default value, declared with the other settings (sslnb/schema.py)
    if len(offenders.get("sslnb/schema.py", [])) == 1:
        offenders.pop("sslnb/schema.py")
    assert not offenders, offenders


def test_the_mention_finder_sees_a_name_and_a_key(tmp_path):
    f = tmp_path / "x.py"
    f.write_text('"""mae in a docstring is prose."""\nA = {"mae": 1}\nB = "simclr.temperature"\n'
                 'C = "simclr_views"\n')
    assert method_mentions(f) == [(2, "mae"), (3, "simclr.temperature")]


def test_the_comparison_finder_sees_a_branch(tmp_path):
    f = tmp_path / "x.py"
    f.write_text('if p["method"] == "mae":\n    pass\nok = m in ("simclr", "x")\n')
    assert method_comparisons(f) == [1, 3]


def bootstrap_cells():
    cells = {}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        code = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        tagged = [c for c in code if "bootstrap" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb.name}: one code cell tagged 'bootstrap'"
        cells[nb.name] = "".join(tagged[0]["source"])
    return cells


def test_every_notebook_has_the_same_short_setup_cell():
    cells = bootstrap_cells()
    assert len(cells) == 4
    first = next(iter(cells.values()))
    assert all(c == first for c in cells.values()), "the bootstrap cells differ"
    assert len(first.strip().splitlines()) <= 10
    compile(first, "bootstrap", "exec")


@pytest.mark.parametrize("name", sorted(METHOD_NAMES))
def test_a_method_is_one_file(name):
    """Model, views, loss, FLOPs and pictures of a method are in sslnb/methods/NAME.py; what
    belongs to the encoder (its name, its export) is shared by every method (encoders.py), so
    that two objectives on the same ViT export the same feature."""
    from sslnb import methods
    m = methods.get(name)
    assert Path(type(m).__module__.replace(".", "/") + ".py").name == f"{name}.py"
    for hook in ("build", "views", "loss", "train_flops_per_image", "showcase"):
        assert getattr(type(m), hook) is not getattr(methods.Method, hook), hook
    for hook in ("architecture", "export"):
        assert getattr(type(m), hook) is getattr(methods.Method, hook), hook


def settings_read(path: Path, settings: set[str]) -> set[str]:
    """The dotted shared settings a file names: p["train"]["epochs"], an alias of a section read
    by key (t = p["train"]; t["epochs"]), or the whole string "train.epochs" (a lookup such as
    source_of.get("train.epochs")); words inside messages (f-strings) are not reads."""
    tree = ast.parse(path.read_text())
    in_fstring = {id(c) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr)
                  for c in ast.walk(n)}
    key_of = lambda n: n.slice.value if isinstance(n, ast.Subscript) and isinstance(  # noqa: E731
        n.slice, ast.Constant) and isinstance(n.slice.value, str) else None
    aliases = {}  # name -> section
    for n in ast.walk(tree):
        if isinstance(n, ast.Assign) and key_of(n.value):
            for t in n.targets:
                names = t.elts if isinstance(t, ast.Tuple) else [t]
                values = n.value.elts if isinstance(n.value, ast.Tuple) else [n.value]
                for a, v in zip(names, values):
                    if isinstance(a, ast.Name) and key_of(v):
                        aliases[a.id] = key_of(v)
        elif isinstance(n, ast.Assign) and isinstance(n.value, ast.Tuple):
            for a, v in zip(getattr(n.targets[0], "elts", []), n.value.elts):
                if isinstance(a, ast.Name) and key_of(v):
                    aliases[a.id] = key_of(v)
    found = set()
    for n in ast.walk(tree):
        leaf = key_of(n)
        if leaf:
            section = key_of(n.value) or (aliases.get(n.value.id)
                                          if isinstance(n.value, ast.Name) else None)
            if section and f"{section}.{leaf}" in settings:
                found.add(f"{section}.{leaf}")
        if isinstance(n, ast.Constant) and n.value in settings and id(n) not in in_fstring:
            found.add(n.value)
    return found


def test_a_shared_setting_is_read_in_few_engine_files():
    """Each shared setting has one home (sslnb/schema.py) and few readers: at most 3 of the
    dotted settings are read in 3 or more engine files (the report aside), so changing what a
    setting means touches one place, not a dozen."""
    from sslnb.schema import SHARED
    settings = {k for k in SHARED if "." in k}
    files = [f for f in PKG.rglob("*.py") if "report" not in f.relative_to(PKG).parts
             and f.name != "schema.py"]
    readers: dict[str, list[str]] = {k: [] for k in settings}
    for f in files:
        for k in settings_read(f, settings):
            readers[k].append(str(f.relative_to(PKG)))
    spread = {k: sorted(v) for k, v in readers.items() if len(v) >= 3}
    assert len(spread) <= 3, spread


def test_the_setting_finder_sees_reads_and_lookups_not_messages(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('def g(p, src):\n    t = p["train"]\n    x = t["epochs"] + p["data"]["image_size"]\n'
                 '    y = src.get("model.depth")\n    raise ValueError(f"model.stem {x}")\n')
    assert settings_read(f, {"train.epochs", "data.image_size", "model.depth", "model.stem"}) \
        == {"train.epochs", "data.image_size", "model.depth"}


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_every_notebook_reads_as_a_chapter(notebook):
    """A notebook is a chapter of the study, not a wrapper of calls: at least 350 words of prose
    in its markdown cells (the question it answers, how to read its figures, what the next
    chapter takes), and a heading that opens it."""
    cells = json.loads(notebook.read_text())["cells"]
    prose = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    words = sum(len(re.findall(r"[A-Za-z][A-Za-z'-]*", text)) for text in prose)
    assert words >= 350, f"{notebook.name}: {words} words of prose"
    assert prose and prose[0].startswith("# "), notebook.name
