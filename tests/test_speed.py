"""What can be tested of speed on a CPU: the FLOP formulas behind utilisation, that the training
step never waits for the device, the precision chosen per device, and the bench command itself."""
import json
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import sslnb
from sslnb.device import resolve_precision
from sslnb.methods import build_model, train_flops_per_image
from sslnb.optim import build_optimizer
from sslnb.params import resolve
from sslnb.train import TrainStep

SSLNB_DIR = str(Path(sslnb.__file__).parent)


def counted_forward_flops(model, *inputs) -> float:
    for m in model.modules():  # explicit attention matmuls: the CPU SDPA kernel is not counted
        if hasattr(m, "fused_attn"):
            m.fused_attn = False
    # Without autograd: the convolutions as defined (on a CPU, training computes those on maps of
    # <= 2x2 as one dense matmul without the padding taps, sslnb/tiny_map_conv.py; FLOPs are
    # stated by the definition, as papers state them).
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        model(*inputs)
    return fc.get_total_flops()


@pytest.mark.parametrize("over", [
    {"model.depth": 2, "mae.decoder_dim": 64, "mae.decoder_depth": 2, "mae.decoder_heads": 4},
    {"model.patch_size": 8, "mae.mask_ratio": 0.5, "mae.decoder_dim": 32, "mae.decoder_depth": 1,
     "mae.decoder_heads": 2, "model.encoder": "vit_small_patch16_224", "model.depth": 1},
])
def test_mae_flop_formula_matches_torch_flop_counter(over):
    p = resolve(None, {"data.image_size": 32, **over})
    model = build_model(p)
    x = torch.randn(2, 3, 32, 32)
    counted = counted_forward_flops(model, x) / 2
    assert train_flops_per_image(p, model) / 3 == pytest.approx(counted, rel=0.01)


@pytest.mark.parametrize("encoder, stem, size", [("resnet18", "cifar", 32),
                                                 ("resnet50", "imagenet", 64)])
def test_resnet_flop_count_matches_torch_flop_counter(encoder, stem, size):
    p = resolve(None, {"method": "simclr", "model.encoder": encoder, "model.stem": stem,
                       "data.image_size": size})
    model = build_model(p)
    x = torch.randn(2, 3, size, size)
    counted = counted_forward_flops(model, x, x) / 2  # two views of two images, per image
    assert train_flops_per_image(p, model) / 3 == pytest.approx(counted, rel=0.01)


def test_published_scale_vit_b_costs_about_57_gflops_per_training_image():
    p = resolve("params/imagenet100/mae_vit_b.yaml")
    assert 50e9 < train_flops_per_image(p) < 65e9  # 3x the ~17.6 GFLOP forward of ViT-B/16 at 224px (MAE paper)


SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")


# Each registered method at a size that steps in a fraction of a second on a CPU.
SMALL = {"mae": {"model.depth": 1, "mae.decoder_dim": 32, "mae.decoder_depth": 1,
                 "mae.decoder_heads": 2},
         "simclr": {"simclr.proj_hidden_dim": 32, "simclr.proj_dim": 8},
         "byol": {"byol.proj_hidden_dim": 32, "byol.proj_dim": 8, "byol.pred_hidden_dim": 32},
         "dino": {"model.depth": 1, "model.patch_size": 4, "dino.out_dim": 64,
                  "dino.hidden_dim": 32, "dino.bottleneck_dim": 16, "dino.local_crops": 2,
                  "dino.local_size": 8}}


def test_every_method_is_checked_for_host_syncs():
    from sslnb.methods import METHODS
    assert set(SMALL) == set(METHODS), "add the new method to SMALL"


@pytest.mark.parametrize("method", sorted(SMALL))
def test_training_step_makes_no_host_sync(method, monkeypatch):
    """Every Tensor method that waits for the device is wrapped; calls made from sslnb's own code
    during three training steps, the method's before- and after-step hooks included, are counted
    (torch's internals on a CPU do not wait for anything, and on a GPU the fused optimizer makes
    none)."""
    p = resolve(None, {"method": method, "data.image_size": 16, **SMALL[method],
                       "train.batch_size": 8, "train.grad_clip": 1.0,
                       "augment.jitter_p": 0.8, "augment.gray_p": 0.2, "augment.blur_p": 0.5})
    device = torch.device("cpu")
    model = build_model(p)
    opt = build_optimizer(model, "adamw", 1e-3, 0.05, (0.9, 0.95))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    batches = iter([images] * 3)
    calls = []
    for name in SYNC_METHODS:
        original = getattr(torch.Tensor, name)

        def wrapper(self, *a, _name=name, _original=original, **k):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(SSLNB_DIR):
                calls.append((_name, caller, sys._getframe(1).f_lineno))
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, wrapper)
    train_step = TrainStep(model, opt, scaler, p, device, None, total_steps=3)
    for step in range(3):
        loss = train_step(batches, step)
    monkeypatch.undo()
    assert calls == []
    assert torch.isfinite(loss)


FACTORIES = (("torch", "tensor"), ("torch", "as_tensor"), ("torch", "asarray"),
             ("Tensor", "new_tensor"))


@pytest.mark.parametrize("method", sorted(SMALL))
def test_training_step_builds_no_tensor_from_python_data(method, monkeypatch):
    """A tensor built from Python numbers on a GPU is a host-to-device copy that waits: the
    step's constants (grey weights, normalisation) are built once and cached per device and
    dtype. After one warm-up step, two more steps may build none from sslnb's code."""
    p = resolve(None, {"method": method, "data.image_size": 16, **SMALL[method],
                       "train.batch_size": 8, "augment.jitter_p": 0.8, "augment.gray_p": 0.2,
                       "augment.blur_p": 0.5})
    model = build_model(p)
    opt = build_optimizer(model, "adamw", 1e-3, 0.05, (0.9, 0.95))
    train_step = TrainStep(model, opt, torch.amp.GradScaler("cpu", enabled=False), p,
                           torch.device("cpu"), None, total_steps=3)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    batches = iter([images] * 3)
    train_step(batches, 0)
    calls = []
    for owner_name, name in FACTORIES:
        owner = torch if owner_name == "torch" else torch.Tensor
        original = getattr(owner, name)

        def wrapper(*a, _name=name, _original=original, **k):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(SSLNB_DIR):
                calls.append((_name, caller, sys._getframe(1).f_lineno))
            return _original(*a, **k)

        monkeypatch.setattr(owner, name, wrapper)
    for step in (1, 2):
        train_step(batches, step)
    monkeypatch.undo()
    assert calls == []


@pytest.mark.parametrize("method", sorted(SMALL))
def test_the_compiled_forward_neither_breaks_nor_recompiles(method):
    """Only tensors enter the compiled model (MAE's mask noise is drawn outside, not a new
    Generator each step, which broke the graph in four): after two warm-up steps (DINO compiles
    a second graph once its teacher sums exist), further steps compile nothing. Dynamo's eager
    backend: the graph capture is what is tested, not code generation."""
    from torch import _dynamo
    from sslnb.methods import get
    from sslnb.randomness import step_generator
    from sslnb.train import augments_of
    _dynamo.reset()
    _dynamo.utils.counters.clear()
    p = resolve(None, {"method": method, "data.image_size": 16, **SMALL[method],
                       "train.batch_size": 8, "augment.jitter_p": 0.8, "augment.blur_p": 0.5})
    model, m = build_model(p), get(p)
    compiled, augments = torch.compile(model, backend="eager"), augments_of(m, p)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8)
    graphs = []
    for step in range(5):
        g = [step_generator(0, step, v, torch.device("cpu")) for v in range(m.generators(p))]
        m.loss(compiled, m.views(augments, images, g, p), g).backward()
        m.after_step(model, None, step + 1, 10, p)
        graphs.append(_dynamo.utils.counters["stats"]["unique_graphs"])
    assert sum(_dynamo.utils.counters["graph_break"].values()) == 0
    assert graphs[1] == graphs[-1] and graphs[1] <= 2, graphs


def test_precision_auto_follows_the_device():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_precision("auto", cuda, bf16_supported=True) == (torch.bfloat16, False)
    assert resolve_precision("auto", cuda, bf16_supported=False) == (torch.float16, True)  # T4
    assert resolve_precision("auto", cpu) == (None, False)
    assert resolve_precision("fp16", cuda, bf16_supported=True) == (torch.float16, True)
    assert resolve_precision("bf16", cpu) == (torch.bfloat16, False)
    assert resolve_precision("fp32", cuda, bf16_supported=True) == (None, False)


def test_bench_command_writes_its_json(cli, tmp_path):
    r = cli("bench", "--params", "params/demo/simclr_resnet18.yaml", "--set", "train.batch_size=16",
            "--set", "data.image_size=16", "--steps", "2", "--warmup", "1",
            "--out-dir", tmp_path)
    assert r.returncode == 0, r.stderr
    (path,) = tmp_path.glob("step_simclr_resnet18_cpu_*.json")
    out = json.loads(path.read_text())
    parts = ("data", "augmentation", "forward", "backward", "optimizer")
    assert out["step_ms"]["total"] == pytest.approx(sum(out["step_ms"][k] for k in parts), abs=0.01)
    assert out["images_per_s"]["with_augmentation"] > 0 and out["images_per_s"]["resident_tensors"] > 0
    assert 0 < out["mfu"] <= 1.5 and out["train_gflops_per_image"] > 0
