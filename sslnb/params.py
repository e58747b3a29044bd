"""Run parameters: documented defaults (defaults.yaml) <- method defaults <- run file <- overrides.

Every mistake becomes a `ParamsError` naming the file, the key, what is accepted and how to fix it,
so a typo costs seconds instead of a traceback hunt.
"""
from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ParamsError
from .methods import METHODS

DEFAULTS_FILE = Path(__file__).with_name("defaults.yaml")
ROOT_PARAMS = Path(__file__).resolve().parents[1] / "params"  # the repository's params files

# The shared keys' constraints; each method declares its own keys' in its file (methods.Key),
# and what it changes of the shared defaults (its papers' recipe) as Method.defaults.
CHOICES = {
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "data.source": ("shapes", "imagenet100", "imagenet", "imagefolder", "cifar10", "cifar100",
                    "stl10"),
    "data.placement": ("auto", "device", "host"),
    "model.stem": ("imagenet", "cifar"),
    "model.feature_pool": ("cls", "mean"),
    "train.optimizer": ("adamw", "lars", "sgd"),
    "eval.probe_optimizer": ("lars", "sgd"),
    "eval.finetune_head": ("probe", "new"),
}
# (low, high, inclusive?) ; None = unbounded on that side; inclusive may name the brackets, "(]"
RANGES = {
    "data.pretrain_fraction": (0.0, 1.0, "(]"),
    "eval.finetune_layer_decay": (0.0, 1.0, "(]"),
    "eval.finetune_drop_path": (0.0, 1.0, "[)"),
    "eval.finetune_label_smoothing": (0.0, 1.0, "[)"),
    "eval.finetune_weight_decay": (0.0, None, True),
    "eval.finetune_warmup_epochs": (0.0, None, True),
    "eval.finetune_base_lr": (0.0, None, False),
    "data.num_classes": (2, 10, True),
    "data.noise": (0.0, None, True),
    "data.texture": (0.0, None, True),
    "data.max_shift": (0.0, 1.0, True),
    "data.val_fraction": (0.0, 0.5, False),
    "augment.flip_p": (0.0, 1.0, True),
    "augment.jitter_p": (0.0, 1.0, True),
    "augment.gray_p": (0.0, 1.0, True),
    "augment.blur_p": (0.0, 1.0, True),
    "augment.jitter_strength": (0.0, None, True),
    "train.base_lr": (0.0, None, False),
    "train.min_lr": (0.0, None, True),
    "train.weight_decay": (0.0, None, True),
    "train.warmup_epochs": (0.0, None, True),
    "eval.probe_weight_decay": (0.0, None, True),
    "eval.probe_warmup_epochs": (0, None, True),
    "eval.finetune_epochs": (0, None, True),
    "eval.knn_temperature": (0.0, None, False),
}
# Keys that must be positive integers wherever they appear.
POSITIVE_INTS = {
    "data.image_size", "data.cache_size", "data.decode_workers", "data.num_train", "data.num_val",
    "data.num_test", "data.val_per_class", "model.patch_size", "model.depth", "train.epochs",
    "train.steps", "train.batch_size", "train.accum_steps", "train.log_every",
    "eval.batch_size", "eval.probe_epochs", "eval.probe_batch_size",
    "eval.knn_k", "eval.finetune_batch_size", "eval.finetune_max_train",
}
# Keys whose default is null, with the type they take when set.
NULLABLE = {"name": str, "data.root": str, "data.cache_dir": str, "data.cache_size": int,
            "data.decode_workers": int, "model.depth": int, "train.grad_clip": float,
            "train.steps": int,
            "eval.batch_size": int, "eval.finetune_max_train": int}
# Two-number ranges [low, high] with 0 < low <= high.
PAIRS = {"data.scale", "augment.crop_scale", "augment.crop_ratio", "train.betas",
         "eval.finetune_crop_scale"}


def yaml_error(e: Exception) -> str:
    """PyYAML's multi-line error as one phrase: what is wrong, and where."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = " ".join(str(getattr(e, "problem", None) or e).split())
    context = getattr(e, "context", None)
    return f"{' '.join(context.split()) + ': ' if context else ''}{what}{where}"


def load_defaults() -> dict:
    """defaults.yaml (what every method shares) and each registered method's own keys."""
    with open(DEFAULTS_FILE) as f:
        d = yaml.safe_load(f)
    for name, m in METHODS.items():
        d[name] = {k: copy.deepcopy(key.default) for k, key in m.keys.items()}
    return d


def method_defaults(method: str) -> dict:
    """What a method changes of the shared defaults (its papers' recipe, in its file)."""
    return METHODS[method].defaults if method in METHODS else {}


def constraints() -> tuple[dict, dict, set, dict]:
    """(CHOICES, RANGES, POSITIVE_INTS, NULLABLE) with every registered method's keys."""
    keys = {f"{name}.{k}": key for name, m in METHODS.items() for k, key in m.keys.items()}
    choices = {**CHOICES, "method": tuple(METHODS),
               **{k: v.choices for k, v in keys.items() if v.choices}}
    ranges = {**RANGES, **{k: v.range for k, v in keys.items() if v.range}}
    positive = POSITIVE_INTS | {k for k, v in keys.items() if v.positive_int}
    nullable = {**NULLABLE, **{k: v.nullable for k, v in keys.items() if v.nullable}}
    return choices, ranges, positive, nullable


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
        f"Fix the key, or see sslnb/defaults.yaml for every key with its meaning."
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
    if isinstance(value, int):
        return "epochs", value
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(min|steps?|epochs?)\s*", str(value))
    if not m or float(m.group(1)) <= 0:
        raise ParamsError(f"key 'train.checkpoint_every' is {value!r}; accepted: a positive number "
                          f"with a unit, e.g. 10min, 500steps, 1epoch (or an integer of epochs).")
    unit = {"min": "min", "step": "steps", "steps": "steps", "epoch": "epochs",
            "epochs": "epochs"}[m.group(2)]
    return unit, float(m.group(1))


def _validate(p: dict, defaults_flat: dict, source_of: dict[str, str]) -> None:
    choices, ranges, positive_ints, nullable = constraints()
    flat = flatten(p)
    for key, value in flat.items():
        src = source_of.get(key, "defaults")
        default = defaults_flat[key]

        def fail(accepted: str) -> None:
            raise ParamsError(
                f"{src}: key '{key}' is {value!r} ({_type_name(value)}); accepted: {accepted}. "
                f"Fix it in {src} or override it with --set {key}=VALUE."
            )

        if key == "train.checkpoint_every":
            try:
                checkpoint_interval(value)
            except ParamsError:
                fail("a positive number with a unit: 10min, 500steps, 1epoch (or an integer of "
                     "epochs)")
            continue
        if key == "resume":
            if value not in (False, True, "auto"):
                fail("false, true or auto (continue from the run's checkpoint when there is one)")
            continue
        if key == "eval.finetune_blocks":
            if not (isinstance(value, list) and value and all(
                    x == "all" or (type(x) is int and x >= 1) for x in value)):
                fail("a list of how many of the last blocks (ViT) or stages (ResNet) fine-tuning "
                     "trains: positive integers and/or 'all' (end to end), e.g. [1, 2, all]")
            continue
        if key == "train.snapshots":
            if not ((type(value) is int and value >= 0) or (
                    isinstance(value, list) and value and all(type(x) is int and x >= 0
                                                              for x in value))):
                fail("a number of evenly spaced snapshots (0: none), or a list of the optimizer "
                     "steps to keep, e.g. [0, 100, 250] (the last step is always kept)")
            continue
        if key == "augment.jitter_bcsh":
            if value is not None and not (
                    isinstance(value, list) and len(value) == 4
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                            and math.isfinite(x) and x >= 0 for x in value) and value[3] <= 0.5):
                fail("null (amplitudes from augment.jitter_strength) or four amplitudes "
                     "[brightness, contrast, saturation, hue], each >= 0, hue <= 0.5, e.g. "
                     "[0.4, 0.4, 0.2, 0.1]")
            continue
        if key == "data.pretrain_classes":
            ok = (value is None or (isinstance(value, int) and not isinstance(value, bool)
                                    and value >= 1) or isinstance(value, str)
                  or (isinstance(value, list) and value and all(isinstance(x, str) for x in value)))
            if not ok:
                fail("null (all classes), a positive integer N (the first N classes), or a list of "
                     "class ids and/or Kaggle folders such as [train.X1]")
            continue
        if value is None:
            if key in nullable:
                continue
            fail(f"a {_type_name(default)} like the default {default!r} (null is not allowed here)")
        want = nullable.get(key, type(default))
        if want is float and isinstance(value, str):  # PyYAML reads 1e-3 (no dot) as a string
            try:
                value = float(value)
                _set(p, key, value)
            except ValueError:
                pass
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
            _set(p, key, value)
        if want is list:
            if key in PAIRS:
                ok = (isinstance(value, list) and len(value) == 2
                      and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                              and math.isfinite(x) for x in value)
                      and 0 <= value[0] <= value[1])
                if not ok:
                    fail("a list [low, high] of two numbers with 0 <= low <= high")
            elif not (isinstance(value, list) and len(value) == len(default)
                      and all(isinstance(x, (int, float)) and math.isfinite(x) for x in value)):
                fail(f"a list of {len(default)} numbers like {default}")
            continue
        if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
            fail(f"a {want.__name__}" + (" or null" if key in nullable else ""))
        if want is float and not math.isfinite(value):
            fail("a finite number (not .nan or .inf)")
        if key in choices and value not in choices[key]:
            close = difflib.get_close_matches(str(value), choices[key], n=1)
            fail(" | ".join(choices[key]) + (f" (did you mean '{close[0]}'?)" if close else ""))
        if key in positive_ints and value < 1:
            fail("a positive integer")
        if key in ranges:
            lo, hi, inclusive = ranges[key]
            brackets = inclusive if isinstance(inclusive, str) else "[]" if inclusive else "()"
            bad = ((lo is not None and (value < lo if brackets[0] == "[" else value <= lo))
                   or (hi is not None and (value > hi if brackets[1] == "]" else value >= hi)))
            if bad:
                fail(f"a number in {brackets[0]}{lo if lo is not None else '-inf'}, "
                     f"{hi if hi is not None else 'inf'}{brackets[1]}")
    _check_consistency(p, source_of)


def _check_consistency(p: dict, source_of: dict[str, str]) -> None:
    METHODS[p["method"]].check(p, source_of)
    depths = [k for k in p["eval"]["finetune_blocks"] if k != "all"]
    if depths and p["eval"]["finetune_epochs"] > 0:
        from .encoders import num_blocks
        n = num_blocks(p)
        if max(depths) > n:
            src = source_of.get("eval.finetune_blocks", "defaults")
            raise ParamsError(
                f"{src}: key 'eval.finetune_blocks' lists {max(depths)}, but the encoder "
                f"({p['model']['encoder']}) has {n} "
                f"{'stages' if p['model']['encoder'].startswith('resnet') else 'blocks'}; "
                f"accepted: integers from 1 to {n} and/or 'all' (end to end). Fix it in {src} "
                f"or override it with --set eval.finetune_blocks=[1,{n}].")


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
        candidates = (path.parent / base, ROOT_PARAMS.parent / base, Path(base)) \
            if isinstance(base, str) and base else ()
        found = [c for c in candidates if c.is_file()]
        if not found or found[0].resolve() in seen:
            what = "a file that extends it in turn" if found else "no run params file"
            raise ParamsError(f"{path}: key 'extends' is {base!r}, {what}. Name another run "
                              f"params file (relative to this file's folder or to the "
                              f"repository), e.g. extends: params/demo/simclr_resnet18.yaml.")
        path = found[0]


def effective(p: dict) -> dict:
    """A run's params as what it reads, flattened: without the sections of other methods and the
    keys of the other encoder family (a ViT run has a `model.stem` it never reads), and without
    where or how it was launched (out_dir, resume). Two runs with equal effective params are the
    same run."""
    from .encoders import FAMILY_PARAMS, family
    fam = family(p["model"]["encoder"])
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
    _validate(p, known, source_of)
    return p


def save(p: dict, path: Path) -> None:
    path.write_text(yaml.safe_dump(p, sort_keys=False))
