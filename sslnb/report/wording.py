"""How the report words things: counts, lists, dataset and class names.

Shared by the paper and the claims, which both phrase what was run; kept apart from both so
neither has to import the other.
"""
from __future__ import annotations


def plural(n: float, word: str) -> str:
    """'1 epoch', '4 epochs', '0.5 epochs'."""
    return f"{n:g} {word}" + ("" if n == 1 else "s")


def listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# How readers write each data source (the params say `imagenet100`; a paper says ImageNet-100).
DATASET_NAMES = {"shapes": "the embedded shapes data", "imagenet100": "ImageNet-100",
                 "imagenet": "ImageNet-100 (from a full ImageNet tree)",
                 "imagefolder": "an image folder", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                 "stl10": "STL-10"}


def dataset_name(source: str) -> str:
    return DATASET_NAMES.get(source, source)


def study_classes(d: dict) -> str:
    """', the classes of train.X1 (the study's pretraining set)' where that is what was kept."""
    kept = d.get("pretrain_classes")
    return (", the classes of train.X1 (the study's pretraining set)"
            if d["source"] == "imagenet100" and kept == ["train.X1"] else "")


def data_description(p: dict, pretrain_images: int) -> str:
    """What the encoders pretrained on, as the abstract says it."""
    d = p["data"]
    if d["source"] == "shapes":
        return (f"{int(pretrain_images):,} generated {d['image_size']}px images of {d['num_classes']} "
                f"shape classes (the embedded `shapes` data)")
    return (f"{dataset_name(d['source'])} at {d['image_size']}px ({int(pretrain_images):,} "
            f"pretraining images{study_classes(d)})")


def class_label(c: dict) -> str:
    """A class of data.json as a reader names it: 'name (id)', or the id when that is its name."""
    return c["id"] if c["name"] == c["id"] else f"{c['name']} ({c['id']})"
