"""SimCLR on MAE's ViT: the same encoder as the MAE run (so the objective x encoder table compares
objectives on one architecture), a contrastive loss that falls, and an export that timm loads."""
import json

import pytest
import torch

from sslnb import encoders, pretrain, resolve
from sslnb.checkpoint import load_pretrained
from sslnb.data import load_split
from sslnb.features import random_init_model
from sslnb.methods import build_model

from conftest import ROOT, assert_loads_without_sslnb, run_cli
from test_learning import MARGIN, held_out_nt_xent

DEMO = ROOT / "params" / "demo"


def test_info_gives_the_vit_of_the_mae_run(cli):
    simclr = json.loads(cli("info", "--params", DEMO / "simclr_vit_tiny.yaml").stdout)
    mae = json.loads(cli("info", "--params", DEMO / "mae_vit_tiny.yaml").stdout)
    assert simclr["architecture"] == mae["architecture"] == "ViT-Ti/4, 6 blocks"
    assert simclr["encoder_params"] == mae["encoder_params"]
    assert simclr["feature_dim"] == mae["feature_dim"] == 192
    full = json.loads(cli("info", "--params", ROOT / "params" / "imagenet100" /
                          "simclr_vit_s.yaml").stdout)
    assert abs(full["encoder_params"] - 21.7e6) / 21.7e6 < 0.01  # ViT-S/16 without head


def test_same_encoder_weights_and_feature_as_mae_at_initialisation():
    """Same params -> bitwise the same initial ViT, whichever objective trains it."""
    sim = resolve(DEMO / "simclr_vit_tiny.yaml")
    mae = resolve(DEMO / "mae_vit_tiny.yaml")
    torch.manual_seed(0)
    a = build_model(sim).encoder
    torch.manual_seed(0)
    b = build_model(mae).encoder
    assert a.state_dict().keys() == b.state_dict().keys()
    assert all(torch.equal(t, b.state_dict()[k]) for k, t in a.state_dict().items())
    assert not a.pos_embed.requires_grad  # fixed sin-cos, as MAE's
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(encoders.image_feature(a.eval(), x, "mean"),
                       encoders.image_feature(b.eval(), x, "mean"))


@pytest.mark.slow
def test_simclr_vit_lowers_the_loss_and_exports_to_timm(tmp_path):
    p = resolve(DEMO / "simclr_vit_tiny.yaml",
                {"out_dir": str(tmp_path), "model.depth": 2, "data.num_train": 1024,
                 "data.num_val": 256, "train.epochs": 3, "train.batch_size": 64,
                 "train.warmup_epochs": 0.3, "train.snapshots": 0})
    run = pretrain(p)
    images = load_split(p["data"], "val").images
    trained = held_out_nt_xent(load_pretrained(run)[0], p, images)
    untrained = held_out_nt_xent(random_init_model(p), p, images)
    print(f"held-out NT-Xent: trained {trained:.3f}, untrained {untrained:.3f}")
    assert trained <= untrained - MARGIN, (trained, untrained)

    out = tmp_path / "vit.safetensors"
    r = run_cli("export", "--run", run, "--out", out)
    assert r.returncode == 0, r.stderr
    info = json.loads(out.with_name(out.name + ".json").read_text())
    assert "timm.create_model('vit_tiny_patch16_224'" in info["load"]
    model, _ = load_pretrained(run)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert_loads_without_sslnb(info["load"], x, model.features(x).detach(), tmp_path)
