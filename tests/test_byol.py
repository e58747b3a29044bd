"""BYOL (Grill et al. 2020) against the paper's definitions: the loss on hand-made vectors, the
target's cosine momentum and its EMA update, no gradient into the target, the asymmetric views,
an export that torchvision loads without sslnb, and a short learning test."""
import math

import pytest
import torch

from conftest import assert_loads_without_sslnb, run_cli
from sslnb import pretrain, resolve
from sslnb.checkpoint import load_pretrained
from sslnb.data import load_split
from sslnb.features import random_init_model
from sslnb.losses import byol_loss
from sslnb.methods import build_model, get
from sslnb.methods.momentum import cosine_momentum, ema_update
from sslnb.train import augments_of

SMALL = {"method": "byol", "model.encoder": "resnet18", "model.stem": "cifar",
         "byol.proj_hidden_dim": 64, "byol.proj_dim": 16, "byol.pred_hidden_dim": 64,
         "data.image_size": 16, "data.num_train": 128, "data.num_val": 64, "data.num_test": 64,
         "train.batch_size": 32, "train.epochs": 1, "train.snapshots": 0}


def test_loss_is_two_minus_twice_the_cosine():
    p = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    z = torch.tensor([[0.0, 5.0], [2.0, 0.0], [0.0, -1.0]])
    # cos = 0, 1, -1 -> 2 - 2 cos = 2, 0, 4; the mean over the batch
    assert byol_loss(p, z).item() == pytest.approx(2.0)
    a, b = torch.randn(8, 5), torch.randn(8, 5)
    want = (a / a.norm(dim=1, keepdim=True) - b / b.norm(dim=1, keepdim=True)).pow(2).sum(1).mean()
    assert byol_loss(a, b).item() == pytest.approx(want.item(), rel=1e-5)


def test_no_gradient_flows_into_the_target():
    p, z = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    byol_loss(p, z).backward()
    assert p.grad is not None and z.grad is None
    model = build_model(resolve(None, SMALL))
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]
    model.train()(*views).backward()
    _, target = model.online_and_target()
    assert all(t.grad is None and not t.requires_grad for t in target)
    assert all(o.grad is not None for o in model.predictor.parameters())


def test_momentum_rises_from_its_base_to_one_on_a_cosine():
    assert cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert cosine_momentum(25, 100, 0.99) == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)


def test_the_target_is_an_exponential_moving_average_after_every_step():
    online, target = [torch.ones(3), torch.zeros(2)], [torch.zeros(3), torch.ones(2)]
    ema_update(online, target, 0.9)
    assert torch.allclose(target[0], torch.full((3,), 0.1))
    assert torch.allclose(target[1], torch.full((2,), 0.9))
    p = resolve(None, SMALL)
    model = build_model(p)
    before = [t.clone() for t in model.online_and_target()[1]]
    with torch.no_grad():
        for o in model.online_and_target()[0]:
            o.add_(1.0)
    get(p).after_step(model, None, 10, 100, p)
    tau = cosine_momentum(10, 100, 0.996)
    online, target = model.online_and_target()
    assert all(torch.allclose(t, tau * b + (1 - tau) * o, atol=1e-6)
               for t, b, o in zip(target, before, online))


def test_views_are_blurred_and_solarized_asymmetrically():
    p = resolve(None, SMALL)
    first, second = get(p).augments(p)
    assert (first["blur_p"], first["solarize_p"]) == (1.0, 0.0)
    assert (second["blur_p"], second["solarize_p"]) == (0.0 + 0.1, 0.2)
    assert first["jitter_bcsh"] == [0.4, 0.4, 0.2, 0.1] and first["gray_p"] == 0.2
    x = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    g = [torch.Generator().manual_seed(i) for i in range(get(p).generators(p))]
    views = get(p).views(augments_of(get(p), p), x, g, p)
    assert [v.shape for v in views] == [torch.Size([8, 3, 16, 16])] * 2
    assert not torch.equal(views[0], views[1])


@pytest.mark.slow
def test_byol_learns_without_collapsing_and_exports_to_torchvision(tmp_path):
    """2 epochs on 512 images: the loss on held-out images falls below the untrained network's,
    and the online projections keep their spread (a collapsed network gives one vector)."""
    p = resolve(None, {**SMALL, "out_dir": str(tmp_path), "name": "byol", "data.num_train": 512,
                       "train.epochs": 2, "train.optimizer": "adamw", "train.base_lr": 2.0e-3,
                       "train.weight_decay": 1.0e-4, "train.warmup_epochs": 0.3})
    run = pretrain(p)
    images = load_split(p["data"], "val").images
    augments = augments_of(get(p), p)

    @torch.no_grad()
    def held_out(model):
        model.train()  # BatchNorm on batch statistics, as in training
        g = [torch.Generator().manual_seed(s) for s in (5, 6)]
        views = get(p).views(augments, images, g, p)
        z = torch.nn.functional.normalize(model.projector(model.features(views[0])), dim=1)
        return model(*views).item(), (z @ z.T).mean().item()

    trained, spread = held_out(load_pretrained(run)[0])
    untrained, _ = held_out(random_init_model(p))
    print(f"held-out BYOL loss: trained {trained:.3f}, untrained {untrained:.3f}; "
          f"mean cosine of projections {spread:.3f}")
    assert trained < untrained - 0.1, (trained, untrained)
    assert spread < 0.9, spread

    out = tmp_path / "byol.pt"
    r = run_cli("export", "--run", run, "--out", out)
    assert r.returncode == 0, r.stderr
    import json
    info = json.loads(out.with_name(out.name + ".json").read_text())
    model, _ = load_pretrained(run)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert_loads_without_sslnb(info["load"], x, model.eval().features(x).detach(), tmp_path)


def test_flop_formula_matches_torch_flop_counter():
    """Training FLOPs = 3 x the online forward (backward twice the forward) + the target's
    forward, both on two views; counted by torch on one forward of everything."""
    from test_speed import counted_forward_flops
    from sslnb.methods import train_flops_per_image
    p = resolve(None, {**SMALL, "data.image_size": 32})
    model = build_model(p)
    x = torch.randn(2, 3, 32, 32)
    everything = counted_forward_flops(model, x, x) / 2  # per image
    target = counted_forward_flops(torch.nn.Sequential(model.target_encoder,
                                                       model.target_projector),
                                   torch.cat([x, x])) / 2
    want = 3 * (everything - target) + target
    assert train_flops_per_image(p, model) == pytest.approx(want, rel=0.01)


def test_a_predictor_lr_scale_gives_the_predictor_its_own_groups_and_only_then():
    """byol.predictor_lr_scale 10: the predictor's weights and biases learn at 10x the lr (in
    their own groups); at 1 the optimizer has the two groups every method has, in that order."""
    import torch
    from sslnb import methods
    from sslnb.optim import build_optimizer, set_lr
    from sslnb.params import resolve
    from conftest import ROOT
    p = resolve(ROOT / "params" / "demo" / "byol_resnet18.yaml",
                {"byol.proj_hidden_dim": 32, "byol.pred_hidden_dim": 32, "byol.proj_dim": 16})
    net = methods.build_model(p)
    plain = build_optimizer(net, "adamw", 1e-3, 0.05, lr_scales=methods.get(p).lr_scales(p))
    assert [g["weights"] for g in plain.param_groups] == [True, False]
    p["byol"]["predictor_lr_scale"] = 10.0
    opt = build_optimizer(net, "adamw", 1e-3, 0.05, lr_scales=methods.get(p).lr_scales(p))
    set_lr(opt, 1e-3)
    predictor = {id(q) for q in net.predictor.parameters()}
    for g in opt.param_groups:
        inside = {id(q) in predictor for q in g["params"]}
        assert len(inside) == 1  # a group is all predictor or none of it
        assert g["lr"] == pytest.approx(1e-2 if inside == {True} else 1e-3)
    assert sum(len(g["params"]) for g in opt.param_groups) == sum(
        1 for q in net.parameters() if q.requires_grad)
