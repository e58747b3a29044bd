"""A run stopped after k steps and resumed ends with exactly the weights of an uninterrupted run."""
import pytest
import torch

from sslnb import pretrain, resolve
from sslnb.checkpoint import load_checkpoint
from sslnb.runs import read_jsonl

TINY = {
    "mae": {"method": "mae", "model.depth": 2, "mae.decoder_dim": 32, "mae.decoder_depth": 1,
            "mae.decoder_heads": 2, "data.image_size": 16},
    "simclr": {"method": "simclr", "simclr.proj_hidden_dim": 64, "simclr.proj_dim": 16,
               "data.image_size": 16},
}


def tiny(method, out_dir, name, **extra):
    return resolve(None, {**TINY[method], "data.num_train": 96, "data.num_val": 32,
                          "train.batch_size": 16, "train.epochs": 2, "train.log_every": 1,
                          "train.warmup_epochs": 0.5, "out_dir": str(out_dir), "name": name,
                          **extra})


@pytest.mark.parametrize("method", ["mae", "simclr"])
def test_resume_is_bitwise_equal(tmp_path, method):
    full = pretrain(tiny(method, tmp_path, "full"))
    pretrain(tiny(method, tmp_path, "split"), stop_after_steps=4)  # mid-epoch (6 steps/epoch)
    assert load_checkpoint(tmp_path / "split" / "checkpoints" / "last.pt")["step"] == 4
    split = pretrain(tiny(method, tmp_path, "split"), resume=True)
    a = load_checkpoint(full / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 12
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    steps = [r["step"] for r in read_jsonl(split / "metrics" / "steps.jsonl")]
    assert steps == list(range(1, 13))  # no step lost or logged twice
    losses_a = [r["loss"] for r in read_jsonl(full / "metrics" / "steps.jsonl")]
    losses_b = [r["loss"] for r in read_jsonl(split / "metrics" / "steps.jsonl")]
    assert losses_a == losses_b

    # every epoch says how much of the machine it had, and the summary states only such a clock
    epochs = read_jsonl(full / "metrics" / "epochs.jsonl")
    assert len(epochs) == 2 and all(isinstance(e["contended"], bool) for e in epochs)
    assert all(e["process_cpu_s"] > 0 and e["others_cores"] >= 0 for e in epochs)
    import json
    summary = json.loads((full / "summary.json").read_text())
    assert summary["epochs_alone"] + summary["epochs_contended"] == 2
