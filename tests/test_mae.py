"""MAE definitions: patch layout, masking, the loss on removed patches only, encoder input size."""
import torch

from sslnb import encoders
from sslnb.methods.mae import MAE, mask_noise, masked_mse, patchify, random_masking, unpatchify


def test_patchify_layout_is_row_major_patches_with_pqc_pixels():
    p, h, w = 2, 4, 6
    imgs = torch.arange(2 * 3 * h * w, dtype=torch.float32).reshape(2, 3, h, w)
    x = patchify(imgs, p)
    assert x.shape == (2, (h // p) * (w // p), p * p * 3)
    for n in range(2):
        for i in range(h // p):
            for j in range(w // p):
                patch = x[n, i * (w // p) + j]
                for pp in range(p):
                    for q in range(p):
                        for c in range(3):
                            assert patch[(pp * p + q) * 3 + c] == imgs[n, c, i * p + pp, j * p + q]


def test_unpatchify_inverts_patchify_exactly():
    imgs = torch.randn(3, 3, 32, 32)
    for p in (1, 4, 8, 16):
        assert torch.equal(unpatchify(patchify(imgs, p), p), imgs)


def test_random_masking_counts_order_and_restore():
    n, length, d, ratio = 8, 64, 5, 0.75
    x = torch.randn(n, length, d)
    kept, mask, ids_restore = random_masking(
        x, ratio, mask_noise(n, length, torch.Generator().manual_seed(0), x.device))
    keep = int(length * (1 - ratio))
    assert kept.shape == (n, keep, d)
    assert torch.all(mask.sum(dim=1) == length - keep)
    assert set(mask.unique().tolist()) == {0.0, 1.0}
    assert len({tuple(m.tolist()) for m in mask}) == n  # every sample its own mask
    for b in range(n):  # kept tokens are exactly the unmasked ones
        visible = x[b][mask[b] == 0]
        assert torch.equal(torch.sort(kept[b], dim=0).values, torch.sort(visible, dim=0).values)
    # ids_restore puts tokens back: shuffle order is argsort(ids_restore)
    ids_shuffle = torch.argsort(ids_restore, dim=1)
    shuffled = torch.gather(x, 1, ids_shuffle.unsqueeze(-1).expand(-1, -1, d))
    assert torch.equal(torch.gather(shuffled, 1, ids_restore.unsqueeze(-1).expand(-1, -1, d)), x)


def test_masking_keeps_int_of_fraction():
    x = torch.randn(2, 10, 3)
    assert random_masking(x, 0.75)[0].shape[1] == int(10 * 0.25) == 2
    assert random_masking(x, 0.33)[0].shape[1] == int(10 * 0.67) == 6


def test_loss_ignores_predictions_for_visible_patches():
    target = torch.randn(2, 16, 12)
    mask = (torch.rand(2, 16) < 0.75).float()
    mask[:, 0] = 0
    mask[:, 1] = 1
    pred = torch.randn(2, 16, 12)
    other = pred.clone()
    other[mask == 0] = 1e3  # wild predictions where the patch was visible
    for norm in (False, True):
        assert torch.equal(masked_mse(pred, target, mask, norm), masked_mse(other, target, mask, norm))


def test_norm_pix_target_is_per_patch_standardised():
    target = torch.randn(1, 4, 12) * 5 + 3
    mask = torch.ones(1, 4)
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    perfect = (target - mean) / (var + 1e-6).sqrt()
    assert masked_mse(perfect, target, mask, True) < 1e-10
    assert masked_mse(torch.zeros_like(target), target, mask, False) > 1


def tiny_mae(**kw):
    args = dict(encoder="vit_tiny_patch16_224", image_size=16, patch_size=4, depth=2,
                decoder_dim=32, decoder_depth=1, decoder_heads=2)
    args.update(kw)
    return MAE(**args)


def test_encoder_sees_only_visible_patches_plus_cls():
    model = tiny_mae(mask_ratio=0.75)
    seen = []
    model.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(i[0].shape))
    model(torch.randn(3, 3, 16, 16))
    assert seen[0] == (3, int(16 * 0.25) + 1, model.encoder.embed_dim)


def test_position_embeddings_are_fixed_sincos():
    model = tiny_mae()
    assert not model.encoder.pos_embed.requires_grad
    assert not model.decoder_pos_embed.requires_grad
    assert torch.all(model.encoder.pos_embed[0, 0] == 0)  # the cls slot
    pe = model.encoder.pos_embed[0, 1:]
    assert pe.abs().max() <= 1.0 and len({tuple(r.tolist()) for r in pe}) == pe.shape[0]


def test_forward_shapes_and_mask():
    model = tiny_mae()
    loss, pred, mask = model(torch.randn(2, 3, 16, 16),
                             mask_noise(2, 16, torch.Generator().manual_seed(0), "cpu"))
    assert pred.shape == (2, 16, 4 * 4 * 3) and mask.shape == (2, 16)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert model.features(torch.randn(2, 3, 16, 16)).shape == (2, 192)


def test_mean_pooled_feature_is_the_patch_token_mean_then_a_fresh_layernorm():
    """As the official MAE (global_pool) and timm ('avg' + fc_norm) read a ViT: average the patch
    tokens from the blocks, then normalise; not the pretraining norm's output averaged."""
    model = tiny_mae()
    with torch.no_grad():  # make the pretraining norm visibly not the identity
        model.encoder.norm.weight.uniform_(0.5, 2.0)
        model.encoder.norm.bias.uniform_(-1.0, 1.0)
    x = torch.randn(3, 3, 16, 16)
    enc = model.encoder
    tokens = enc.blocks(encoders.vit_with_cls(enc, encoders.vit_patches(enc, x)))
    mean = tokens[:, 1:].mean(dim=1)
    want = (mean - mean.mean(-1, keepdim=True)) / (mean.var(-1, unbiased=False, keepdim=True)
                                                  + 1e-6).sqrt()
    model.feature_pool = "mean"
    assert torch.allclose(model.features(x), want, atol=1e-5)
    old = model.encoder.norm(tokens)[:, 1:].mean(dim=1)  # what the features were before the fix
    assert not torch.allclose(model.features(x), old, atol=1e-3)
    model.feature_pool = "cls"
    assert torch.allclose(model.features(x), model.encoder.norm(tokens)[:, 0])
