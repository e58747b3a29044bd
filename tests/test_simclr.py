import torch

from sslnb.models.simclr import SimCLR


def test_cifar_stem_keeps_resolution_and_imagenet_stem_reduces_it():
    cifar, imnet = SimCLR("resnet18", "cifar"), SimCLR("resnet18", "imagenet")
    assert cifar.encoder.conv1.kernel_size == (3, 3) and cifar.encoder.conv1.stride == (1, 1)
    assert isinstance(cifar.encoder.maxpool, torch.nn.Identity)
    assert imnet.encoder.conv1.kernel_size == (7, 7) and imnet.encoder.conv1.stride == (2, 2)


def test_features_come_before_the_projection_head():
    model = SimCLR("resnet18", "imagenet", proj_hidden_dim=64, proj_dim=16).eval()
    x = torch.randn(4, 3, 32, 32)
    feats = model.features(x)
    assert feats.shape == (4, 512)
    assert torch.allclose(model.projector(feats), model.projector(model.encoder(x)))
    loss, z1, z2 = model.train()(x, x.flip(3))
    assert z1.shape == (4, 16) and loss.ndim == 0
