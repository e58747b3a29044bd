"""Nothing lost, nothing trusted blindly: kill -9 at random moments and resume; one clear error
per bad input with nothing written; crafted checkpoints refused; encoders exported for use
without sslnb."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import ROOT
from sslnb import pretrain, resolve
from sslnb.data import example_trees
from sslnb.params import checkpoint_interval
from sslnb.checkpoint import load_checkpoint, load_pretrained
from sslnb.runs import read_jsonl
from sslnb.train import checkpoint_due, out_of_memory_error
from conftest import assert_loads_without_sslnb, run_cli
from test_cli import assert_one_paragraph_error

TINY_MAE = {"method": "mae", "model": {"depth": 2, "patch_size": 4},
            "mae": {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2},
            "data": {"image_size": 16, "num_train": 96, "num_val": 32}, "device": "cpu",
            "train": {"batch_size": 16, "epochs": 3, "log_every": 1, "warmup_epochs": 0.5}}


def write_params(path: Path, out_dir: Path, **sections) -> Path:
    p = json.loads(json.dumps(TINY_MAE))
    for k, v in sections.items():
        if isinstance(v, dict):
            p.setdefault(k, {}).update(v)
        else:
            p[k] = v
    p["out_dir"] = str(out_dir)
    path.write_text(yaml.safe_dump(p))
    return path


def snapshot(root: Path) -> dict:
    return {str(f.relative_to(root)): (f.stat().st_size, f.stat().st_mtime_ns)
            for f in root.rglob("*")}


# ---------------------------------------------------------------- runs survive kills

@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_the_uninterrupted_run(tmp_path):
    """A subprocess is killed with SIGKILL a few times (after a random number of steps, and once
    while a checkpoint is being written); `resume: auto` restarts it with the same command each
    time. The final weights equal those of a run that was never interrupted, bitwise."""
    params = write_params(tmp_path / "killed.yaml", tmp_path / "logs", resume="auto",
                          train={"checkpoint_every": "1steps"})
    ref = pretrain(resolve(params, {"name": "ref", "resume": False}))
    run = tmp_path / "logs" / "killed"
    ckpts, steps_log = run / "checkpoints", run / "metrics" / "steps.jsonl"
    rng = random.Random(0)
    kills, mid_write, plans = [], 0, ["steps", "write", "steps"]
    env = {**os.environ, "SSLNB_PROGRESS": "0"}
    for attempt in range(12):
        plan = plans[len(kills)] if len(kills) < len(plans) else None
        done_before = len(read_jsonl(steps_log))
        target = done_before + rng.randint(1, 4)
        proc = subprocess.Popen([sys.executable, "-m", "sslnb", "pretrain", "--params", params],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killed = False
        while proc.poll() is None and plan is not None:
            if plan == "steps" and len(read_jsonl(steps_log)) >= target:
                killed = True
            elif plan == "write" and (list(ckpts.glob(".last.pt.*.tmp")) or (
                    (ckpts / "prev.pt").is_file() and not (ckpts / "last.pt").is_file())):
                killed, mid_write = True, mid_write + 1
            if killed:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.0 if plan == "write" else 0.005)
        out, err = proc.communicate(timeout=300)
        if killed:
            kills.append(plan)
            continue
        assert proc.returncode == 0, err.decode()[-2000:]
        break
    assert len(kills) == 3 and mid_write >= 1, (kills, mid_write)
    a = load_checkpoint(ref / "checkpoints" / "last.pt")
    b = load_checkpoint(ckpts / "last.pt")
    assert a["step"] == b["step"] == 18
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert [r["step"] for r in read_jsonl(steps_log)] == list(range(1, 19))  # none lost or twice
    assert not list(ckpts.glob("*.tmp"))


def test_checkpoint_holds_rng_states_and_params(tmp_path):
    run = pretrain(resolve(write_params(tmp_path / "r.yaml", tmp_path / "logs"),
                           {"train.epochs": 1}))
    state = load_checkpoint(run / "checkpoints" / "last.pt")
    assert {"model", "optimizer", "scaler", "step", "rng", "params", "method", "encoder"} <= set(state)
    assert {"python", "numpy", "torch", "cuda"} <= set(state["rng"])
    assert state["params"]["train.batch_size"] == 16


def test_checkpoint_interval_in_steps_minutes_or_epochs():
    assert checkpoint_interval("10min") == ("min", 10.0)
    assert checkpoint_interval("500steps") == ("steps", 500.0)
    assert checkpoint_interval("1epoch") == ("epochs", 1.0)
    assert checkpoint_interval(2) == ("epochs", 2)
    now = time.monotonic()
    assert checkpoint_due("min", 10, 5, 100, now - 601) and not checkpoint_due("min", 10, 5, 100, now)
    assert checkpoint_due("steps", 5, 10, 100, now) and not checkpoint_due("steps", 5, 11, 100, now)
    assert checkpoint_due("epochs", 2, 200, 100, now) and not checkpoint_due("epochs", 2, 100, 100, now)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, cli, monkeypatch):
    monkeypatch.setenv("SSLNB_PROGRESS", "0")
    f = write_params(tmp_path / "nan.yaml", tmp_path / "logs",
                     train={"base_lr": 1.0e+6, "warmup_epochs": 0.0, "checkpoint_every": "1steps",
                            "optimizer": "sgd"})
    r = cli("pretrain", "--params", f)
    assert_one_paragraph_error(r, "non-finite loss", "last good checkpoint", "precision")
    ckpts = tmp_path / "logs" / "nan" / "checkpoints"
    for name in ("last.pt", "prev.pt"):
        if (ckpts / name).is_file():
            state = load_checkpoint(ckpts / name)
            assert all(torch.isfinite(v).all() for v in state["model"].values()
                       if v.is_floating_point()), name


def test_out_of_memory_message_names_batch_memory_and_the_accumulation_that_fits():
    p = resolve(None, {"train.batch_size": 512, "train.accum_steps": 1})
    msg = str(out_of_memory_error(p, torch.device("cpu"), 1))
    assert "train.batch_size=512" in msg and "peak memory" in msg
    assert "--set train.batch_size=256 --set train.accum_steps=2" in msg


# ---------------------------------------------------------------- inputs checked first

def _tree_without_images(root: Path) -> Path:
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        (root / c / "notes.txt").write_text("no images here")
    return root


BAD_INPUTS = [  # (id, params file text or builder, phrases the message must hold)
    ("malformed_yaml", "train:\n  epochs: [1,\n", ["malformed YAML"]),
    ("unknown_key", "train:\n  epoch: 2\n", ["train.epoch", "train.epochs"]),
    ("wrong_type", "train:\n  batch_size: big\n", ["train.batch_size", "int"]),
    ("zero_batch", "train:\n  batch_size: 0\n", ["train.batch_size", "positive integer"]),
    ("zero_epochs", "train:\n  epochs: 0\n", ["train.epochs", "positive integer"]),
    ("negative_image_size", "data:\n  image_size: -32\n", ["data.image_size", "positive"]),
    ("mask_ratio_one", "mae:\n  mask_ratio: 1.0\n", ["mae.mask_ratio", "(0.0, 1.0)"]),
    ("simclr_batch_one", "method: simclr\ntrain:\n  batch_size: 1\n", ["at least 2"]),
    ("patch_does_not_divide", "data:\n  image_size: 30\nmodel:\n  patch_size: 4\n",
     ["not divisible", "model.patch_size"]),
    ("bad_checkpoint_every", "train:\n  checkpoint_every: 10 hours\n",
     ["train.checkpoint_every", "10min"]),
    ("root_missing", "data:\n  source: imagefolder\n  root: {tmp}/nowhere\n",
     ["data.root", "does not exist"]),
    ("root_empty", "data:\n  source: imagefolder\n  root: {tmp}/empty\n", ["no class folders"]),
    ("root_without_images", "data:\n  source: imagefolder\n  root: {tmp}/noimages\n",
     ["hold no images", "Accepted files"]),
    ("classes_not_there", "data:\n  source: imagefolder\n  root: {tmp}/folder\n"
     "  pretrain_classes: [disk, hexagon]\n", ["hexagon", "not there"]),
    ("out_dir_not_writable", "out_dir: {tmp}/afile/logs\n", ["out_dir", "cannot be written"]),
    ("unknown_encoder", "model:\n  encoder: vit_tiny_patch16_224x\n",
     ["model.encoder", "vit_tiny_patch16_224x", "cannot build"]),
    ("nan_learning_rate", "train:\n  base_lr: .nan\n", ["train.base_lr", "finite"]),
    ("inf_in_a_pair", "augment:\n  crop_scale: [0.2, .inf]\n", ["augment.crop_scale"]),
    ("binary_params_file", b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", ["not UTF-8 text"]),
]


@pytest.mark.parametrize("case, text, phrases", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
def test_each_bad_input_is_one_paragraph_and_writes_nothing(tmp_path, cli, case, text, phrases):
    (tmp_path / "empty").mkdir()
    _tree_without_images(tmp_path / "noimages")
    example_trees.imagefolder(tmp_path / "folder", classes=2, per_class=3, sizes=(40, 30))
    (tmp_path / "afile").write_text("a file where a folder should be")
    f = tmp_path / f"{case}.yaml"
    if isinstance(text, bytes):
        f.write_bytes(text)
    else:
        f.write_text(text.format(tmp=tmp_path))
    before = snapshot(tmp_path)
    r = cli("pretrain", "--params", f, "--set", f"data.cache_dir={tmp_path / 'cache'}",
            *(["--set", f"out_dir={tmp_path / 'logs'}"] if "out_dir" not in str(text) else []))
    assert_one_paragraph_error(r, *phrases)
    assert snapshot(tmp_path) == before


def test_a_failed_start_does_not_block_the_corrected_command(tmp_path, cli):
    """A start that died before its first checkpoint (e.g. killed while decoding) left only the
    files a run writes first: the next attempt replaces them instead of refusing. A directory
    holding anything else stays protected."""
    f = write_params(tmp_path / "retry.yaml", tmp_path / "logs", train={"epochs": 1})
    run = tmp_path / "logs" / "retry"
    (run / "metrics").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "params.yaml").write_text("method: mae\n")
    r = cli("pretrain", "--params", f)
    assert r.returncode == 0, r.stderr
    assert (run / "summary.json").is_file()
    other = tmp_path / "logs" / "other"
    (other / "checkpoints").mkdir(parents=True)
    (other / "notes.txt").write_text("mine")
    r = cli("pretrain", "--params", f, "--set", "name=other")
    assert_one_paragraph_error(r, "already holds a run")
    assert (other / "notes.txt").read_text() == "mine"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    mae = pretrain(resolve(write_params(tmp / "mae_run.yaml", tmp / "logs",
                                        model={"feature_pool": "mean"}), {"train.epochs": 1}))
    simclr = pretrain(resolve(None, {
        "method": "simclr", "name": "simclr_run", "out_dir": str(tmp / "logs"), "device": "cpu",
        "model.stem": "cifar", "simclr.proj_hidden_dim": 32, "simclr.proj_dim": 16,
        "data.image_size": 16, "data.num_train": 64, "data.num_val": 32, "train.epochs": 1,
        "train.batch_size": 16}))
    return mae, simclr


def test_checkpoint_from_another_method_is_refused(two_runs, cli, tmp_path):
    mae, simclr = two_runs
    import shutil
    run = tmp_path / "mixed"
    shutil.copytree(mae, run)
    shutil.copy(simclr / "checkpoints" / "last.pt", run / "checkpoints" / "last.pt")
    before = snapshot(run)
    r = cli("evaluate", "--run", run)
    assert_one_paragraph_error(r, "simclr/resnet18", "mae/vit_tiny_patch16_224")
    assert snapshot(run) == before


def test_report_naming_a_missing_run_file_writes_nothing(cli, tmp_path):
    f = tmp_path / "report.yaml"
    f.write_text("runs:\n  - params: params/demo/no_such_run.yaml\n")
    before = snapshot(tmp_path)
    r = cli("report", "--params", f, "--report-dir", tmp_path / "report")
    assert_one_paragraph_error(r, "no_such_run.yaml", "does not exist")
    assert snapshot(tmp_path) == before


def test_report_refuses_a_finetuning_depth_beyond_the_encoder(cli, tmp_path):
    """eval.finetune_blocks: [99] on the demo's 6-block ViT: refused before any work, naming the
    key, the encoder's depth and the fix."""
    f = tmp_path / "report.yaml"
    f.write_text("runs:\n  - params: params/demo/mae_vit_tiny.yaml\n    set: "
                 "{eval.finetune_epochs: 1, eval.finetune_blocks: [99], out_dir: " + str(tmp_path / "logs") + "}\n")
    before = snapshot(tmp_path)
    r = cli("report", "--params", f, "--report-dir", tmp_path / "report")
    assert_one_paragraph_error(r, "eval.finetune_blocks", "has 6 blocks", "1 to 6")
    assert snapshot(tmp_path) == before
    resnet = cli("info", "--params", "params/demo/simclr_resnet18.yaml", "--set",
                 "eval.finetune_epochs=1", "--set", "eval.finetune_blocks=[1,5]")
    assert_one_paragraph_error(resnet, "eval.finetune_blocks", "has 4 stages")


def test_report_refuses_two_entries_that_are_one_run(cli, tmp_path):
    """Two entries of `runs:` resolving to the same run name would share one directory: refused
    before any work, naming the run and the fix."""
    f = tmp_path / "report.yaml"
    f.write_text("set: {out_dir: " + str(tmp_path / "logs") + "}\nruns:\n"
                 "  - params: params/demo/mae_vit_tiny.yaml\n"
                 "  - params: params/demo/mae_vit_tiny.yaml\n    set: {train.epochs: 1}\n")
    before = snapshot(tmp_path)
    r = cli("report", "--params", f, "--report-dir", tmp_path / "report")
    assert_one_paragraph_error(r, "same run 'mae_vit_tiny'", "name of its own")
    assert snapshot(tmp_path) == before


# ---------------------------------------------------------------- safe loading

class Evil:
    """Unpickling this runs a shell command: what a crafted 'checkpoint' would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_and_runs_nothing(two_runs, cli, tmp_path):
    import shutil
    mae, _ = two_runs
    run = tmp_path / "crafted"
    shutil.copytree(mae, run)
    marker = tmp_path / "pwned"
    torch.save({"model": Evil(marker), "method": "mae"}, run / "checkpoints" / "last.pt")
    for args in (("evaluate", "--run", run), ("export", "--run", run, "--out", tmp_path / "x.pt")):
        r = cli(*args)
        assert_one_paragraph_error(r, "cannot be loaded safely")
        assert not marker.exists()
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("which", ["mae", "simclr"])
def test_export_loads_into_timm_or_torchvision_without_sslnb(two_runs, tmp_path, which):
    """safetensors for MAE (mean-pooled: timm's global_pool 'avg' with its fc_norm), a .pt state
    dict for SimCLR; a real subprocess, as a user runs it."""
    run = two_runs[0 if which == "mae" else 1]
    out = tmp_path / f"{which}_encoder{'.safetensors' if which == 'mae' else '.pt'}"
    r = run_cli("export", "--run", run, "--out", out)
    assert r.returncode == 0, r.stderr
    info = json.loads(out.with_name(out.name + ".json").read_text())
    model, p = load_pretrained(run)
    images = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert_loads_without_sslnb(info["load"], images, model.features(images).detach(), tmp_path)
