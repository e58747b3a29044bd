"""The command line as a user meets it: sizes of the published models, and one-paragraph errors."""
import json
from pathlib import Path

import pytest

from conftest import ROOT, run_cli


@pytest.mark.parametrize("name, encoder_params", [
    ("mae_vit_s", 21.7e6), ("mae_vit_b", 85.8e6), ("simclr_r50", 23.5e6), ("simclr_vit_s", 21.7e6)])
def test_info_reports_published_encoder_sizes(cli, name, encoder_params):
    r = cli("info", "--params", ROOT / "params" / "imagenet100" / f"{name}.yaml")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert {"method", "encoder", "encoder_params", "total_params", "feature_dim",
            "image_size"} <= set(info)
    assert abs(info["encoder_params"] - encoder_params) / encoder_params < 0.01
    assert info["image_size"] == 224


def assert_one_paragraph_error(r, *phrases):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    err = r.stderr.strip()
    assert err.startswith("sslnb: error:") and "\n" not in err, err
    for ph in phrases:
        assert ph in err, (ph, err)


def test_unknown_key(tmp_path):
    """In a real subprocess: the exit code and stderr a shell sees."""
    f = tmp_path / "bad.yaml"
    f.write_text("method: mae\nmae:\n  mask_ration: 0.5\n")
    r = run_cli("pretrain", "--params", f, "--set", f"out_dir={tmp_path / 'logs'}")
    assert_one_paragraph_error(r, str(f), "mae.mask_ration", "mae.mask_ratio")
    assert not (tmp_path / "logs").exists()


def test_wrong_type(cli, tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text("train:\n  epochs: two\n")
    r = cli("pretrain", "--params", f, "--set", f"out_dir={tmp_path / 'logs'}")
    assert_one_paragraph_error(r, str(f), "train.epochs", "int")
    assert not (tmp_path / "logs").exists()


def test_missing_dataset_directory(cli, tmp_path):
    f = tmp_path / "bad.yaml"
    missing = tmp_path / "no_such_dataset"
    f.write_text(f"data:\n  source: imagefolder\n  root: {missing}\n")
    r = cli("pretrain", "--params", f, "--set", f"out_dir={tmp_path / 'logs'}")
    assert_one_paragraph_error(r, "data.root", str(missing))
    assert not (tmp_path / "logs").exists()


def test_existing_run_is_not_overwritten(cli, tmp_path):
    run = tmp_path / "logs" / "taken"
    run.mkdir(parents=True)
    (run / "keep.txt").write_text("precious")
    f = tmp_path / "taken.yaml"
    f.write_text("data:\n  num_train: 64\n  num_val: 16\ntrain:\n  batch_size: 32\n")
    r = cli("pretrain", "--params", f, "--set", f"out_dir={tmp_path / 'logs'}")
    assert_one_paragraph_error(r, str(run), "--resume", "--overwrite")
    assert (run / "keep.txt").read_text() == "precious"


def test_run_pretrains_and_evaluates_one_run(tmp_path, cli):
    """`python -m sslnb run`: the pipeline's two stages in one call, the run's directory and its
    evaluation printed; a second call reuses both (no checkpoint or eval.json rewritten)."""
    args = ["run", "--params", "params/demo/mae_vit_tiny.yaml", "--set", f"out_dir={tmp_path}",
            "--set", "data.num_train=64", "--set", "data.num_val=32", "--set", "data.num_test=32",
            "--set", "train.epochs=1", "--set", "train.batch_size=32", "--set", "model.depth=1",
            "--set", "mae.decoder_depth=1", "--set", "eval.probe_epochs=2",
            "--set", "eval.probe_warmup_epochs=1", "--set", "train.snapshots=0"]
    r = cli(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout)
    run = Path(out["run_dir"])
    assert run == tmp_path / "mae_vit_tiny" and 0 <= out["pretrained"]["probe_test_top1"] <= 100
    files = [run / "checkpoints" / "last.pt", run / "eval.json"]
    before = [f.stat().st_mtime_ns for f in files]
    assert cli(*args).returncode == 0
    assert [f.stat().st_mtime_ns for f in files] == before
