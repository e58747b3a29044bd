"""Batched augmentation: per-sample parameters, the torchvision semantics each op promises."""
import torch

from sslnb import augment as A


def batch(n=16, s=32, seed=0):
    return torch.randint(0, 256, (n, 3, s, s), generator=torch.Generator().manual_seed(seed),
                         dtype=torch.uint8)


def test_full_crop_without_flip_is_identity():
    x = batch().float() / 255
    y = A.random_resized_crop(x, 32, scale=(1, 1), ratio=(1, 1), flip_p=0.0)
    assert torch.allclose(y, x, atol=1e-5)


def test_flip_p1_mirrors_every_image():
    x = batch().float() / 255
    y = A.random_resized_crop(x, 32, scale=(1, 1), ratio=(1, 1), flip_p=1.0)
    assert torch.allclose(y, x.flip(3), atol=1e-5)


def test_crops_differ_per_sample_and_follow_the_generator():
    x = (batch(1).float() / 255).expand(8, -1, -1, -1)  # the same image 8 times
    y = A.random_resized_crop(x, 16, (0.08, 1.0), g=torch.Generator().manual_seed(1))
    assert len({round(float(v.sum()), 3) for v in y}) == 8
    y2 = A.random_resized_crop(x, 16, (0.08, 1.0), g=torch.Generator().manual_seed(1))
    assert torch.equal(y, y2)


def test_hsv_round_trip_and_zero_hue_shift():
    x = batch().float() / 255
    assert torch.allclose(A.hsv_to_rgb(A.rgb_to_hsv(x)), x, atol=1e-5)
    assert torch.allclose(A._shift_hue(x, torch.zeros(16, 1, 1, 1)), x, atol=1e-5)
    red = torch.tensor([1.0, 0, 0]).view(1, 3, 1, 1)
    green = A._shift_hue(red, torch.full((1, 1, 1, 1), 1 / 3))
    assert torch.allclose(green.flatten(), torch.tensor([0.0, 1, 0]), atol=1e-5)


def test_jitter_probability_and_per_sample_factors():
    x = (batch(1).float() / 255).expand(400, -1, -1, -1)
    y = A.color_jitter(x, p=0.8, g=torch.Generator().manual_seed(0))
    changed = (y - x).abs().flatten(1).amax(1) > 1e-6
    assert 0.72 < changed.float().mean() < 0.88
    assert len({round(float(v.mean()), 4) for v in y[changed]}) > 300
    assert torch.equal(A.color_jitter(x[:4], p=0.0), x[:4])


def test_grayscale_makes_channels_equal_with_torchvision_weights():
    x = batch().float() / 255
    y = A.random_grayscale(x, p=1.0)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    want = 0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(y[:, 0], want, atol=1e-6)


def test_blur_smooths_and_p0_is_identity():
    x = batch().float() / 255
    assert torch.allclose(A.gaussian_blur(x, p=0.0), x, atol=1e-6)
    y = A.gaussian_blur(x, p=1.0, sigma=(2.0, 2.0))
    assert y.diff(dim=3).abs().mean() < x.diff(dim=3).abs().mean() * 0.7


def test_batch_augment_outputs_normalised_float_views():
    aug = A.BatchAugment({"crop_scale": [0.08, 1.0], "crop_ratio": [0.75, 1.33], "flip_p": 0.5,
                          "jitter_p": 0.8, "jitter_strength": 1.0, "gray_p": 0.2, "blur_p": 0.5},
                         24, [0.5] * 3, [0.25] * 3)
    y = aug(batch(), torch.Generator().manual_seed(0))
    assert y.shape == (16, 3, 24, 24) and y.dtype == torch.float32
    assert y.min() >= -2.0 - 1e-6 and y.max() <= 2.0 + 1e-6


def test_uint8_crop_path_cuts_the_same_boxes_as_the_batched_path():
    """The CPU path (whole-pixel crops, antialiased uint8 resize) and the GPU path (grid_sample)
    draw the same boxes from the same generator: on a smooth image they agree closely."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 96), indexing="ij")
    smooth = torch.stack([xx, yy, (xx + yy) / 2]) * 255
    x = smooth.round().to(torch.uint8).expand(16, -1, -1, -1).contiguous()
    a = A.random_resized_crop_uint8(x, 32, (0.3, 1.0), g=torch.Generator().manual_seed(3))
    b = A.random_resized_crop(x.float() / 255, 32, (0.3, 1.0), g=torch.Generator().manual_seed(3))
    assert a.dtype == torch.uint8 and a.shape == (16, 3, 32, 32)
    assert (a.float() / 255 - b).abs().mean() < 0.02  # interpolation and whole-pixel rounding
    other = A.random_resized_crop(x.float() / 255, 32, (0.3, 1.0),
                                  g=torch.Generator().manual_seed(4))
    assert (a.float() / 255 - other).abs().mean() > 0.05  # other boxes: visibly different
    same = A.random_resized_crop_uint8(x, 96, (1, 1), (1, 1), flip_p=1.0)
    assert torch.equal(same, x.flip(3))


def test_solarize_inverts_the_values_at_or_above_the_threshold_per_sample():
    """torchvision's RandomSolarize on floats: x >= 0.5 becomes 1 - x, below stays; p per image."""
    x = torch.linspace(0, 1, 11).view(1, 1, 1, 11).expand(400, 3, 1, 11).contiguous()
    y = A.solarize(x, p=0.2, g=torch.Generator().manual_seed(0))
    on = (y != x).flatten(1).any(1)
    assert 0.14 < on.float().mean() < 0.26
    want = torch.where(x[0] >= 0.5, 1 - x[0], x[0])
    assert all(torch.equal(y[i], want) for i in torch.nonzero(on).flatten().tolist())
    assert torch.equal(A.solarize(x, p=1.0)[0, 0, 0, :5], x[0, 0, 0, :5])  # below: untouched


def test_jitter_amplitudes_given_one_by_one_equal_the_strength_rule():
    """bcsh = (0.8s, 0.8s, 0.8s, 0.2s) draws exactly what strength s draws; other amplitudes
    bound each factor (BYOL's saturation 0.2: factors within [0.8, 1.2])."""
    x = batch(64).float() / 255
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(A.color_jitter(x, 0.8, 0.5, g()),
                       A.color_jitter(x, 0.8, 0.5, g(), bcsh=(0.4, 0.4, 0.4, 0.1)))
    gray = A._gray(x).expand_as(x)  # saturation alone: y = s x + (1 - s) gray, s in [0.8, 1.2]
    y = A.color_jitter(x, 1.0, g=g(), bcsh=(0.0, 0.0, 0.2, 0.0))
    s = ((y - gray) * (x - gray)).flatten(1).sum(1) / ((x - gray) ** 2).flatten(1).sum(1)
    assert s.min() > 0.75 and s.max() < 1.25 and s.max() - s.min() > 0.2  # clamping blurs it
