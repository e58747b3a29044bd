"""Protocol details found in review, each checked against its definition: LARS as the papers use
it, class-stratified subsets, and feature caches keyed by what really made the features."""
import torch
import torch.nn.functional as F

from sslnb.data import ImageSet
from sslnb.features import _key, random_init_model
from sslnb.optim import build_optimizer, scaled_lr
from sslnb.params import resolve
from sslnb.probe import linear_probe


def one_step(opt_name: str, weight_decay: float):
    torch.manual_seed(0)
    m = torch.nn.Linear(8, 4)
    w0, b0 = m.weight.detach().clone(), m.bias.detach().clone()
    opt = build_optimizer(m, opt_name, lr=0.1, weight_decay=weight_decay, momentum=0.0)
    x = torch.randn(16, 8)
    F.cross_entropy(m(x), torch.arange(16) % 4).backward()
    gw, gb = m.weight.grad.clone(), m.bias.grad.clone()
    opt.step()
    return w0, b0, gw, gb, m.weight.detach(), m.bias.detach()


def test_lars_adapts_the_weights_even_without_weight_decay():
    """timm's Lars skips the trust ratio for groups without weight decay, which made LARS with
    weight_decay 0 plain SGD. The weights' step is lr x trust ratio x grad (trust coefficient
    0.001, ratio = ||w|| / ||g||); the bias takes a plain SGD step."""
    w0, b0, gw, gb, w1, b1 = one_step("lars", 0.0)
    ratio = 0.001 * w0.norm() / gw.norm()
    assert torch.allclose(w1, w0 - 0.1 * ratio * gw, atol=1e-7)
    assert torch.allclose(b1, b0 - 0.1 * gb, atol=1e-7)
    _, _, _, _, w_sgd, _ = one_step("sgd", 0.0)
    assert not torch.allclose(w1, w_sgd, atol=1e-4)


def test_lars_never_decays_or_adapts_biases_and_decays_weights():
    w0, b0, gw, gb, w1, b1 = one_step("lars", 0.5)
    g = gw + 0.5 * w0
    ratio = 0.001 * w0.norm() / (gw.norm() + 0.5 * w0.norm())
    assert torch.allclose(w1, w0 - 0.1 * ratio * g, atol=1e-7)
    assert torch.allclose(b1, b0 - 0.1 * gb, atol=1e-7)


def test_probe_lars_leaves_the_bias_undecayed():
    torch.manual_seed(0)
    x, y = torch.randn(64, 8), torch.arange(64) % 4
    kw = dict(num_classes=4, epochs=1, batch_size=64, optimizer="lars", warmup_epochs=0)
    opt_groups = []  # the parameter groups the probe hands to Lars
    import sslnb.probe as probe
    original = probe.Lars
    probe.Lars = lambda groups, **k: opt_groups.append(groups) or original(groups, **k)
    try:
        linear_probe(x, y, x, y, weight_decay=0.1, **kw)
    finally:
        probe.Lars = original
    weight, bias = opt_groups[0]
    assert weight["weight_decay"] == 0.1 and weight["always_adapt"]
    assert bias["weight_decay"] == 0.0 and not bias["always_adapt"]


def test_one_learning_rate_rule():
    assert scaled_lr(1.5e-4, 4096) == 1.5e-4 * 16
    assert scaled_lr(0.1, 256) == 0.1


def sorted_set(per_class: int = 30, classes: int = 10) -> ImageSet:
    labels = torch.arange(classes).repeat_interleave(per_class)  # stored sorted, like a cache
    images = torch.arange(len(labels), dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 2, 2)
    return ImageSet(images.contiguous(), labels, tuple(f"c{i}" for i in range(classes)))


def test_stratified_subsets_cover_every_class_evenly_and_depend_on_the_seed():
    data = sorted_set()
    sub = data.stratified(20, seed=0)
    assert len(sub) == 20 and torch.bincount(sub.labels, minlength=10).tolist() == [2] * 10
    assert torch.equal(sub.images, data.stratified(20, seed=0).images)
    assert not torch.equal(sub.images, data.stratified(20, seed=1).images)
    odd = data.stratified(25, seed=3)
    counts = torch.bincount(odd.labels, minlength=10)
    assert counts.sum() == 25 and counts.max() - counts.min() <= 1
    assert data.stratified(None) is data and data.stratified(10_000) is data


def test_random_init_feature_key_follows_the_random_encoder(tmp_path):
    """A setting that changes the random encoder's weights (the seed, which the key does not
    list) changes the cache key; one that does not (the MAE decoder: the encoder is initialised
    before it is built) leaves it alone."""
    base = {"model.depth": 1, "mae.decoder_depth": 1, "mae.decoder_heads": 2}
    keys = {}
    for name, over in {"a": {"mae.decoder_dim": 32}, "b": {"mae.decoder_dim": 32, "seed": 1},
                       "a_again": {"mae.decoder_dim": 64}}.items():
        p = resolve(None, {**base, **over})
        enc = random_init_model(p).encoder
        keys[name] = _key(p, "random_init", "val", None, torch.device("cpu"), enc)
    assert keys["a"] == keys["a_again"] and keys["a"] != keys["b"]


def test_feature_key_names_the_matmul_precision_of_its_device():
    """TF32 features (a GPU's fp32 matmuls once resolve_device has turned them on) are cached
    apart from fp32 ones; a CPU's are fp32 whatever the setting."""
    p = resolve(None, {"model.depth": 1, "mae.decoder_dim": 32, "mae.decoder_depth": 1,
                       "mae.decoder_heads": 2})
    enc = random_init_model(p).encoder
    before = torch.get_float32_matmul_precision()
    try:
        keys = {}
        for precision in ("highest", "high"):
            torch.set_float32_matmul_precision(precision)
            keys[precision] = [_key(p, "random_init", "val", None, torch.device(d), enc)
                               for d in ("cpu", "cuda")]
    finally:
        torch.set_float32_matmul_precision(before)
    assert keys["highest"][0] == keys["high"][0]  # CPU: fp32 either way
    assert keys["highest"][1] != keys["high"][1]  # GPU: fp32 vs TF32
    assert keys["highest"][0] == keys["highest"][1]  # fp32 on both: one cache


def test_an_evaluation_opens_the_run_checkpoint_once(tmp_path, monkeypatch):
    """last.pt holds the optimiser and any target network beside the model: an evaluation reads
    it once for every kind and split (it read it once per kind and split: 8 times here), and
    again only once when every feature is cached."""
    from pathlib import Path
    from sslnb import pretrain
    from sslnb.evaluate import evaluate
    p = resolve("params/demo/mae_vit_tiny.yaml", {
        "out_dir": str(tmp_path), "data.num_train": 64, "data.num_val": 32, "data.num_test": 32,
        "train.epochs": 2, "train.batch_size": 32, "train.snapshots": 2, "model.depth": 1,
        "mae.decoder_depth": 1, "eval.probe_epochs": 2, "eval.probe_warmup_epochs": 0})
    run = pretrain(p)
    opened = []
    load = torch.load

    def counting(f, *a, **k):
        opened.append(Path(f).name if isinstance(f, (str, Path)) else "?")
        return load(f, *a, **k)

    monkeypatch.setattr(torch, "load", counting)
    evaluate(run)
    assert opened.count("last.pt") == 1, opened
    opened.clear()
    evaluate(run, force=True)  # every feature cached now
    assert opened.count("last.pt") == 1, opened
