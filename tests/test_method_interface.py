"""The method interface, proven by a method that lives outside sslnb (tests/toy_method.py): its
keys are checked like the shared ones, its two view sizes and its after-step teacher run in the
training loop, and it goes through pretraining, evaluation and a real report (papermill kernels
that load it through SSLNB_METHODS) with nothing in sslnb changed."""
import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from conftest import ROOT
from sslnb import methods
from sslnb.errors import ParamsError
from sslnb.params import resolve

TESTS = ROOT / "tests"
SMALL = {"method": "toy", "data.num_train": 128, "data.num_val": 64, "data.num_test": 64,
         "train.epochs": 2, "train.batch_size": 32, "train.warmup_epochs": 0.5,
         "train.snapshots": 2, "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 1}


@pytest.fixture
def toy():
    import toy_method
    methods.register(toy_method.METHOD)
    yield toy_method.METHOD
    methods.METHODS.pop("toy", None)  # the other tests see the registered methods only


def test_a_methods_keys_are_checked_as_the_shared_ones(toy):
    p = resolve(None, {"method": "toy"})
    assert p["toy"] == {"scale": 1.0, "width": None, "momentum": 0.9}
    assert p["model"]["encoder"] == "resnet18" and p["train"]["base_lr"] == 1.0e-3  # its recipe
    assert resolve(None, {"method": "toy", "toy.width": 3})["toy"]["width"] == 3
    for key, bad, accepted in (("toy.scale", -1.0, "(0.0, inf)"), ("toy.width", 0, "positive"),
                               ("toy.momentum", 1.5, "[0.0, 1.0]"), ("toy.scale", "x", "float")):
        with pytest.raises(ParamsError, match="toy") as e:
            resolve(None, {"method": "toy", key: bad})
        assert key in str(e.value) and accepted in str(e.value), str(e.value)
    with pytest.raises(ParamsError, match="Did you mean 'toy.scale'"):
        resolve(None, {"method": "toy", "toy.scael": 2.0})


def test_two_view_sizes_and_a_teacher_updated_after_every_step(toy, tmp_path):
    from sslnb.checkpoint import load_checkpoint
    from sslnb.train import pretrain
    p = resolve(None, {**SMALL, "out_dir": str(tmp_path), "name": "toy"})
    torch.manual_seed(p["seed"])
    start = methods.build_model(p).teacher.state_dict()
    run = pretrain(p)
    state = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    steps = json.loads((run / "summary.json").read_text())["steps"]
    assert steps == 8 and int(state["updates"]) == steps  # 128 / 32 x 2 epochs, one update each
    moved = [k for k, v in start.items() if k.endswith("weight") and
             not torch.equal(v, state[f"teacher.{k}"])]
    assert moved, "the teacher never moved"
    # the teacher is a momentum average: it never receives a gradient of its own
    assert all(not prm.requires_grad for prm in methods.build_model(p).teacher.parameters())


@pytest.mark.slow
def test_a_method_in_its_own_file_runs_through_a_report(tmp_path):
    """pretrain -> evaluate -> report in papermill kernels, the method loaded by SSLNB_METHODS:
    its title, its shown key and its citation reach the page."""
    params = tmp_path / "toy.yaml"
    params.write_text(yaml.safe_dump(SMALL))
    report = tmp_path / "toy_report.yaml"
    report.write_text(yaml.safe_dump({"title": "Toy", "runs": [{"params": str(params)}]}))
    env = {**os.environ, "SSLNB_METHODS": "toy_method",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "sslnb", "report", "--params", str(report),
                        "--report-dir", str(tmp_path / "report"), "--graphs-dir",
                        str(tmp_path / "graphs"), "--set", f"out_dir={tmp_path / 'logs'}"],
                       cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "Toy ResNet-18" in page and "toy.scale" in page and "a test of sslnb" in page
    assert json.loads((tmp_path / "logs" / "toy" / "eval.json").read_text())["pretrained"]
