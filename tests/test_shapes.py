import torch

from sslnb.data import load_split, shapes
from sslnb.params import resolve


def test_same_seed_same_images_and_other_seed_other_images():
    a, la = shapes.generate(64, seed=3)
    b, lb = shapes.generate(64, seed=3)
    c, _ = shapes.generate(64, seed=4)
    assert torch.equal(a, b) and torch.equal(la, lb) and not torch.equal(a, c)


def test_balanced_classes_and_nuisance_varies_within_a_class():
    x, y = shapes.generate(200, image_size=32, num_classes=10, seed=0)
    assert x.dtype == torch.uint8 and x.shape == (200, 3, 32, 32)
    assert torch.bincount(y).tolist() == [20] * 10
    disks = x[y == 0].float()
    assert disks.mean(dim=(2, 3)).std(dim=0).min() > 20  # colours vary a lot within the class


def test_splits_are_disjoint_and_sized_by_params():
    p = resolve(None, {"data.num_train": 50, "data.num_val": 20, "data.num_classes": 5})
    tr, va = load_split(p["data"], "train"), load_split(p["data"], "val")
    assert len(tr) == 50 and len(va) == 20 and tr.classes == shapes.CLASSES[:5]
    assert int(tr.labels.max()) == 4
    assert not any(torch.equal(v, t) for v in va.images[:5] for t in tr.images)
