import pytest

from sslnb.errors import ParamsError
from sslnb.params import resolve


def write(tmp_path, text):
    f = tmp_path / "run.yaml"
    f.write_text(text)
    return f


def test_method_defaults_then_file_then_overrides(tmp_path):
    f = write(tmp_path, "method: simclr\ntrain:\n  epochs: 3\n")
    p = resolve(f, ["train.epochs=5", "simclr.temperature=0.2"])
    assert p["name"] == "run" and p["model"]["encoder"] == "resnet18"
    assert p["train"]["optimizer"] == "lars" and p["augment"]["jitter_p"] == 0.8
    assert p["train"]["epochs"] == 5 and p["simclr"]["temperature"] == 0.2
    assert resolve(f, {"train": {"epochs": 7}})["train"]["epochs"] == 7


def test_unknown_key_names_file_and_closest_key(tmp_path):
    f = write(tmp_path, "train:\n  epoch: 3\n")
    with pytest.raises(ParamsError) as e:
        resolve(f)
    msg = str(e.value)
    assert str(f) in msg and "'train.epoch'" in msg and "Did you mean 'train.epochs'" in msg


def test_wrong_type_and_range_and_choice(tmp_path):
    with pytest.raises(ParamsError, match=r"train\.batch_size.*accepted: a int"):
        resolve(write(tmp_path, "train:\n  batch_size: many\n"))
    with pytest.raises(ParamsError, match=r"mae\.mask_ratio.*\(0\.0, 1\.0\)"):
        resolve(None, ["mae.mask_ratio=1.0"])
    with pytest.raises(ParamsError, match=r"precision.*auto \| fp32 \| bf16 \| fp16"):
        resolve(write(tmp_path, "precision: bf17\n"))
    with pytest.raises(ParamsError, match="did you mean 'simclr'"):
        resolve(None, ["method=simclrr"])
    with pytest.raises(ParamsError, match="positive integer"):
        resolve(None, ["train.epochs=0"])


def test_consistency_checks():
    with pytest.raises(ParamsError, match="not divisible by model.patch_size"):
        resolve(None, ["data.image_size=30"])
    with pytest.raises(ParamsError, match="at least 2 images"):
        resolve(None, ["method=simclr", "train.batch_size=1"])


def test_malformed_yaml_and_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="malformed YAML"):
        resolve(write(tmp_path, "train: [1,\n"))
    with pytest.raises(ParamsError, match="not found"):
        resolve(tmp_path / "nope.yaml")


def test_yaml_exponent_without_dot_is_a_float():
    assert resolve(None, ["train.base_lr=1e-3"])["train"]["base_lr"] == 1e-3
