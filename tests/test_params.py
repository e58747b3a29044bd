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


def test_a_run_file_extends_another(tmp_path):
    """`extends:` starts from another run file's keys (followed in turn), this file's over them;
    the run is named after the extending file; a missing or circular base is refused."""
    (tmp_path / "base.yaml").write_text("method: simclr\nsimclr:\n  temperature: 0.3\n"
                                        "train:\n  epochs: 7\n  batch_size: 64\n")
    (tmp_path / "mid.yaml").write_text("extends: base.yaml\ntrain:\n  epochs: 3\n")
    (tmp_path / "top.yaml").write_text("extends: mid.yaml\ntrain:\n  base_lr: 0.5\n")
    p = resolve(tmp_path / "top.yaml")
    assert p["method"] == "simclr" and p["simclr"]["temperature"] == 0.3
    assert (p["train"]["epochs"], p["train"]["batch_size"], p["train"]["base_lr"]) == (3, 64, 0.5)
    assert p["name"] == "top"
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    for bad, said in (("a.yaml", "extends it in turn"), ("c.yaml", "no run params file")):
        (tmp_path / "c_top.yaml").write_text(f"extends: {bad}\n")
        with pytest.raises(ParamsError, match=said):
            resolve(tmp_path / "c_top.yaml")
    (tmp_path / "wrong.yaml").write_text("extends: base.yaml\nsimclr:\n  temprature: 0.1\n")
    with pytest.raises(ParamsError, match="wrong.yaml.*temperature"):
        resolve(tmp_path / "wrong.yaml")  # the error names the file the key is in


def test_the_demo_simclr_vit_reads_what_it_always_read():
    """simclr_vit_tiny.yaml extends the SimCLR ResNet recipe and changes the encoder: what the
    run reads is what the file said before it extended anything."""
    from conftest import ROOT
    from sslnb.params import effective
    p = effective(resolve(ROOT / "params" / "demo" / "simclr_vit_tiny.yaml"))
    want = {"method": "simclr", "model.encoder": "vit_tiny_patch16_224", "model.patch_size": 4,
            "model.depth": 6, "model.feature_pool": "mean", "simclr.temperature": 0.2,
            "augment.crop_scale": [0.3, 1.0], "augment.gray_p": 0.8, "data.num_train": 5000,
            "train.epochs": 4, "train.batch_size": 32, "train.optimizer": "adamw",
            "train.base_lr": 4.0e-3, "train.weight_decay": 0.1, "train.warmup_epochs": 0.5}
    assert {k: p[k] for k in want} == want
    assert "model.stem" not in p and "model.zero_init_residual" not in p  # a ResNet's keys


def test_a_report_file_extends_another_by_the_run_files_rule(tmp_path):
    """One merge rule for `extends`: a report file's mappings merge key by key over its base's
    (its `set:` adds to the base's), lists are replaced, as in run files."""
    from sslnb.report import load
    (tmp_path / "base.yaml").write_text(
        "title: base\nset: {train.epochs: 1, data.num_train: 64}\n"
        "runs:\n  - params: params/demo/mae_vit_tiny.yaml\n")
    (tmp_path / "top.yaml").write_text("extends: base.yaml\nset: {train.epochs: 2}\n")
    spec = load(tmp_path / "top.yaml")
    assert spec.title == "base"
    p = spec.runs[0].resolved
    assert (p["train"]["epochs"], p["data"]["num_train"]) == (2, 64)
