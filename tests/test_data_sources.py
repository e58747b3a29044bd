"""File-backed sources and the decode-once cache, on image trees the tests write themselves:
the Kaggle ImageNet-100 layout, a full-ImageNet layout, a plain ImageFolder, and CIFAR offline."""
import json
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from sslnb.data import _cached, _listing, cache, example_trees, layouts, load_split
from sslnb.errors import DataError
from sslnb.params import resolve


def data_params(**kw):
    d = resolve(None, {"data." + k: v for k, v in kw.items()})["data"]
    return d


@pytest.fixture(scope="module")
def kaggle_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("in100")
    example_trees.kaggle(root, classes=4, per_class=12, val_per_class=4, awkward=True)
    return root


@pytest.fixture
def fresh():
    clear()  # the in-process memo; the on-disk cache is what these tests watch
    yield
    clear()


def clear():
    _cached.cache_clear()
    _listing.cache_clear()


def test_kaggle_layout_builds_cache_and_counts_bad_files(kaggle_tree, tmp_path, fresh):
    d = data_params(source="imagenet100", root=str(kaggle_tree), cache_dir=str(tmp_path),
                    image_size=32, decode_workers=2, val_per_class=2)
    train, val = load_split(d, "train"), load_split(d, "val")
    skipped = {s["file"].split("/")[-1]: s["reason"]
               for s in train.info["skipped"] + val.info["skipped"]}
    assert set(skipped) == {"corrupt.JPEG", "truncated.JPEG"}
    assert "truncated" in skipped["truncated.JPEG"]
    files = json.loads((next(tmp_path.glob("imagenet100-train-*")) / "index.json").read_text())
    val_files = json.loads((next(tmp_path.glob("imagenet100-val-*")) / "index.json").read_text())
    names = {f.split("/")[-1] for f in files["files"] + val_files["files"]}
    assert {"gray.JPEG", "cmyk.JPEG", "alpha.png", "tiny.JPEG"} <= names
    # 48 + 6 awkward files - 2 unreadable, val carved from them (2 per class)
    assert len(train) + len(val) == 4 * 12 + 4 and len(train) == files["count"]
    assert len(val) + len(val.info["skipped"]) == 8 and not set(files["files"]) & set(val_files["files"])
    assert train.images.dtype == torch.uint8 and train.images.shape[1:] == (3, 32, 32)
    assert train.classes == tuple(sorted(layouts.cmc_classes()[:4]))
    assert train.names[train.classes[0]].startswith("class ")
    # labels follow the folders: every image of a class folder carries that class
    for f, lab in zip(files["files"], files["labels"]):
        assert f.split("/")[1] == train.classes[lab]
    test = load_split(d, "test")  # Kaggle's val.X
    assert len(test) == 16 and set(test.labels.tolist()) == {0, 1, 2, 3}
    assert any("differs from the standard ImageNet-100 list" in n for n in train.info["notes"])


def test_pretrain_classes_take_the_study_chunk(kaggle_tree, tmp_path, fresh):
    d = data_params(source="imagenet100", root=str(kaggle_tree), cache_dir=str(tmp_path),
                    image_size=32, pretrain_classes=["train.X1"])
    pre, train = load_split(d, "pretrain"), load_split(d, "train")
    x1 = sorted(p.name for p in (kaggle_tree / "train.X1").iterdir())
    assert pre.used_classes() == x1 and len(x1) == 2
    assert len(pre) == int(sum((train.labels == train.classes.index(c)).sum() for c in x1))
    assert pre.images.data_ptr() == train.images.data_ptr()  # a view of the cache, not a copy
    two = load_split({**d, "pretrain_classes": 3}, "pretrain")
    assert two.used_classes() == list(train.classes[:3])
    with pytest.raises(DataError, match="n00000000.*train.X1, train.X2"):
        load_split({**d, "pretrain_classes": ["n00000000"]}, "pretrain")


def test_decoding_converts_modes_and_composites_alpha_on_white(kaggle_tree):
    folder = kaggle_tree / "train.X1" / sorted(layouts.cmc_classes()[:4])[0]
    with Image.open(folder / "alpha.png") as im:
        rgba = np.asarray(im.convert("RGBA")).astype(np.float64)
        size = min(im.size)
    a = rgba[..., 3:] / 255
    want = rgba[..., :3] * a + 255 * (1 - a)  # alpha over white
    got = cache.decode(str(folder / "alpha.png"), size).transpose(1, 2, 0).astype(np.float64)
    left = (rgba.shape[1] - size) // 2
    assert np.abs(got - want[:, left:left + size]).mean() < 2.0
    for name in ("gray.JPEG", "cmyk.JPEG", "tiny.JPEG"):
        out = cache.decode(str(folder / name), 48)
        assert out.shape == (3, 48, 48) and out.dtype == np.uint8
    gray = cache.decode(str(folder / "gray.JPEG"), 48)
    assert (gray[0] == gray[1]).all() and (gray[1] == gray[2]).all()


def test_cache_is_reused_and_a_changed_param_or_file_makes_a_new_one(kaggle_tree, tmp_path, fresh):
    tree = tmp_path / "tree"
    shutil.copytree(kaggle_tree, tree)
    d = data_params(source="imagenet100", root=str(tree), cache_dir=str(tmp_path / "c"),
                    image_size=32)
    load_split(d, "test")
    (folder,) = (tmp_path / "c").glob("imagenet100-test-*")
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in folder.iterdir()}
    clear()
    again = load_split(d, "test")
    assert {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in folder.iterdir()} == before
    assert len(again) == 16
    assert cache.verify(folder)  # the index's checksum is that of the pixels
    clear()
    load_split({**d, "cache_size": 40}, "test")  # another size: another cache
    assert len(list((tmp_path / "c").glob("imagenet100-test-*"))) == 2
    clear()
    src = next((tree / "val.X").iterdir())
    shutil.copy(next(src.iterdir()), src / "added.JPEG")  # the dataset changed: not stale
    assert len(load_split(d, "test")) == 17
    assert len(list((tmp_path / "c").glob("imagenet100-test-*"))) == 3
    assert not list((tmp_path / "c").glob("*.partial*"))
    with open(folder / "pixels.u8", "r+b") as f:  # one flipped byte is caught
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    assert not cache.verify(folder)


def test_full_imagenet_layout_is_filtered_to_the_standard_100(tmp_path, fresh):
    root = example_trees.imagenet(tmp_path / "imagenet", per_class=1, val_per_class=1,
                                  sizes=(48, 40), extra_classes=2)
    d = data_params(source="imagenet", root=str(root), cache_dir=str(tmp_path / "c"),
                    image_size=32)
    train = load_split(d, "train")
    assert train.classes == tuple(sorted(layouts.cmc_classes())) and len(train) == 100
    assert not any(c.startswith("n9999999") for c in train.used_classes())
    shutil.rmtree(root / "val" / train.classes[7])
    clear()
    with pytest.raises(DataError, match=f"1 of the 100 ImageNet-100 classes are missing.*{train.classes[7]}"):
        load_split(d, "test")


def test_imagefolder_holds_out_a_seeded_fraction_per_class(tmp_path, fresh):
    root = example_trees.imagefolder(tmp_path / "folder", classes=3, per_class=10, sizes=(40, 30))
    d = data_params(source="imagefolder", root=str(root), cache_dir=str(tmp_path / "c"),
                    image_size=32, val_fraction=0.2)
    tr, va, te = (layouts.imagefolder(root, s, 0.2, 0) for s in ("train", "val", "test"))
    assert not set(tr.files) & set(va.files) and not set(va.files) & set(te.files)
    assert not set(tr.files) & set(te.files) and len(va.files) == len(te.files) == 6
    assert len(tr.files) + 12 == 30
    assert va.files == layouts.imagefolder(root, "val", 0.2, 0).files  # same seed, same split
    assert va.files != layouts.imagefolder(root, "val", 0.2, 1).files
    assert [va.labels.count(k) for k in range(3)] == [2, 2, 2] == [te.labels.count(k) for k in range(3)]
    assert [len(load_split(d, s)) for s in ("train", "val", "test")] == [18, 6, 6]


def test_empty_class_folder_and_missing_root_are_named(tmp_path, fresh):
    root = example_trees.imagefolder(tmp_path / "folder", classes=2, per_class=3, sizes=(40, 30))
    (root / "empty_class").mkdir()
    with pytest.raises(DataError, match="empty_class"):
        layouts.imagefolder(root, "train", 0.2, 0)
    with pytest.raises(DataError, match="train.X1"):
        layouts.kaggle_imagenet100(root, "train")  # not the Kaggle layout: says what is expected
    with pytest.raises(DataError, match="does not exist"):
        layouts.imagefolder(tmp_path / "nope", "train", 0.2, 0)


def test_cache_refuses_when_the_disk_is_too_small(tmp_path):
    with pytest.raises(DataError, match=r"needs [\d.]+ GiB.*SSLNB_CACHE"):
        cache._check_disk(tmp_path, n=10**9, size=224)  # 150 TB: no test machine has it
    assert not list(tmp_path.iterdir())


def test_cifar_offline_names_the_missing_files(tmp_path, fresh):
    d = data_params(source="cifar10", root=str(tmp_path), download=False)
    with pytest.raises(DataError, match=f"{tmp_path}/cifar-10-batches-py.*data_batch_1"):
        load_split(d, "train")


def test_tiny_pretrain_and_probe_on_the_kaggle_layout(kaggle_tree, tmp_path, cli):
    f = tmp_path / "in100_tiny.yaml"
    f.write_text(yaml.safe_dump({
        "method": "mae", "out_dir": str(tmp_path / "logs"), "device": "cpu",
        "data": {"source": "imagenet100", "root": str(kaggle_tree), "image_size": 32,
                 "cache_size": 40, "cache_dir": str(tmp_path / "c"),
                 "pretrain_classes": ["train.X1"]},
        "model": {"patch_size": 8, "depth": 1},
        "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
        "train": {"epochs": 1, "batch_size": 8, "log_every": 1},
        "eval": {"probe_epochs": 2, "finetune_epochs": 0}}))
    r = cli("pretrain", "--params", f)
    assert r.returncode == 0, r.stderr
    run = tmp_path / "logs" / "in100_tiny"
    data = json.loads((run / "data.json").read_text())
    x1 = sorted(p.name for p in (kaggle_tree / "train.X1").iterdir())
    labels = json.loads((kaggle_tree / "Labels.json").read_text())
    assert data["classes"] == [{"id": c, "name": labels[c]} for c in x1]
    assert data["skipped_count"] == 2
    r = cli("evaluate", "--run", run)
    assert r.returncode == 0, r.stderr
    result = json.loads((run / "eval.json").read_text())
    assert result["pretrained"]["probe_val_top1"] >= 0
    feats = torch.load(next((run / "features").glob("pretrained_test_*.pt")), weights_only=True)
    assert feats["features"].shape[0] == 16 and len(feats["classes"]) == 4  # all classes probed
