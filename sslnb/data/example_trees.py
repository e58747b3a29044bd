"""Small image trees in the folder layouts sslnb reads, written from the `shapes` generator: for
the tests, the benchmarks, and trying a source without downloading anything.

    python -m sslnb.data.example_trees kaggle /tmp/in100 --per-class 40

Each class folder holds JPEGs of one shape class at photo-like sizes (non-square, varied), so
decoding, resizing and centre-cropping do real work. `awkward=True` adds the files a real dataset
has: a corrupt file, a truncated JPEG, a grayscale and a CMYK JPEG, a PNG with alpha and an image
smaller than the crop.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from . import shapes
from .layouts import cmc_classes

KAGGLE_CHUNKS = 2  # train.X1, train.X2 (the real dataset has 4)


def _photos(n: int, label: int, seed: int, sizes: tuple[int, int], grain: float = 0.0):
    """n PIL images of shape class `label`, upsampled to photo-like sizes around `sizes`; `grain`
    adds per-pixel noise (std in 0-255 units) so JPEGs weigh what photos weigh."""
    from PIL import Image
    imgs, _ = shapes.generate(n * 10, 96, 10, seed)
    imgs = imgs[label::10][:n]
    g = torch.Generator().manual_seed(seed + label)
    out = []
    for img in imgs:
        w = int(sizes[0] * (0.8 + 0.4 * torch.rand((), generator=g)))
        h = int(sizes[1] * (0.8 + 0.4 * torch.rand((), generator=g)))
        big = F.interpolate(img[None].float(), size=(h, w), mode="bilinear", align_corners=False)
        if grain:
            big = big + grain * torch.randn(big.shape, generator=g)
        out.append(Image.fromarray(big[0].round().clamp(0, 255).byte().permute(1, 2, 0).numpy()))
    return out


def _write_class(folder: Path, n: int, label: int, seed: int, sizes, grain: float = 0.0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(_photos(n, label, seed, sizes, grain)):
        im.save(folder / f"{folder.name}_{i:05d}.JPEG", quality=90)


def add_awkward_files(folder: Path) -> dict[str, str]:
    """The files real datasets contain, in one class folder; returns {kind: file name}."""
    base = _photos(1, 0, 123, (120, 90))[0]
    files = {"corrupt": "corrupt.JPEG", "truncated": "truncated.JPEG", "gray": "gray.JPEG",
             "cmyk": "cmyk.JPEG", "alpha": "alpha.png", "tiny": "tiny.JPEG"}
    (folder / files["corrupt"]).write_bytes(b"this is not an image" * 20)
    base.save(folder / "full.tmp", format="JPEG", quality=90)
    data = (folder / "full.tmp").read_bytes()
    (folder / "full.tmp").unlink()
    (folder / files["truncated"]).write_bytes(data[: len(data) // 2])
    base.convert("L").save(folder / files["gray"], quality=90)
    base.convert("CMYK").save(folder / files["cmyk"], quality=90)
    rgba = base.convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / files["alpha"])
    base.resize((12, 9)).save(folder / files["tiny"], quality=90)
    return files


def kaggle(root: Path, classes: int = 4, per_class: int = 12, val_per_class: int = 4,
           seed: int = 0, sizes=(160, 120), awkward: bool = False) -> Path:
    """ImageNet-100 as Kaggle ships it: train.X1, train.X2 (half the classes each), val.X,
    Labels.json; class ids are the first `classes` of the standard list so names look real."""
    wnids = sorted(cmc_classes()[:classes])
    for k, wnid in enumerate(wnids):
        chunk = f"train.X{1 + k * KAGGLE_CHUNKS // classes}"
        _write_class(root / chunk / wnid, per_class, k % 10, seed, sizes)
        _write_class(root / "val.X" / wnid, val_per_class, k % 10, seed + 1, sizes)
    (root / "Labels.json").write_text(json.dumps({w: f"class {shapes.CLASSES[k % 10]}"
                                                  for k, w in enumerate(wnids)}))
    if awkward:
        add_awkward_files(root / "train.X1" / wnids[0])
    return root


def imagenet(root: Path, per_class: int = 2, val_per_class: int = 1, seed: int = 0,
             sizes=(96, 72), extra_classes: int = 2) -> Path:
    """A full-ImageNet layout (train/<wnid>/, val/<wnid>/) holding the 100 standard classes plus
    a few others that the ImageNet-100 filter must leave out."""
    wnids = cmc_classes() + [f"n9999999{i}" for i in range(extra_classes)]
    for k, wnid in enumerate(wnids):
        _write_class(root / "train" / wnid, per_class, k % 10, seed, sizes)
        _write_class(root / "val" / wnid, val_per_class, k % 10, seed + 1, sizes)
    return root


def imagefolder(root: Path, classes: int = 3, per_class: int = 10, seed: int = 0,
                sizes=(96, 72), grain: float = 0.0) -> Path:
    """root/<class>/ with no train/val split (sslnb holds out data.val_fraction)."""
    for k in range(classes):
        _write_class(root / shapes.CLASSES[k], per_class, k, seed, sizes, grain)
    return root


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m sslnb.data.example_trees", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("layout", choices=("kaggle", "imagenet", "imagefolder"))
    ap.add_argument("root", type=Path)
    ap.add_argument("--per-class", type=int, default=12)
    ap.add_argument("--classes", type=int, default=4)
    args = ap.parse_args(argv)
    if args.layout == "kaggle":
        kaggle(args.root, args.classes, args.per_class, awkward=True)
    elif args.layout == "imagenet":
        imagenet(args.root, args.per_class)
    else:
        imagefolder(args.root, args.classes, args.per_class)
    print(args.root)


if __name__ == "__main__":
    main()
