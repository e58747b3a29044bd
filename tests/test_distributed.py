"""Data-parallel training on torch.distributed with gloo, 2 processes on the CPU: the NT-Xent
gather, torchrun against one process with the same global batch, a launch from a notebook run by
papermill, and a killed process that stops the others with a message."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import yaml

import sslnb
from conftest import ROOT
from sslnb.errors import RunError
from sslnb.losses import nt_xent
from sslnb.checkpoint import load_checkpoint
from sslnb.runs import read_jsonl

N, D = 8, 16


def _pairs():
    g = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=g), torch.randn(N, D, generator=g)


def _nt_xent_rank(out: str) -> None:
    rank, world = dist.get_rank(), dist.get_world_size()
    z1, z2 = _pairs()
    n = N // world
    a = z1[rank * n:(rank + 1) * n].clone().requires_grad_()
    b = z2[rank * n:(rank + 1) * n].clone().requires_grad_()
    loss = nt_xent(a, b, 0.3)
    loss.backward()
    torch.save({"loss": loss.detach(), "g1": a.grad, "g2": b.grad}, f"{out}/rank{rank}.pt")


def _count_allreduces_rank(out: str) -> None:
    """One optimizer step with accumulation 1 and one with accumulation 3, counting the gradient
    all-reduces DDP launches (a communication hook sees every bucket)."""
    from sslnb.methods import build_model
    from sslnb.optim import build_optimizer
    from sslnb.params import resolve
    from sslnb.train import TrainStep
    counts = {}
    for accum in (1, 3):
        p = resolve(None, {"method": "mae", "data.image_size": 16, "model.depth": 1,
                           "mae.decoder_dim": 32, "mae.decoder_depth": 1, "mae.decoder_heads": 2,
                           "train.batch_size": 4, "train.accum_steps": accum})
        torch.manual_seed(0)
        net = build_model(p)
        model = torch.nn.parallel.DistributedDataParallel(net)
        calls = []

        def hook(state, bucket, calls=calls):
            calls.append(bucket.index())
            fut = dist.all_reduce(bucket.buffer(), async_op=True).get_future()
            return fut.then(lambda f: f.value()[0] / dist.get_world_size())

        model.register_comm_hook(None, hook)
        opt = build_optimizer(net, "adamw", 1e-3, 0.05, (0.9, 0.95))
        step = TrainStep(model, opt, torch.amp.GradScaler("cpu", enabled=False),
                         p, torch.device("cpu"), None, total_steps=1)
        images = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
        step(iter([images] * accum), 0)
        counts[accum] = len(calls)
    if dist.get_rank() == 0:
        Path(out, "counts.json").write_text(json.dumps(counts))


def test_accumulation_all_reduces_once_per_optimizer_step(tmp_path):
    """Under DDP with train.accum_steps=3 the gradients are synchronised on the last micro-step
    only (no_sync on the others): as many all-reduces as one step without accumulation."""
    sslnb.launch(_count_allreduces_rank, 2, str(tmp_path), backend="gloo")
    counts = json.loads((tmp_path / "counts.json").read_text())
    assert counts["1"] >= 1 and counts["3"] == counts["1"], counts


def test_nt_xent_across_two_ranks_equals_one_process(tmp_path):
    """Each rank holds N/2 pairs and gathers the others' as negatives. The mean of the ranks'
    losses is the one-process loss over all N pairs, and the gradient each rank's rows receive
    (through the all-gather's backward) is the one-process gradient times the world size, which
    DDP's gradient averaging divides out."""
    (torch.randn(600, 600) @ torch.randn(600, 600)).sum()  # the parent's thread pool is in use:
    sslnb.launch(_nt_xent_rank, 2, str(tmp_path), backend="gloo")  # forked children must cope
    z1, z2 = (t.clone().requires_grad_() for t in _pairs())
    loss = nt_xent(z1, z2, 0.3)
    loss.backward()
    r = [torch.load(tmp_path / f"rank{k}.pt") for k in range(2)]
    assert torch.allclose((r[0]["loss"] + r[1]["loss"]) / 2, loss.detach(), atol=1e-6)
    for k in range(2):
        rows = slice(k * N // 2, (k + 1) * N // 2)
        assert torch.allclose(r[k]["g1"] / 2, z1.grad[rows], atol=1e-6)
        assert torch.allclose(r[k]["g2"] / 2, z2.grad[rows], atol=1e-6)


def _tiny(tmp: Path, method: str, name: str, **train) -> Path:
    p = {"method": method, "name": name, "out_dir": str(tmp / "logs"), "device": "cpu",
         "data": {"image_size": 16, "num_train": 64, "num_val": 16},
         "train": {"batch_size": 16, "epochs": 1, "log_every": 1, "warmup_epochs": 0.5, **train}}
    if method == "mae":
        p.update(model={"depth": 2, "patch_size": 4},
                 mae={"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2})
    else:
        p.update(simclr={"proj_hidden_dim": 32, "proj_dim": 16}, model={"stem": "cifar"})
    f = tmp / f"{name}.yaml"
    f.write_text(yaml.safe_dump(p))
    return f


def _torchrun(params: Path, *extra: str, nproc: int = 2):
    env = {**os.environ, "SSLNB_PROGRESS": "0", "OMP_NUM_THREADS": "1",
           "SSLNB_DIST_TIMEOUT": "60"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "sslnb", "pretrain", "--params",
                           str(params), *extra], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.slow
def test_torchrun_two_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    """MAE (LayerNorm only): 2 processes x batch 8 end with the weights of 1 process x batch 16,
    within 1e-5 (the gradient all-reduce sums in another order). Every random draw is a row of
    the global batch's draw, so both runs see the same crops and masks."""
    one = sslnb.pretrain(_tiny(tmp_path, "mae", "one"))
    r = _torchrun(_tiny(tmp_path, "mae", "two"), "--set", "train.batch_size=8")
    assert r.returncode == 0, r.stderr[-3000:]
    a = load_checkpoint(one / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "logs" / "two" / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 4 and b["world_size"] == 2
    assert a["images_per_step"] == b["images_per_step"] == 16
    for k, v in a["model"].items():
        assert torch.allclose(v, b["model"][k], atol=1e-5, rtol=1e-4), k
    losses = [(x["loss"], y["loss"]) for x, y in zip(read_jsonl(one / "metrics" / "steps.jsonl"),
              read_jsonl(tmp_path / "logs" / "two" / "metrics" / "steps.jsonl"))]
    assert all(abs(x - y) < 1e-4 for x, y in losses) and len(losses) == 4
    env = json.loads((tmp_path / "logs" / "two" / "env.json").read_text())
    assert env["world_size"] == 2


@pytest.mark.slow
def test_torchrun_simclr_and_resume_with_another_world_size(tmp_path):
    """SimCLR under 2 processes (negatives gathered from both); stopped, then resumed by one
    process with accumulation keeping the global batch. (Its BatchNorm statistics are per process
    here: SyncBatchNorm, train.sync_bn, has no CPU kernel.)"""
    f = _tiny(tmp_path, "simclr", "sim")
    r = _torchrun(f, "--set", "train.batch_size=8", "--stop-after-steps", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    run = tmp_path / "logs" / "sim"
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2
    wrong = subprocess.run([sys.executable, "-m", "sslnb", "pretrain", "--params", str(f),
                            "--resume", "--set", "train.batch_size=8"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)  # global batch 8, not 16
    assert wrong.returncode == 2 and "train.accum_steps" in wrong.stderr
    sslnb.pretrain(f, {"train.batch_size": 8, "train.accum_steps": 2}, resume=True)
    done = load_checkpoint(run / "checkpoints" / "last.pt")
    assert done["step"] == 4 and done["world_size"] == 1
    assert [s["step"] for s in read_jsonl(run / "metrics" / "steps.jsonl")] == [1, 2, 3, 4]


def test_launch_from_a_notebook_run_by_papermill(tmp_path):
    import nbformat
    import papermill as pm
    from sslnb.report.builder import kernel_name
    params = _tiny(tmp_path, "mae", "from_notebook", batch_size=8)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import sslnb\n"
        f"sslnb.launch(sslnb.pretrain, 2, {str(params)!r}, backend='gloo')\n"
        f"print(sslnb.runs.read_jsonl(__import__('pathlib').Path({str(tmp_path)!r}) / 'logs' / "
        f"'from_notebook' / 'metrics' / 'steps.jsonl')[-1])")]
    src, out = tmp_path / "launch.ipynb", tmp_path / "launch.out.ipynb"
    nbformat.write(nb, src)
    pm.execute_notebook(str(src), str(out), kernel_name=kernel_name(), cwd=str(ROOT),
                        progress_bar=False)
    done = load_checkpoint(tmp_path / "logs" / "from_notebook" / "checkpoints" / "last.pt")
    assert done["world_size"] == 2 and done["step"] == 4  # 64 images / (2 x 8) per step


def _die_on_rank_one(out: str) -> None:
    t = torch.ones(1)
    dist.all_reduce(t)
    if dist.get_rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.all_reduce(t)  # rank 0 waits here for a peer that is gone
    Path(out, "finished").write_text("rank 0 should not get here")


def test_a_killed_process_stops_the_others_with_a_message(tmp_path, monkeypatch):
    monkeypatch.setenv("SSLNB_DIST_TIMEOUT", "30")
    start = time.monotonic()
    with pytest.raises(RunError, match=r"process 1 of 2 exited with code -9.*resume"):
        sslnb.launch(_die_on_rank_one, 2, str(tmp_path), backend="gloo")
    assert time.monotonic() - start < 60 and not (tmp_path / "finished").exists()


def test_launch_refuses_after_cuda_was_initialised(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with pytest.raises(RunError, match="CUDA is already initialised"):
        sslnb.launch(print, 2)
