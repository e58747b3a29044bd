"""Data sources. Each split is an `ImageSet`: uint8 images (N, 3, S, S), int64 labels and class
ids, so that augmentation runs on whole batches on the training device.

Splits: `pretrain` (what self-supervised training sees: the train split, or the classes of it
that `data.pretrain_classes` picks, e.g. the study's 25 classes of train.X1), `train` (the probe's
labelled images, all classes), `val` (where every choice is made) and `test` (what the report
shows, never used for a choice). File-backed sources are decoded once into a memory-mapped cache (`cache.py`); later runs
open it in seconds.
"""
from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..errors import DataError
from . import cache, layouts, shapes, torchvision_sets

SPLITS = ("pretrain", "train", "val", "test")
FILE_SOURCES = ("imagefolder", "imagenet100", "imagenet")
TORCHVISION_SOURCES = ("cifar10", "cifar100", "stl10")
# The data keys only some sources read (every other data key applies to all): a report's
# parameter tables hide a key its run's source never reads.
SOURCE_PARAMS = {
    **{f"data.{k}": ("shapes",) for k in ("num_train", "num_val", "num_test", "num_classes",
                                          "scale", "max_shift", "noise", "texture")},
    **{f"data.{k}": FILE_SOURCES for k in ("cache_dir", "cache_size", "decode_workers")},
    "data.root": FILE_SOURCES + TORCHVISION_SOURCES,
    "data.val_per_class": FILE_SOURCES + TORCHVISION_SOURCES,
    "data.val_fraction": ("imagefolder",),
    "data.download": TORCHVISION_SOURCES,
}


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, S, S); memory-mapped for cached sources
    labels: torch.Tensor  # int64 (N,)
    classes: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)  # class id -> readable name, when known
    info: dict = field(default_factory=dict)  # where it came from: cache, skipped files, notes

    def __len__(self) -> int:
        return self.labels.numel()

    def stratified(self, n: int | None, seed: int = 0) -> "ImageSet":
        """n images taken evenly from every class, seeded: a shuffle, then each class's first
        image, each class's second, and so on. File-backed splits are stored sorted by class, so
        the first n images would be one or two classes."""
        if n is None or n >= len(self):
            return self
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        labels = self.labels[perm] + 1  # -1 (unlabelled) becomes its own group
        by_class = torch.argsort(labels, stable=True)
        sorted_labels = labels[by_class]
        group_start = torch.searchsorted(sorted_labels, sorted_labels, right=False)
        rank = torch.arange(len(self)) - group_start  # position within its class
        turn = torch.argsort(rank * (int(labels.max()) + 1) + sorted_labels, stable=True)[:n]
        return self.take(torch.sort(perm[by_class[turn]]).values)

    def take(self, rows: torch.Tensor) -> "ImageSet":
        """These rows; a contiguous range stays a view (of the memory-mapped cache), others copy."""
        contiguous = rows.numel() > 0 and bool((rows.diff() == 1).all())
        images = (self.images[int(rows[0]):int(rows[-1]) + 1] if contiguous
                  else self.images[rows])
        return ImageSet(images, self.labels[rows], self.classes, self.names, self.info)

    def fingerprint(self) -> str:
        """A content hash of the images, their labels and class names: two runs' predictions are
        compared only when they were made on the same fingerprint (sslnb.report.compare)."""
        h = hashlib.blake2b(digest_size=12)
        h.update(json.dumps([list(self.images.shape), list(self.classes)]).encode())
        flat = self.images.reshape(len(self), -1)
        for start in range(0, len(self), 1024):  # memory-mapped sources stream in chunks
            h.update(flat[start:start + 1024].contiguous().numpy().tobytes())
        h.update(self.labels.to(torch.int64).numpy().tobytes())
        return h.hexdigest()

    def used_classes(self) -> list[str]:
        return [self.classes[i] for i in torch.unique(self.labels).tolist() if i >= 0]


def load_split(data: dict, split: str) -> ImageSet:
    """The `pretrain`, `train`, `val` or `test` split described by a resolved params['data']
    section. The splits are disjoint, which is checked once per data section (by path for file
    trees, by content hash for generated and torchvision data)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    guard(split)
    src = data["source"]
    if src == "shapes":
        out = _shapes_split(data, split)
    elif src in torchvision_sets.SOURCES:
        out = _torchvision_split(src, data["root"], split, data["download"], data["image_size"],
                                 data["val_per_class"], data["seed"])
    else:
        part = "train" if split == "pretrain" else split
        if split == "pretrain" and data["pretrain_classes"] is not None:  # before decoding
            listing = _listing(src, data["root"], part, data["val_fraction"],
                               data["val_per_class"], data["seed"])
            check_classes(data["pretrain_classes"], listing.classes, listing.groups)
        size = data["cache_size"] or data["image_size"]
        out = _cached(src, data["root"], part, size, data["cache_dir"], data["val_fraction"],
                      data["val_per_class"], data["seed"], data["decode_workers"])
    if split == "pretrain" and data["pretrain_classes"] is not None:
        out = select_classes(out, data["pretrain_classes"])
    if split == "pretrain" and data["pretrain_fraction"] < 1:
        out = out.take(fraction_rows(out.labels, data["pretrain_fraction"], data["seed"]))
    check_disjoint(data)
    return out


_choosing = False


def guard(split: str) -> None:
    """Raise when the test split is read inside `choosing()` (cached features check this too)."""
    if _choosing and split == "test":
        raise DataError("the test split was read while choosing (a recipe search, a sweep, early "
                        "stopping): choices are made on 'val' only, so that test stays unbiased. "
                        "Read 'val' where something is picked, and 'test' only to report it.")


class choosing:
    """`with choosing(): ...` marks code that picks something (a best lr, a recipe, an epoch):
    reading the test split inside it raises, so test is never tuned on."""
    def __enter__(self):
        global _choosing
        self.outer, _choosing = _choosing, True
        return self

    def __exit__(self, *exc):
        global _choosing
        _choosing = self.outer


def check_disjoint(data: dict) -> None:
    """Raise DataError when an image is in two of train, val and test (cached per data section)."""
    _check_disjoint(json.dumps({k: v for k, v in data.items()
                                if k not in ("decode_workers", "placement", "cache_dir")},
                               sort_keys=True, default=str))


@functools.lru_cache(maxsize=8)
def _check_disjoint(key: str) -> None:
    data = json.loads(key)
    src = data["source"]
    if src in FILE_SOURCES:
        layouts.check_disjoint({s: _listing(src, data["root"], s, data["val_fraction"],
                                            data["val_per_class"], data["seed"])
                                for s in ("train", "val", "test")})
        return
    sets = {s: (_shapes_split(data, s) if src == "shapes" else _torchvision_split(
        src, data["root"], s, data["download"], data["image_size"], data["val_per_class"],
        data["seed"])) for s in ("train", "val", "test")}
    seen: dict[bytes, str] = {}
    for split, d in sets.items():
        for i, h in enumerate(content_hashes(d.images)):
            if seen.setdefault(h, split) != split:
                raise DataError(f"data ({src}): image {i} of the '{split}' split is also in the "
                                f"'{seen[h]}' split; the splits must be disjoint. For shapes, "
                                f"use more varied data (data.noise > 0); for {src}, check the files.")


def content_hashes(images: torch.Tensor) -> list[bytes]:
    """A 16-byte digest of each image's pixels."""
    flat = images.reshape(len(images), -1).numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in flat]


SHAPES_SEED_OFFSET = {"pretrain": 0, "train": 0, "val": 1, "test": 2}


def _shapes_split(data: dict, split: str) -> ImageSet:
    num = {"val": data["num_val"], "test": data["num_test"]}.get(split, data["num_train"])
    # A seed per split: validation and test images are never training images.
    seed = data["seed"] * 3 + SHAPES_SEED_OFFSET[split]
    return _shapes(num, data["image_size"], data["num_classes"], seed, tuple(data["scale"]),
                   data["max_shift"], data["noise"], data["texture"])


@functools.lru_cache(maxsize=6)
def _shapes(num, image_size, num_classes, seed, scale, max_shift, noise, texture):
    images, labels = shapes.generate(num, image_size, num_classes, seed, scale, max_shift,
                                     noise, texture)
    return ImageSet(images, labels, shapes.CLASSES[:num_classes], info={"source": "shapes"})


def carve_rows(labels: torch.Tensor, split: str, per_class: int, seed: int) -> torch.Tensor:
    """Sorted row indices of the 'val' part (per_class of each class, at most a fifth of it, drawn
    with seed) or the 'train' part (the rest) of a labelled set; unlabelled rows (-1) are train."""
    g = torch.Generator().manual_seed(seed)
    is_val = torch.zeros(len(labels), dtype=torch.bool)
    for k in torch.unique(labels).tolist():
        if k < 0:
            continue
        rows = torch.nonzero(labels == k).flatten()
        n_val = min(per_class, max(1, len(rows) // 5)) if len(rows) > 1 else 0
        is_val[rows[torch.randperm(len(rows), generator=g)[:n_val]]] = True
    return torch.nonzero(is_val if split == "val" else ~is_val).flatten()


def fraction_rows(labels: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    """Sorted rows keeping `fraction` of each class (at least one; unlabelled rows as one more
    class), drawn with seed. Each class's rows are drawn in one seeded order, so a smaller
    fraction keeps a subset of what a larger one keeps: the data-scale sweep only adds images."""
    g = torch.Generator().manual_seed(seed)
    keep = []
    for k in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == k).flatten()
        order = rows[torch.randperm(len(rows), generator=g)]
        keep.append(order[:max(1, round(len(rows) * fraction))])
    return torch.sort(torch.cat(keep)).values


def _torchvision_split(source, root, split, download, image_size, per_class, seed) -> ImageSet:
    if split == "test":
        return _torchvision(source, root, "test", download, image_size)
    train = _torchvision(source, root, "train", download, image_size)
    out = train.take(carve_rows(train.labels, "val" if split == "val" else "train", per_class, seed))
    if split == "pretrain" and source == "stl10":  # + the 100k images made for pretraining
        extra = _torchvision(source, root, "unlabeled", download, image_size)
        out = ImageSet(torch.cat([out.images, extra.images]), torch.cat([out.labels, extra.labels]),
                       out.classes, out.names, out.info)
    return out


@functools.lru_cache(maxsize=4)
def _torchvision(source, root, part, download, image_size):
    images, labels, classes = torchvision_sets.load(source, root, part, download)
    if images.shape[-1] != image_size:
        from torchvision.transforms.v2.functional import resize
        images = torch.cat([resize(images[i:i + 4096], [image_size, image_size], antialias=True)
                            for i in range(0, len(images), 4096)])
    return ImageSet(images, labels, classes, info={"source": source})


@functools.lru_cache(maxsize=8)
def _listing(source, root, split, val_fraction, val_per_class, seed) -> layouts.Listing:
    """train/val/test file lists: test is the official held-out folder, val is carved from the
    training folders (see layouts.py)."""
    base = layouts.find_root(source, root)
    if source == "imagefolder":
        if not (base / "train").is_dir():  # a flat tree: all three drawn per class
            return layouts.imagefolder(base, split, val_fraction, seed)
        has_test, has_val = (base / "test").is_dir(), (base / "val").is_dir()
        if split == "test":
            return replace(layouts.imagefolder(base, "test" if has_test else "val", val_fraction,
                                               seed), split="test")
        if split == "val" and has_test and has_val:
            return layouts.imagefolder(base, "val", val_fraction, seed)
        if split == "train" and has_test and has_val:
            return layouts.imagefolder(base, "train", val_fraction, seed)
        return layouts.carve(layouts.imagefolder(base, "train", val_fraction, seed), split,
                             val_per_class, seed)
    official = layouts.kaggle_imagenet100 if source == "imagenet100" else layouts.imagenet
    if split == "test":
        return replace(official(base, "val"), split="test")
    return layouts.carve(official(base, "train"), split, val_per_class, seed)


@functools.lru_cache(maxsize=4)
def _cached(source, root, split, size, cache_dir, val_fraction, val_per_class, seed,
            workers) -> ImageSet:
    listing = _listing(source, root, split, val_fraction, val_per_class, seed)
    base = listing.root
    target = Path(cache_dir).expanduser() if cache_dir else cache.default_dir()
    folder = cache.find(listing, source, size, target)
    if folder is None:
        folder = cache.build(listing, source, size, target, workers)
    images, index = cache.load(folder)
    info = {"source": source, "root": str(base), "cache": str(folder), "count": index["count"],
            "skipped": index["skipped"], "notes": index["notes"], "groups": index["groups"],
            "build_seconds": index["build_seconds"], "images_per_s": index["images_per_s"]}
    return ImageSet(images, torch.tensor(index["labels"], dtype=torch.int64),
                    tuple(index["classes"]), index["names"], info)


def check_classes(choice, classes, groups: dict) -> set[str]:
    """The class ids data.pretrain_classes names: an int N (the first N classes), or a list of
    class ids and/or Kaggle chunk folders such as 'train.X1' (every class of that folder)."""
    if isinstance(choice, int):
        if not 1 <= choice <= len(classes):
            raise DataError(f"data.pretrain_classes={choice}, but the dataset has "
                            f"{len(classes)} classes; use 1 to {len(classes)} or null.")
        return set(classes[:choice])
    else:
        items = [choice] if isinstance(choice, str) else list(choice)
        wanted, unknown = set(), []
        for item in items:
            in_group = {c for c, g in groups.items() if g == item}
            if in_group:
                wanted |= in_group
            elif item in classes:
                wanted.add(item)
            else:
                unknown.append(item)
        if unknown:
            folders = sorted(set(groups.values()))
            raise DataError(
                f"data.pretrain_classes names classes that are not there: {unknown[:10]}. Accepted: "
                f"class ids of this dataset (e.g. {', '.join(classes[:3])})"
                + (f" or the folders {', '.join(folders)}" if folders else "")
                + ", an integer N (the first N classes), or null (all classes).")
        return wanted


def select_classes(data: ImageSet, choice) -> ImageSet:
    """The rows of the classes that data.pretrain_classes names (see check_classes)."""
    wanted = check_classes(choice, data.classes, data.info.get("groups", {}))
    keep = torch.tensor([c in wanted for c in data.classes])
    rows = torch.nonzero(keep[data.labels.clamp_min(0)] & (data.labels >= 0)).flatten()
    return data.take(rows)
