"""Data sources. Each returns an `ImageSet`: uint8 images (N, 3, S, S), int64 labels and class
names, so that augmentation runs on whole batches on the training device.

The seam for larger sources (#4: ImageNet-100, the decode-once cache) is `load_split`: anything that
returns an ImageSet (or a memory-mapped one) plugs into training and evaluation unchanged.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import DataError
from . import shapes

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 (N, 3, S, S)
    labels: torch.Tensor  # int64 (N,)
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return self.labels.numel()

    def subset(self, n: int | None) -> "ImageSet":
        """The first n images (the order is already shuffled for generated data)."""
        return self if n is None or n >= len(self) else ImageSet(
            self.images[:n], self.labels[:n], self.classes)


@functools.lru_cache(maxsize=4)
def _shapes(num, image_size, num_classes, seed, scale, max_shift, noise, texture):
    images, labels = shapes.generate(num, image_size, num_classes, seed, scale, max_shift,
                                     noise, texture)
    return ImageSet(images, labels, shapes.CLASSES[:num_classes])


def load_split(data: dict, split: str) -> ImageSet:
    """The `train` or `val` split described by a resolved params['data'] section."""
    if split not in ("train", "val"):
        raise ValueError(f"split must be 'train' or 'val', not {split!r}")
    if data["source"] == "shapes":
        num = data["num_train"] if split == "train" else data["num_val"]
        # Different seeds per split: validation images are never training images.
        seed = data["seed"] * 2 + (split == "val")
        return _shapes(num, data["image_size"], data["num_classes"], seed,
                       tuple(data["scale"]), data["max_shift"], data["noise"], data["texture"])
    return _imagefolder(data["root"], split, data["image_size"])


def _imagefolder(root: str | None, split: str, size: int) -> ImageSet:
    """root/<split>/<class>/<image>: decoded once, short side resized to `size`, centre-cropped."""
    if root is None:
        raise DataError("data.root is not set, but data.source is 'imagefolder'. Set data.root to "
                        "a directory holding train/<class>/ and val/<class>/ image folders.")
    base = Path(root).expanduser()
    if not base.is_dir():
        raise DataError(f"data.root '{base}' does not exist or is not a directory. Set data.root "
                        f"to a directory holding train/<class>/ and val/<class>/ image folders "
                        f"(or use data.source: shapes, which needs no files).")
    folder = base / split
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    if not classes:
        raise DataError(f"data.root '{base}': no class folders under '{folder}'. Expected "
                        f"{folder}/<class>/<image> files.")
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import center_crop, resize
    images, labels, skipped = [], [], 0
    for k, c in enumerate(classes):
        files = sorted(f for f in (folder / c).iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        for f in files:
            try:
                img = decode_image(str(f), mode=ImageReadMode.RGB)
            except (RuntimeError, ValueError):
                skipped += 1
                continue
            img = center_crop(resize(img, [size], antialias=True), [size, size])
            images.append(img)
            labels.append(k)
    if not images:
        raise DataError(f"data.root '{base}': no readable images under '{folder}' "
                        f"({skipped} unreadable). Accepted: {', '.join(sorted(IMAGE_SUFFIXES))}.")
    return ImageSet(torch.stack(images), torch.tensor(labels), tuple(classes))
