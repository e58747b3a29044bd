"""Which code a stage of a run depends on, as a hash that only changes when that code does.

A finished pretraining is reused while the code pretraining runs is unchanged; an evaluation
while the code evaluation runs is. The code is found by following imports from the stage's entry
module (`train.py`, `evaluate.py`, `features.py`) and the run's own method file: `from .x import
f` depends on `f`'s definition and what it uses in x (so adding a loss to losses.py leaves the
other losses' runs alone), `from . import x` or `import x` on all of x. Each definition is
compared by its syntax tree without docstrings (comments are not in the tree), so rewording a
docstring or a comment, adding a method file, or editing the report retrains and re-evaluates
nothing, while a change to the loss retrains and a change to the probe re-evaluates.
"""
from __future__ import annotations

import ast
import hashlib
import inspect
from pathlib import Path

from . import methods

PACKAGE = Path(__file__).resolve().parent
STAGES = {"pretrain": "train.py", "evaluate": "evaluate.py", "features": "features.py"}


def code_version(stage: str, method: str | None = None, package: Path | str | None = None,
                 method_file: Path | str | None = None) -> str:
    """12 hex digits of the code `stage` runs for runs of `method` (a registered method name)."""
    pkg = Path(package) if package is not None else PACKAGE
    if method_file is None and method is not None:
        method_file = _method_file(method)
    files = sorted(pkg.rglob("*.py")) + ([Path(method_file)] if method_file else [])
    key = (stage, str(pkg), str(method_file),
           tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files))
    if key not in _CACHE:  # a stage asks many times per evaluation; parse once per edit
        roots = [(pkg / STAGES[stage], None)] + ([(Path(method_file), None)] if method_file
                                                  else [])
        parts = Closure(pkg).hash_items(roots)
        h = hashlib.sha256()
        for name in sorted(parts):
            h.update(name.encode() + b"\0" + parts[name].encode() + b"\0")
        _CACHE[key] = h.hexdigest()[:12]
    return _CACHE[key]


_CACHE: dict[tuple, str] = {}


def _method_file(method: str) -> Path | None:
    try:
        return Path(inspect.getsourcefile(type(methods.get(method)))).resolve()
    except (KeyError, TypeError):
        return None


def canonical(node) -> str:
    """A node as text: its type and non-empty fields, recursively, without docstrings and source
    positions (so neither a reworded docstring nor a moved line changes it, nor a field a newer
    Python adds empty)."""
    if isinstance(node, ast.AST):
        fields = []
        for name, value in ast.iter_fields(node):
            if name in ("ctx", "type_comment", "kind"):
                continue
            if name == "body" and isinstance(value, list):
                value = _without_docstring(value)
            if value is None or value == []:
                continue
            fields.append(f"{name}={canonical(value)}")
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(canonical(x) for x in node) + "]"
    return repr(node)


def _without_docstring(body: list) -> list:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


class Closure:
    """Definitions reachable from entry modules, each as canonical text keyed 'file:name'."""

    def __init__(self, package: Path):
        self.pkg = package.resolve()
        self.trees: dict[Path, ast.Module] = {}

    def tree(self, path: Path) -> ast.Module:
        if path not in self.trees:
            self.trees[path] = ast.parse(path.read_text(encoding="utf-8"))
        return self.trees[path]

    def hash_items(self, roots: list[tuple[Path, str | None]]) -> dict[str, str]:
        out: dict[str, str] = {}
        todo, seen = list(roots), set()
        while todo:
            path, name = todo.pop()
            path = path.resolve()
            if (path, name) in seen or not path.is_file():
                continue
            seen.add((path, name))
            tree = self.tree(path)
            nodes = tree.body if name is None else self.definitions(tree, name)
            key = f"{self.label(path)}:{name or '*'}"
            out[key] = canonical(_without_docstring(nodes) if name is None else nodes)
            todo += self.dependencies(path, tree, nodes, whole=name is None)
        return out

    def label(self, path: Path) -> str:
        return path.relative_to(self.pkg).as_posix() if path.is_relative_to(self.pkg) \
            else path.name

    @staticmethod
    def definitions(tree: ast.Module, name: str) -> list:
        """The top-level statements that bind `name` (def, class, assignment, import)."""
        found = []
        for stmt in tree.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and stmt.name == name:
                found.append(stmt)
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(n, ast.Name) and n.id == name
                       for t in targets for n in ast.walk(t)):
                    found.append(stmt)
            elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
                if any((a.asname or a.name.split(".")[0]) == name for a in stmt.names):
                    found.append(stmt)
        return found

    def dependencies(self, path: Path, tree: ast.Module, nodes: list, whole: bool) -> list:
        """(file, name or None) items the given statements use: what they import from sslnb,
        and (for single definitions) the other top-level names of the same module they read."""
        deps = []
        used: set[str] = set()
        for stmt in nodes:
            for node in ast.walk(stmt):
                if isinstance(node, ast.ImportFrom):
                    deps += self.resolve_from(path, node)
                elif isinstance(node, ast.Import):
                    for a in node.names:
                        if a.name.split(".")[0] == self.pkg.name:
                            deps.append((self.module_file(a.name.split(".")[1:]), None))
                elif isinstance(node, ast.Name):
                    used.add(node.id)
        if not whole:
            bound = {n for stmt in nodes for n in _bound_names(stmt)}
            for name in used - bound:
                if self.definitions(tree, name):
                    deps.append((path, name))
        return [(p, n) for p, n in deps if p is not None]

    def module_file(self, parts: list[str]) -> Path | None:
        base = self.pkg.joinpath(*parts) if parts else self.pkg
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
        return None

    def resolve_from(self, path: Path, node: ast.ImportFrom) -> list:
        if node.level == 0:
            mod = (node.module or "").split(".")
            if mod[0] != self.pkg.name:
                return []
            parts = mod[1:]
        else:
            here = path.parent.relative_to(self.pkg).parts if path.is_relative_to(self.pkg) \
                else ()
            here = here[:len(here) - (node.level - 1)] if node.level > 1 else here
            parts = [*here, *(node.module.split(".") if node.module else [])]
        target = self.module_file(parts)
        out = []
        for a in node.names:
            sub = self.module_file([*parts, a.name])
            if sub is not None and (target is None or target.name == "__init__.py"):
                out.append((sub, None))  # `from . import x`: the module x
            elif target is not None:
                out.append((target, a.name))  # `from .x import f`: f's definition in x
        return out


def _bound_names(stmt) -> set[str]:
    """Names a definition binds itself (its own name, arguments, locals), not to follow."""
    names = set()
    for node in ast.walk(stmt):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names
