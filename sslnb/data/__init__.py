"""Data sources. Each split is an `ImageSet`: uint8 images (N, 3, S, S), int64 labels and class
ids, so that augmentation runs on whole batches on the training device.

Splits: `pretrain` (what self-supervised training sees; `data.pretrain_classes` picks a subset,
e.g. the study's 25 classes of train.X1), `train` (the probe's labelled images, all classes) and
`val`. File-backed sources are decoded once into a memory-mapped cache (`cache.py`); later runs
open it in seconds.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import DataError
from . import cache, layouts, shapes, torchvision_sets

SPLITS = ("pretrain", "train", "val")
FILE_SOURCES = ("imagefolder", "imagenet100", "imagenet")


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

    def used_classes(self) -> list[str]:
        return [self.classes[i] for i in torch.unique(self.labels).tolist() if i >= 0]


def load_split(data: dict, split: str) -> ImageSet:
    """The `pretrain`, `train` or `val` split described by a resolved params['data'] section."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    src = data["source"]
    if src == "shapes":
        num = data["num_train"] if split != "val" else data["num_val"]
        # Different seeds per split: validation images are never training images.
        seed = data["seed"] * 2 + (split == "val")
        out = _shapes(num, data["image_size"], data["num_classes"], seed,
                      tuple(data["scale"]), data["max_shift"], data["noise"], data["texture"])
    elif src in torchvision_sets.SOURCES:
        out = _torchvision(src, data["root"], split, data["download"], data["image_size"])
    else:
        part = "val" if split == "val" else "train"
        if split == "pretrain" and data["pretrain_classes"] is not None:  # before decoding
            listing = _listing(src, data["root"], part, data["val_fraction"], data["seed"])
            check_classes(data["pretrain_classes"], listing.classes, listing.groups)
        size = data["cache_size"] or data["image_size"]
        out = _cached(src, data["root"], part, size, data["cache_dir"], data["val_fraction"],
                      data["seed"], data["decode_workers"])
    if split == "pretrain" and data["pretrain_classes"] is not None:
        out = select_classes(out, data["pretrain_classes"])
    return out


@functools.lru_cache(maxsize=4)
def _shapes(num, image_size, num_classes, seed, scale, max_shift, noise, texture):
    images, labels = shapes.generate(num, image_size, num_classes, seed, scale, max_shift,
                                     noise, texture)
    return ImageSet(images, labels, shapes.CLASSES[:num_classes], info={"source": "shapes"})


@functools.lru_cache(maxsize=4)
def _torchvision(source, root, split, download, image_size):
    images, labels, classes = torchvision_sets.load(source, root, split, download)
    if images.shape[-1] != image_size:
        from torchvision.transforms.v2.functional import resize
        images = torch.cat([resize(images[i:i + 4096], [image_size, image_size], antialias=True)
                            for i in range(0, len(images), 4096)])
    return ImageSet(images, labels, classes, info={"source": source})


@functools.lru_cache(maxsize=8)
def _listing(source, root, split, val_fraction, seed) -> layouts.Listing:
    base = layouts.find_root(source, root)
    if source == "imagenet100":
        return layouts.kaggle_imagenet100(base, split)
    if source == "imagenet":
        return layouts.imagenet(base, split)
    return layouts.imagefolder(base, split, val_fraction, seed)


@functools.lru_cache(maxsize=4)
def _cached(source, root, split, size, cache_dir, val_fraction, seed, workers) -> ImageSet:
    listing = _listing(source, root, split, val_fraction, seed)
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
