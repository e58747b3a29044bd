"""The tiny-map convolution path computes exactly what nn.Conv2d computes (float64)."""
import pytest
import torch
import torch.nn as nn
import torchvision

from sslnb import encoders
from sslnb.tiny_map_conv import TinyMapConv2d, train_tiny_maps_as_matmul


def grads(net, x):
    x = x.clone().requires_grad_()
    out = net(x)
    (out * torch.linspace(-1, 1, out.numel(), dtype=out.dtype).view_as(out)).sum().backward()
    return out.detach(), [x.grad] + [p.grad for p in net.parameters()]


@pytest.mark.parametrize("cin,h,w,kernel,stride,padding,dilation,bias", [
    (8, 1, 1, 3, 1, 1, 1, False),   # ResNet's last stage on one pixel
    (8, 2, 2, 3, 1, 1, 1, False),   # its third stage on 2x2 maps
    (8, 2, 2, 3, 2, 1, 1, False),   # the last stage's first conv: 2x2 -> 1x1 by stride 2
    (8, 2, 2, 1, 2, 0, 1, True),    # its downsample 1x1 conv
    (4, 1, 4, (1, 3), 1, (0, 2), 1, True),  # non-square map, kernel and padding
    (4, 2, 2, 2, 1, 1, 2, False),   # dilation with padding
])
def test_tiny_map_matches_conv2d_in_value_and_gradient(cin, h, w, kernel, stride, padding,
                                                       dilation, bias):
    torch.manual_seed(0)
    ref = nn.Conv2d(cin, 6, kernel, stride, padding, dilation, bias=bias).double()
    fast = TinyMapConv2d(cin, 6, kernel, stride, padding, dilation, bias=bias).double()
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(5, cin, h, w, dtype=torch.float64)
    assert fast.tiny(x)
    (y_ref, g_ref), (y, g) = grads(ref, x), grads(fast, x)
    assert y.shape == y_ref.shape
    assert torch.allclose(y, y_ref, atol=1e-12)
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, atol=1e-12)


def test_larger_maps_grouped_convs_and_string_padding_keep_the_library_convolution():
    conv = TinyMapConv2d(3, 4, 3, padding=1)
    assert conv.tiny(torch.zeros(1, 3, 2, 2)) and conv.tiny(torch.zeros(1, 3, 1, 4))
    assert not conv.tiny(torch.zeros(1, 3, 3, 2))
    assert not TinyMapConv2d(4, 4, 3, padding=1, groups=2).tiny(torch.zeros(1, 4, 1, 1))
    assert not TinyMapConv2d(4, 4, 3, padding="same").tiny(torch.zeros(1, 4, 1, 1))


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_resnet_at_32px_trains_exactly_as_torchvision_builds_it(stem):
    """Whole ResNet-18 in train mode (BatchNorm batch statistics): same output and same gradient
    for every parameter as the unmodified torchvision network with the same weights; the fast
    path is taken where the maps are 2x2 or smaller (the ImageNet stem at 32px) and the state
    dict keeps torchvision's names."""
    torch.manual_seed(0)
    enc = encoders.resnet("resnet18", stem).double()
    plain = torchvision.models.resnet18()
    if stem == "cifar":
        encoders._cifar_stem(plain)
    plain.fc = nn.Identity()
    plain.double()
    plain.load_state_dict(enc.state_dict())
    assert all(type(m) is not nn.Conv2d for m in enc.modules())
    fast_calls = []
    for m in enc.modules():
        if isinstance(m, TinyMapConv2d):
            m.register_forward_hook(lambda mod, inp, out: fast_calls.append(mod.tiny(inp[0])))
    x = torch.randn(6, 3, 32, 32, dtype=torch.float64)
    (y, g), (y_ref, g_ref) = grads(enc.train(), x), grads(plain.train(), x)
    assert torch.allclose(y, y_ref, atol=1e-10)
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, atol=1e-10, rtol=1e-8)
    assert sum(fast_calls) == (8 if stem == "imagenet" else 0)  # layer3 but its first conv, layer4


def test_swap_leaves_other_modules_alone():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Linear(4, 2), nn.ConvTranspose2d(4, 4, 2))
    train_tiny_maps_as_matmul(net)
    assert [type(m) for m in net] == [TinyMapConv2d, nn.Linear, nn.ConvTranspose2d]
