"""Where the images of a split are on disk: the file lists of the folder layouts users bring.

- `imagenet100`: ImageNet-100 as Kaggle ships it (dataset ambityga/imagenet100): train.X1 ...
  train.X4 (25 class folders each), val.X (100 class folders), Labels.json (wnid -> name).
- `imagenet`: a full ImageNet tree, train/<wnid>/ and val/<wnid>/, filtered to the 100 classes of
  the CMC paper (imagenet100_classes.txt, shipped beside this file; credits in docs/references.md).
- `imagefolder`: any tree of class folders: root/train/<class> with root/test/<class> and/or
  root/val/<class>, or root/<class> alone.

Three splits, disjoint by construction and checked by path (`check_disjoint`): `test` is the
official held-out set (Kaggle's val.X, ImageNet's val/, an image folder's test/ or else val/), never
used for a choice; `val`, where every choice is made, is carved from the training folders
(`data.val_per_class` images of each class, seeded by data.seed; an image folder that has both val/
and test/ keeps its own); `train` is the rest. A flat image folder holds out `data.val_fraction` of
each class for val and as much again for test.

A listing is only names and paths; decoding happens once, in `cache.py`.
"""
from __future__ import annotations

import glob
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
CMC_CLASSES_FILE = Path(__file__).with_name("imagenet100_classes.txt")
KAGGLE_DIRS = ("/kaggle/input/imagenet100", "/kaggle/input/imagenet-100")


@dataclass
class Listing:
    """The files of one split with their labels (indices into `classes`, sorted class ids)."""
    root: Path
    split: str
    files: list[Path]
    labels: list[int]
    classes: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)   # class id -> readable name
    groups: dict[str, str] = field(default_factory=dict)  # class id -> folder it came from
    notes: list[str] = field(default_factory=list)        # what the report should say


def cmc_classes() -> list[str]:
    """The standard ImageNet-100 class list (CMC, Tian et al. 2019), in its published order."""
    return CMC_CLASSES_FILE.read_text().split()


def _images_in(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it
                      if e.is_file() and Path(e.name).suffix.lower() in IMAGE_SUFFIXES)


def _class_dirs(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return sorted(Path(e.path) for e in it if e.is_dir() and not e.name.startswith("."))


def _require_dir(path: Path, what: str, fix: str) -> None:
    if not path.is_dir():
        raise DataError(f"data.root: {what} '{path}' does not exist or is not a directory. {fix}")


def _collect(root: Path, split: str, dirs: list[Path], classes: list[str],
             fix: str) -> tuple[list[Path], list[int]]:
    """Files of class folders `dirs`, labelled by their position in `classes`; an empty class
    folder is an error that names it (a half-copied dataset should not train silently)."""
    index = {c: i for i, c in enumerate(classes)}
    files, labels, empty = [], [], []
    for d in dirs:
        found = _images_in(d)
        if not found:
            empty.append(str(d))
        files += found
        labels += [index[d.name]] * len(found)
    if empty:
        raise DataError(f"data.root '{root}': {len(empty)} class folder(s) of split '{split}' hold "
                        f"no images ({', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''}). "
                        f"Accepted files: {', '.join(sorted(IMAGE_SUFFIXES))}. {fix}")
    return files, labels


def find_root(source: str, root: str | None) -> Path:
    """data.root, or on Kaggle the attached ImageNet-100 dataset under /kaggle/input."""
    if root is not None:
        return Path(root).expanduser()
    if source == "imagenet100":
        candidates = [Path(d) for d in KAGGLE_DIRS] + [
            Path(p).parent for p in sorted(glob.glob("/kaggle/input/*/Labels.json")
                                           + glob.glob("/kaggle/input/*/*/Labels.json"))]
        for c in candidates:
            if (c / "train.X1").is_dir():
                return c
    raise DataError(
        f"data.root is not set and data.source is '{source}'. Set data.root (or `make report "
        f"DATA=/path`) to the dataset directory: for imagenet100 the folder holding train.X1 ... "
        f"train.X4, val.X and Labels.json (on Kaggle, add the dataset 'ambityga/imagenet100' and it "
        f"is found under /kaggle/input; on Colab, mount Drive and use /content/drive/MyDrive/...); "
        f"for imagenet the folder holding train/<wnid>/ and val/<wnid>/; for imagefolder a folder "
        f"of class folders.")


def kaggle_imagenet100(root: Path, split: str) -> Listing:
    """train: every train.X* folder in order (so train.X1's images come first); val: val.X."""
    fix = ("Point data.root at the folder holding train.X1 ... train.X4, val.X and Labels.json "
           "(Kaggle dataset ambityga/imagenet100).")
    _require_dir(root, "ImageNet-100 folder", fix)
    chunks = sorted(d for d in _class_dirs(root) if d.name.startswith("train.X"))
    if not chunks:
        raise DataError(f"data.root '{root}' has no train.X1 ... folders, so it is not the Kaggle "
                        f"ImageNet-100 layout. {fix} For a full ImageNet tree use "
                        f"data.source: imagenet; for any class-folder tree, imagefolder.")
    _require_dir(root / "val.X", "validation folder", fix)
    train_dirs = [d for c in chunks for d in _class_dirs(c)]
    val_dirs = _class_dirs(root / "val.X")
    classes = sorted({d.name for d in train_dirs})
    groups = {d.name: d.parent.name for d in train_dirs}
    only_val = sorted({d.name for d in val_dirs} - set(classes))
    only_train = sorted(set(classes) - {d.name for d in val_dirs})
    if only_val or only_train:
        raise DataError(f"data.root '{root}': the class folders of train.X* and val.X differ "
                        f"(only in train: {only_train[:10]}, only in val.X: {only_val[:10]}). "
                        f"A probe needs the same classes in both; re-download or fix the copy.")
    names = {}
    if (root / "Labels.json").is_file():
        try:
            names = {k: str(v) for k, v in json.loads((root / "Labels.json").read_text()).items()}
        except (json.JSONDecodeError, AttributeError):
            raise DataError(f"'{root / 'Labels.json'}' is not a JSON object of wnid -> name. "
                            f"{fix}") from None
    dirs = train_dirs if split == "train" else val_dirs
    files, labels = _collect(root, split, dirs, classes, fix)
    listing = Listing(root, split, files, labels, tuple(classes), names, groups)
    listing.notes.append(_compare_with_cmc(classes))
    return listing


def _compare_with_cmc(classes: list[str]) -> str:
    cmc = set(cmc_classes())
    extra, missing = sorted(set(classes) - cmc), sorted(cmc - set(classes))
    if not extra and not missing:
        return f"The {len(classes)} classes are exactly the standard ImageNet-100 list (CMC)."
    parts = [f"{len(extra)} classes not in it ({_few(extra)})" if extra else "",
             f"{len(missing)} of its classes missing ({_few(missing)})" if missing else ""]
    return ("The class set differs from the standard ImageNet-100 list (CMC): "
            + "; ".join(x for x in parts if x) + ".")


def _few(items: list[str], k: int = 8) -> str:
    return ", ".join(items[:k]) + (" ..." if len(items) > k else "")


def imagenet(root: Path, split: str) -> Listing:
    """A full ImageNet tree (train/<wnid>/, val/<wnid>/) restricted to the CMC ImageNet-100."""
    fix = ("Point data.root at an ImageNet folder with train/<wnid>/ and val/<wnid>/ (validation "
           "images sorted into class folders, e.g. by the usual valprep.sh).")
    _require_dir(root, "ImageNet folder", fix)
    folder = root / split
    _require_dir(folder, f"'{split}' folder", fix)
    classes = sorted(cmc_classes())
    missing = [c for c in classes if not (folder / c).is_dir()]
    if missing:
        loose = any(f.suffix.lower() in IMAGE_SUFFIXES for f in folder.iterdir())
        raise DataError(f"data.root '{root}': {len(missing)} of the 100 ImageNet-100 classes are "
                        f"missing under '{folder}' ({', '.join(missing[:8])}"
                        f"{' ...' if len(missing) > 8 else ''})."
                        + (" The folder holds loose images: validation images must be sorted "
                           "into class folders." if loose else "") + f" {fix}")
    files, labels = _collect(root, split, [folder / c for c in classes], classes, fix)
    return Listing(root, split, files, labels, tuple(classes),
                   notes=["Classes: the standard ImageNet-100 list (CMC), from a full ImageNet."])


def imagefolder(root: Path, split: str, val_fraction: float, seed: int) -> Listing:
    """One folder of root/train/<class> + root/{val,test}/<class> (split = the folder's name), or
    for a flat root/<class> tree the split 'train', 'val' or 'test' drawn per class: val_fraction
    for val, as much for test, the rest for train."""
    fix = ("Expected root/train/<class>/<image> with root/test/<class>/<image> and/or "
           "root/val/<class>/<image>, or root/<class>/<image> (split into train/val/test by "
           "data.val_fraction).")
    _require_dir(root, "image folder", fix)
    if (root / "train").is_dir():
        if not any((root / d).is_dir() for d in ("val", "test")):
            raise DataError(f"data.root '{root}' has train/ but neither val/ nor test/: the report "
                            f"needs held-out images. {fix}")
        _require_dir(root / split, f"'{split}' folder", fix)
        dirs = _class_dirs(root / split)
        classes = sorted(d.name for d in _class_dirs(root / "train"))
        unknown = sorted({d.name for d in dirs} - set(classes))
        if unknown:
            raise DataError(f"data.root '{root}': val/ has classes that train/ lacks: {unknown[:10]}. "
                            f"{fix}")
        if not dirs:
            raise DataError(f"data.root '{root}': no class folders under '{root / split}'. {fix}")
        files, labels = _collect(root, split, dirs, classes, fix)
        return Listing(root, split, files, labels, tuple(classes))
    dirs = _class_dirs(root)
    if not dirs:
        raise DataError(f"data.root '{root}' holds no class folders. {fix}")
    classes = [d.name for d in dirs]
    files, labels = [], []
    all_files, all_labels = _collect(root, split, dirs, classes, fix)
    rng = random.Random(seed)
    for k in range(len(classes)):
        mine = [f for f, lab in zip(all_files, all_labels) if lab == k]
        rng.shuffle(mine)
        n_out = max(1, round(len(mine) * val_fraction)) if len(mine) > 2 else 0
        parts = {"val": mine[:n_out], "test": mine[n_out:2 * n_out], "train": mine[2 * n_out:]}
        chosen = sorted(parts[split])
        files += chosen
        labels += [k] * len(chosen)
    return Listing(root, split, files, labels, tuple(classes),
                   notes=[f"Validation and test: {val_fraction:.0%} of each class folder each, drawn "
                          f"with seed {seed}."])


def carve(train: Listing, split: str, per_class: int, seed: int) -> Listing:
    """The 'train' or 'val' part of a training listing: `per_class` images of each class (at most
    a fifth of it, at least one) drawn with `seed` for val, the others for train."""
    rng = random.Random(seed)
    files, labels = [], []
    for k in range(len(train.classes)):
        mine = [f for f, lab in zip(train.files, train.labels) if lab == k]
        if not mine:
            continue
        rng.shuffle(mine)
        n_val = min(per_class, max(1, len(mine) // 5)) if len(mine) > 1 else 0
        chosen = sorted(mine[:n_val] if split == "val" else mine[n_val:])
        files += chosen
        labels += [k] * len(chosen)
    return Listing(train.root, split, files, labels, train.classes, train.names, train.groups,
                   [*train.notes, f"Validation: {per_class} images of each class carved from the "
                                  f"training folders with seed {seed}; test: the held-out folder."])


def check_disjoint(listings: dict[str, Listing]) -> None:
    """No file in two splits (by resolved path): a test image seen in training would flatter."""
    seen: dict[Path, str] = {}
    for split, listing in listings.items():
        for f in listing.files:
            key = f.resolve()
            if key in seen and seen[key] != split:
                raise DataError(f"data.root '{listing.root}': '{f}' is in both the '{seen[key]}' "
                                f"and the '{split}' split. Splits must be disjoint: remove the "
                                f"duplicate from one of the folders.")
            seen[key] = split
