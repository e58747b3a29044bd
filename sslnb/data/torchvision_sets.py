"""CIFAR-10, CIFAR-100 and STL-10 through torchvision: already uint8 arrays, so no decode cache.

Parts: `train` and `test` (the official sets) and STL-10's `unlabeled` (the 100k images made for
self-supervised pretraining). `sslnb.data` makes the splits of them: test = the official test set,
val carved from train, pretraining on train (+ unlabeled for STL-10).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import DataError

FILES = {
    "cifar10": "cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
    "cifar100": "cifar-100-python/{train, test, meta}",
    "stl10": "stl10_binary/{train_X.bin, train_y.bin, test_X.bin, test_y.bin, unlabeled_X.bin}",
}
SOURCES = tuple(FILES)


def default_root() -> Path:
    return Path("~/.cache/sslnb/torchvision").expanduser()


def load(source: str, root: str | None, part: str, download: bool) -> tuple[torch.Tensor, torch.Tensor, tuple]:
    """(uint8 images (N, 3, H, W), int64 labels, class names) of `train`, `test` or (STL-10)
    `unlabeled`."""
    from torchvision import datasets
    base = Path(root).expanduser() if root else default_root()
    try:
        if source == "stl10":
            ds = datasets.STL10(str(base), split=part, download=download)
            x = torch.from_numpy(ds.data)
            y = torch.from_numpy(ds.labels.astype(np.int64))  # -1 for unlabeled
        else:
            cls = datasets.CIFAR10 if source == "cifar10" else datasets.CIFAR100
            ds = cls(str(base), train=part == "train", download=download)
            x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
            y = torch.tensor(ds.targets, dtype=torch.int64)
    except (RuntimeError, OSError) as e:  # torchvision: "Dataset not found or corrupted"
        how = ("Downloading failed (no internet?): " if download else
               "data.download is false and the files are not there: ")
        raise DataError(
            f"{how}{source} needs {base}/{FILES[source]} ({type(e).__name__}: "
            f"{str(e).strip()[:160]}). Copy those files there (data.root = '{base}'), or "
            f"run once with internet and data.download: true.") from None
    return x, y, tuple(ds.classes)
