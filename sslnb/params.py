"""Run parameters: the declared defaults (sslnb/schema.py and each method's keys) <- method
defaults <- run file <- overrides.

Every mistake becomes a `ParamsError` naming the file, the key, what is accepted and how to fix it,
so a typo costs seconds instead of a traceback hunt.
"""
from __future__ import annotations

import copy
import difflib
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import schema
from .finetune import check as check_finetune  # only the check: a probe change must not retrain
from .encoders import FAMILY_PARAMS, spec
from .errors import ParamsError
from .methods import METHODS
from .schema import SHARED, Key, nested

ROOT_PARAMS = Path(__file__).resolve().parents[1] / "params"  # the repository's params files


def yaml_error(e: Exception) -> str:
    """PyYAML's multi-line error as one phrase: what is wrong, and where."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(getattr(e, "problem", None) or e).split())
    context = getattr(e, "context", None)
    return f"{' '.join(context.split()) + ': ' if context else ''}{what}{where}"


def keys() -> dict[str, Key]:
    """Every setting a run has (dotted name -> Key): the shared ones (sslnb/schema.py), then each
    registered method's own keys under `<method>.` (its file)."""
    out = dict(SHARED)
    out["method"] = replace(SHARED["method"], choices=tuple(METHODS))
    for name, m in METHODS.items():
        out.update({f"{name}.{k}": key for k, key in m.keys.items()})
    return out


def load_defaults() -> dict:
    """Every setting at its default, nested by section."""
    return nested({k: copy.deepcopy(key.default) for k, key in keys().items()})


def method_defaults(method: str) -> dict:
    """What a method changes of the shared defaults (its papers' recipe, in its file)."""
    return METHODS[method].defaults if method in METHODS else {}


def fill_missing(p: dict) -> dict:
    """Saved params of a run made by an older sslnb: keys added since take their defaults (the
    method's first), so the run can still be evaluated; nothing saved is changed."""
    flat = flatten(p)
    defaults = flatten(load_defaults())
    defaults.update(flatten(method_defaults(p.get("method"))))
    for key, value in defaults.items():
        if key not in flat and not any(key.startswith(k + ".") for k in flat):
            _set(p, key, copy.deepcopy(value))
    return p


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _set(d: dict, dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


def _merge(base: dict, over: Mapping, source: str, known: dict[str, Any]) -> None:
    for key, value in flatten(over).items():
        _check_known(key, source, known)
        _set(base, key, value)


def _check_known(key: str, source: str, known: dict[str, Any]) -> None:
    if key in known:
        return
    close = difflib.get_close_matches(key, known.keys(), n=1, cutoff=0.6)
    if not close:  # a typo in the leaf only: compare leaves within the same section
        leaf = key.rsplit(".", 1)[-1]
        leaves = {k.rsplit(".", 1)[-1]: k for k in known}
        near = difflib.get_close_matches(leaf, leaves.keys(), n=1, cutoff=0.6)
        close = [leaves[near[0]]] if near else []
    hint = f" Did you mean '{close[0]}'?" if close else ""
    section = key.rsplit(".", 1)[0] if "." in key else ""
    valid = sorted(k for k in known if k.startswith(section + ".")) if section else []
    listing = f" Valid keys in '{section}': {', '.join(valid)}." if valid else ""
    raise ParamsError(
        f"{source}: unknown key '{key}'.{hint}{listing} "
        f"Fix the key, or see docs/configuration.md for every key with its meaning."
    )


def parse_override(item: str) -> tuple[str, Any]:
    """'train.epochs=2' -> ('train.epochs', 2); the value is parsed as YAML."""
    if "=" not in item:
        raise ParamsError(f"--set '{item}': expected KEY=VALUE, e.g. --set train.epochs=2.")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as e:
        raise ParamsError(f"--set '{item}': the value is not valid YAML ({yaml_error(e)}).") from None
    return key.strip(), value


def _type_name(v: Any) -> str:
    return "null" if v is None else type(v).__name__


def checkpoint_interval(value) -> tuple[str, float]:
    """train.checkpoint_every: '10min', '500steps', '1epoch' (or an integer: epochs)."""
    try:
        return schema.checkpoint_interval(value)
    except ValueError:
        raise ParamsError(f"key 'train.checkpoint_every' is {value!r}; accepted: "
                          f"{SHARED['train.checkpoint_every'].accepted}.") from None


def _validate(p: dict, source_of: dict[str, str]) -> None:
    """Each value against its Key: its own check, else null where nullable, the default's type
    (an int or a YAML string like 1e-3 is read as a float where a float is expected), choices,
    positive integers, ranges and [low, high] pairs."""
    declared = keys()
    for name, value in flatten(p).items():
        key = declared[name]
        src = source_of.get(name, "defaults")

        def fail(accepted: str) -> None:
            raise ParamsError(
                f"{src}: key '{name}' is {value!r} ({_type_name(value)}); accepted: {accepted}. "
                f"Fix it in {src} or override it with --set {name}=VALUE."
            )

        if key.check is not None:
            if not key.check(value):
                fail(key.accepted)
            continue
        if value is None:
            if key.nullable:
                continue
            fail(f"a {_type_name(key.default)} like the default {key.default!r} (null is not "
                 f"allowed here)")
        want = key.nullable or type(key.default)
        if want is float and isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
                _set(p, name, value)
            except ValueError:
                pass
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            _set(p, name, value)
        if want is list:
            numbers = isinstance(value, list) and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in value)
            if key.pair and not (numbers and len(value) == 2 and 0 <= value[0] <= value[1]):
                fail("a list [low, high] of two numbers with 0 <= low <= high")
            if not key.pair and not (numbers and len(value) == len(key.default)):
                fail(f"a list of {len(key.default)} numbers like {key.default}")
            continue
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            fail(f"a {want.__name__}" + (" or null" if key.nullable else ""))
        if want is float and not math.isfinite(value):
            fail("a finite number (not .nan or .inf)")
        if key.choices and value not in key.choices:
            close = difflib.get_close_matches(str(value), key.choices, n=1)
            fail(" | ".join(key.choices) + (f" (did you mean '{close[0]}'?)" if close else ""))
        if key.positive_int and value < 1:
            fail("a positive integer")
        if key.range:
            lo, hi, inclusive = key.range
            brackets = inclusive if isinstance(inclusive, str) else "[]" if inclusive else "()"
            bad = ((lo is not None and (value < lo if brackets[0] == "[" else value <= lo))
                   or (hi is not None and (value > hi if brackets[1] == "]" else value >= hi)))
            if bad:
                fail(f"a number in {brackets[0]}{lo if lo is not None else '-inf'}, "
                     f"{hi if hi is not None else 'inf'}{brackets[1]}")
    _check_consistency(p, source_of)


def _check_consistency(p: dict, source_of: dict[str, str]) -> None:
    METHODS[p["method"]].check(p, source_of)
    check_finetune(p, source_of)


def read_text(path: Path, what: str = "params file") -> str:
    """A params file's text; a binary or non-UTF-8 file is a ParamsError, not a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: this {what} is not UTF-8 text (byte {e.start} cannot be "
                          f"decoded): is it the right file? Pass a YAML file such as "
                          f"params/demo/mae_vit_tiny.yaml.") from None
    except OSError as e:
        raise ParamsError(f"{path}: the {what} cannot be read ({e.strerror}). Pass a readable "
                          f"YAML file.") from None


def _load_run_file(path: Path) -> dict:
    try:
        loaded = yaml.safe_load(read_text(path)) or {}
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: malformed YAML: {yaml_error(e)}. Fix the syntax "
                          f"(indent with spaces, 'key: value' pairs).") from None
    if not isinstance(loaded, Mapping):
        raise ParamsError(f"{path}: expected a mapping of keys to values at the top level, "
                          f"got {_type_name(loaded)}.")
    return dict(loaded)


def deep_merge(base: Mapping, over: Mapping) -> dict:
    """`over`'s keys over `base`'s, mappings merged key by key, lists and values replaced: the one
    rule by which a run file or a report file `extends` another."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, Mapping) and isinstance(
            out.get(key), Mapping) else value
    return out


def extended_file(path: Path, base) -> Path | None:
    """The file an `extends: base` in `path` names: relative to path's folder, else to the
    repository (None when neither exists)."""
    candidates = (path.parent / base, ROOT_PARAMS.parent / base, Path(base)) \
        if isinstance(base, str) and base else ()
    return next((c for c in candidates if c.is_file()), None)


def run_file_chain(path: Path) -> list[tuple[Path, dict]]:
    """A run file and the files it `extends:`, base first: `extends: params/demo/x.yaml` starts
    from another run file's keys (its own `extends` followed in turn), then this file's keys
    over them. The path is relative to the extending file's folder, else to the repository."""
    chain, seen = [], []
    while True:
        loaded = _load_run_file(path)
        chain.insert(0, (path, loaded))
        seen.append(path.resolve())
        base = loaded.pop("extends", None)
        if base is None:
            return chain
        found = extended_file(path, base)
        if found is None or found.resolve() in seen:
            what = "a file that extends it in turn" if found else "no run params file"
            raise ParamsError(f"{path}: key 'extends' is {base!r}, {what}. Name another run "
                              f"params file (relative to this file's folder or to the "
                              f"repository), e.g. extends: params/demo/simclr_resnet18.yaml.")
        path = found


def effective(p: dict) -> dict:
    """A run's params as what it reads, flattened: without the sections of other methods and the
    keys of the other encoder family (a ViT run has a `model.stem` it never reads), and without
    where or how it was launched (out_dir, resume). Two runs with equal effective params are the
    same run."""
    fam = spec(p).family
    other = [k for f, keys in FAMILY_PARAMS.items() if f != fam for k in keys
             if k not in FAMILY_PARAMS[fam]]
    sections = tuple(f"{name}." for name in METHODS if name != p["method"])
    return {k: v for k, v in flatten(p).items()
            if k not in other and not k.startswith(sections) and k not in ("out_dir", "resume")}


def resolve(path: str | Path | None = None, overrides: Mapping | list[str] | None = None) -> dict:
    """Resolve a run's params: defaults <- method defaults <- file <- overrides.

    `overrides` is a dict (nested or dotted keys, from a notebook) or a list of 'key=value' strings
    (from --set). Raises ParamsError with a one-paragraph explanation on any mistake.
    """
    defaults = load_defaults()
    known = flatten(defaults)
    user: dict = {}
    source_of: dict[str, str] = {}
    src_name = str(path) if path else "params"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ParamsError(f"{path}: params file not found. Pass an existing YAML file, "
                              f"e.g. --params params/demo/mae_vit_tiny.yaml.")
        for file, loaded in run_file_chain(path):  # the file it extends first, then the file
            _merge(user, loaded, str(file), known)
            source_of.update({k: str(file) for k in flatten(loaded)})
    if overrides:
        items = (dict(parse_override(o) for o in overrides) if isinstance(overrides, list)
                 else flatten(overrides))
        for key, value in items.items():
            _check_known(key, "override", known)
            _set(user, key, value)
            source_of[key] = f"override {key}"

    method = user.get("method", defaults["method"])
    if method not in METHODS:
        close = difflib.get_close_matches(str(method), METHODS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ParamsError(f"{source_of.get('method', src_name)}: key 'method' is {method!r}; "
                          f"accepted: {' | '.join(METHODS)}{hint}.")
    p = copy.deepcopy(defaults)
    _merge(p, method_defaults(method), "method defaults", known)
    _merge(p, user, src_name, known)
    if p["name"] is None:
        p["name"] = Path(path).stem if path else method
    _validate(p, source_of)
    return p


def save(p: dict, path: Path) -> None:
    path.write_text(yaml.safe_dump(p, sort_keys=False))
