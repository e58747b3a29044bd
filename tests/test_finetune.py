"""Fine-tuning as the MAE paper does it: partial fine-tuning trains exactly the last k blocks (or
stages) and the head, layer-wise lr decay follows its formula, and what is fine-tuned is the
exported timm / torchvision model."""
import re

import pytest
import torch

from sslnb import encoders
from sslnb.augment import Normalize
from sslnb.data import load_split
from sslnb.finetune import accuracy, finetune, lr_groups, starting_classifier, trainable
from sslnb.methods import build_model
from sslnb.optim import set_lr
from sslnb.params import resolve

SMALL = {"data.num_train": 64, "data.num_val": 20, "data.num_test": 20, "eval.finetune_epochs": 1,
         "eval.finetune_batch_size": 16, "eval.finetune_warmup_epochs": 0.0}
VIT = {"method": "mae", "model.depth": 3, "mae.decoder_depth": 1, "mae.decoder_dim": 32,
       "model.feature_pool": "mean"}
RESNET = {"method": "simclr", "model.encoder": "resnet18", "simclr.proj_hidden_dim": 32}


def frozen_by_name(name: str, family: str, k: int, blocks: int) -> bool:
    """What partial fine-tuning with the last k blocks must leave untouched, written from the
    definition independently of encoders.layer_depths."""
    if family == "resnet":
        stage = re.match(r"layer(\d)\.", name)
        return name.startswith(("conv1.", "bn1.")) or (stage is not None and int(stage[1]) <= 4 - k)
    block = re.match(r"blocks\.(\d+)\.", name)
    return (name.split(".")[0] in ("cls_token", "pos_embed", "patch_embed")
            or (block is not None and int(block[1]) < blocks - k))


@pytest.mark.parametrize("family,overrides,k", [("vit", VIT, 1), ("vit", VIT, 2),
                                                ("resnet", RESNET, 1), ("resnet", RESNET, 2)])
def test_partial_finetuning_changes_exactly_the_last_k_blocks_and_the_head(family, overrides, k):
    p = resolve(None, {**SMALL, **overrides})
    torch.manual_seed(0)
    encoder = build_model(p).encoder
    encoder_before = {n: t.clone() for n, t in encoder.state_dict().items()}
    train, val = load_split(p["data"], "train"), load_split(p["data"], "val")
    start = starting_classifier(encoder, p, train, torch.device("cpu"))
    before = {n: t.clone() for n, t in start.state_dict().items()}
    after = finetune(start, p, train, val, torch.device("cpu"), blocks=k)["model"].state_dict()
    blocks = 4 if family == "resnet" else 3
    frozen = [n for n in before if frozen_by_name(n, family, k, blocks)]
    statistics = ("num_batches_tracked", "running_mean", "running_var")
    trained = [n for n in before if n not in frozen and not n.endswith(statistics)]
    assert frozen and trained
    for n in frozen:  # parameters and buffers (a frozen stage's BatchNorm statistics too)
        assert torch.equal(before[n], after[n]), f"{n} changed although frozen"
    for n in before:  # BatchNorm keeps the statistics its starting probe read, everywhere
        if n.endswith(statistics):
            assert torch.equal(before[n], after[n]), f"{n} changed"
    for n in trained:
        assert not torch.equal(before[n], after[n]), f"{n} did not train"
    assert all(torch.equal(t, encoder.state_dict()[n]) for n, t in encoder_before.items())
    assert all(torch.equal(t, start.state_dict()[n]) for n, t in before.items())


def test_a_random_init_resnet_starts_fine_tuning_at_its_probe_accuracy():
    """The random-init twin's BatchNorm statistics are still 0 and 1: had fine-tuning switched
    BatchNorm to training mode, batch statistics would replace them at the first step and the
    head fit to the old features would read noise (it fell to chance from a probe far above
    it). Fine-tuning keeps the statistics, so an epoch at a vanishing learning rate stays at the
    probe's accuracy, and the statistics do not move."""
    p = resolve(None, {**RESNET, "model.zero_init_residual": False, "data.num_train": 2000,
                       "data.num_val": 300, "eval.finetune_epochs": 1,
                       "eval.finetune_batch_size": 32, "eval.finetune_base_lr": 1e-12,
                       "eval.finetune_blocks": ["all"], "eval.probe_epochs": 30,
                       "eval.probe_warmup_epochs": 3})
    torch.manual_seed(0)
    encoder = build_model(p).encoder  # never trained: the random-init twin
    train, val = load_split(p["data"], "train"), load_split(p["data"], "val")
    cpu = torch.device("cpu")
    start = starting_classifier(encoder, p, train, cpu)
    normalize = Normalize(p["data"]["mean"], p["data"]["std"], p["data"]["image_size"])
    probe_acc = accuracy(start, val, normalize, cpu)
    assert probe_acc > 20.0  # a probe well above chance (10 classes)
    tuned = finetune(start, p, train, val, cpu)
    assert abs(tuned["val_top1"] - probe_acc) < 1.0, (probe_acc, tuned["val_top1"])
    stats = lambda net: {n: t for n, t in net.state_dict().items() if "running_" in n}  # noqa: E731
    assert all(torch.equal(t, stats(start)[n]) for n, t in stats(tuned["model"]).items())


def test_all_blocks_train_end_to_end():
    p = resolve(None, {**SMALL, **VIT})
    net = encoders.classifier(build_model(p).encoder, p, 10)
    assert all(trainable(net, "all").values())
    every_block = trainable(net, 3)  # k = depth: every block, but not the embeddings
    assert {n for n, t in every_block.items() if not t} == {
        "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias"}


@pytest.mark.parametrize("decay", [0.65, 0.75])
def test_layerwise_lr_decay_follows_the_formula(decay):
    """Block i (0-based) of d at lr x decay^(d - i); patch embedding, cls token and position
    embedding at decay^(d + 1), the lowest; the head and the final norm at the full lr."""
    depth, lr = 4, 1e-3
    p = resolve(None, {**VIT, "model.depth": depth})
    net = encoders.classifier(build_model(p).encoder, p, 10)
    groups = lr_groups(net, 0.05, decay)
    opt = torch.optim.AdamW([{k: v for k, v in g.items() if k != "names"} for g in groups], lr=lr)
    set_lr(opt, lr)
    seen = {}
    for g, og in zip(groups, opt.param_groups):
        for name in g["names"]:
            seen[name] = og["lr"]
    assert set(seen) == {n for n, _ in net.named_parameters()}
    for name, got in seen.items():
        block = re.match(r"blocks\.(\d+)\.", name)
        if block:
            want = lr * decay ** (depth - int(block[1]))
        elif name.split(".")[0] in ("patch_embed", "cls_token", "pos_embed"):
            want = lr * decay ** (depth + 1)
        else:
            assert name.startswith(("head.", "fc_norm.", "norm.")), name
            want = lr
        assert got == pytest.approx(want, rel=1e-12), name
    no_decay = {n for g in groups if g["weight_decay"] == 0 for n in g["names"]}
    assert {"pos_embed", "cls_token", "head.bias", "blocks.0.norm1.weight"} <= no_decay
    assert "blocks.0.attn.qkv.weight" not in no_decay


def test_resnets_take_no_layer_decay():
    p = resolve(None, {**SMALL, **RESNET})
    net = encoders.classifier(build_model(p).encoder, p, 10)
    assert {g["lr_scale"] for g in lr_groups(net, 0.05, 1.0)} == {1.0}


def test_the_finetuned_network_starts_from_the_exported_feature():
    """The classifier's pooled feature before its head equals the encoder's probed feature."""
    for overrides in (VIT, {**VIT, "model.feature_pool": "cls"}, RESNET):
        p = resolve(None, {**SMALL, **overrides})
        model = build_model(p).eval()
        net = encoders.classifier(model.encoder, p, 10).eval()
        x = torch.randn(3, 3, 32, 32)
        if hasattr(net, "reset_classifier"):  # timm: the pooled, normed feature
            net.reset_classifier(0)
        else:
            net.fc = torch.nn.Identity()
        feat = net(x)
        assert torch.allclose(feat, model.features(x), atol=1e-5), overrides


def test_the_probe_folds_into_the_head_exactly():
    """LP-FT starts fine-tuning from the trained probe: BatchNorm (no affine) + Linear folded into
    one Linear gives the probe's logits."""
    from sslnb.finetune import probe_head
    from sslnb.probe import linear_classifier
    probe = linear_classifier(16, 5)
    probe[0].running_mean.uniform_(-2, 2)
    probe[0].running_var.uniform_(0.1, 3)
    torch.nn.init.normal_(probe[1].weight)
    probe.eval()
    head = probe_head(probe, torch.nn.Linear(16, 5))
    f = torch.randn(8, 16)
    assert torch.allclose(head(f), probe(f), atol=1e-5)


def test_the_fine_tuning_crop_scale_reaches_the_crops():
    """eval.finetune_crop_scale decides the crops fine-tuning trains on: whole images (1.0)
    train the head to other weights than 5% crops, from the same start and seed."""
    heads = []
    for scale in ([1.0, 1.0], [0.05, 0.05]):
        p = resolve(None, {**SMALL, **VIT, "eval.finetune_crop_scale": scale})
        torch.manual_seed(0)
        encoder = build_model(p).encoder
        train, val = load_split(p["data"], "train"), load_split(p["data"], "val")
        start = starting_classifier(encoder, p, train, torch.device("cpu"))
        heads.append(finetune(start, p, train, val, torch.device("cpu"), blocks=1)["model"]
                     .head.weight.detach().clone())
    assert not torch.allclose(heads[0], heads[1])
