import torch

from sslnb import encoders
from sslnb.methods.simclr import SimCLR
from sslnb.params import resolve


def r18(stem: str, zero_init_residual: bool = True, **kw) -> SimCLR:
    return SimCLR(encoders.resnet("resnet18", stem, zero_init_residual), **kw)


def test_cifar_stem_keeps_resolution_and_imagenet_stem_reduces_it():
    cifar, imnet = r18("cifar"), r18("imagenet")
    assert cifar.encoder.conv1.kernel_size == (3, 3) and cifar.encoder.conv1.stride == (1, 1)
    assert isinstance(cifar.encoder.maxpool, torch.nn.Identity)
    assert imnet.encoder.conv1.kernel_size == (7, 7) and imnet.encoder.conv1.stride == (2, 2)


def test_features_come_before_the_projection_head():
    model = r18("imagenet", proj_hidden_dim=64, proj_dim=16).eval()
    x = torch.randn(4, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (4, 512)
    assert torch.allclose(model.projector(feats), model.projector(model.encoder(x)))
    loss, z1, z2 = model.train()(x, x.flip(3))
    assert z1.shape == (4, 16) and loss.ndim == 0


def test_projection_head_follows_the_paper_code():
    """Hidden width = encoder width (512 for ResNet-18, 2048 for ResNet-50), no bias before each
    BatchNorm, and a BatchNorm that scales but does not shift the 128-d output."""
    head = r18("cifar").projector
    lin1, bn1, _, lin2, bn2 = head
    assert (lin1.in_features, lin1.out_features, lin2.out_features) == (512, 512, 128)
    assert lin1.bias is None and lin2.bias is None
    assert isinstance(bn2, torch.nn.BatchNorm1d) and bn2.weight is not None and bn2.bias is None
    z = head.train()(torch.randn(16, 512))
    assert torch.allclose(z.mean(0), torch.zeros(128), atol=1e-5)  # normalised, not shifted
    r50 = resolve("params/imagenet100/simclr_r50.yaml")
    assert r50["simclr"]["proj_hidden_dim"] in (None, 2048)


def test_residual_blocks_start_as_identity_unless_asked_not_to():
    """The last BatchNorm of every residual block is zero-initialised (the SimCLR code's ResNet),
    an option that defaults to the paper."""
    zero, plain = r18("cifar"), r18("cifar", zero_init_residual=False)
    blocks = [b for layer in ("layer1", "layer2", "layer3", "layer4")
              for b in getattr(zero.encoder, layer)]
    assert blocks and all(torch.all(b.bn2.weight == 0) for b in blocks)
    assert torch.all(plain.encoder.layer1[0].bn2.weight == 1)
    assert resolve(None, {"method": "simclr"})["model"]["zero_init_residual"] is True
