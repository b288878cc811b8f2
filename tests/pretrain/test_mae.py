import math

import pytest
import timm
import torch

from mimtrack.pretrain.mae import (MaskedAutoencoderViT, mae_vit_small_patch16, mae_vit_tiny_d13_patch16, mae_vit_tiny_patch16,
                          sincos_pos_embed_2d)


def small_mae(**kwargs):
    return MaskedAutoencoderViT(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, decoder_dim=32,
                                decoder_depth=1, decoder_heads=2, **kwargs)


def test_tiny_parameter_counts_match_mae_lite():
    """MAE-Lite ViT-Tiny: encoder 5 524 416 (incl. the 37 824-entry pos table), decoder 205 152 trainable."""
    model = mae_vit_tiny_patch16()
    encoder = sum(p.numel() for n, p in model.named_parameters() if not n.startswith(("decoder", "mask_token")))
    decoder = sum(p.numel() for n, p in model.named_parameters()
                  if n.startswith(("decoder", "mask_token")) and p.requires_grad)
    assert (encoder, decoder) == (5_524_416, 205_152)
    assert model.blocks[0].attn.num_heads == 12 and model.decoder_blocks[0].attn.num_heads == 3
    assert not model.pos_embed.requires_grad and not model.decoder_pos_embed.requires_grad
    small = mae_vit_small_patch16()
    assert (small.embed_dim, small.decoder_embed.out_features, small.decoder_blocks[0].attn.num_heads) == (384, 192, 6)


def test_sincos_table_hand_values():
    table = sincos_pos_embed_2d(8, 3)  # omega = [1, 1/100] for D/4 = 2
    assert table.shape == (10, 8)
    assert torch.all(table[0] == 0)  # the cls slot
    row, col = 1, 2  # token 1 * 3 + 2 = 5 -> slot 6
    expected = [math.sin(col), math.sin(col / 100), math.cos(col), math.cos(col / 100),
                math.sin(row), math.sin(row / 100), math.cos(row), math.cos(row / 100)]
    torch.testing.assert_close(table[6], torch.tensor(expected))


def test_patchify_round_trip_and_layout():
    model = small_mae()
    imgs = torch.randn(2, 3, 32, 32)
    patches = model.patchify(imgs)
    assert patches.shape == (2, 16, 8 * 8 * 3)
    torch.testing.assert_close(model.unpatchify(patches), imgs)
    # patch 5 = grid (1, 1); its first entry is pixel (8, 8) channel 0, the next one channel 1
    assert patches[0, 5, 0] == imgs[0, 0, 8, 8] and patches[0, 5, 1] == imgs[0, 1, 8, 8]


def test_random_masking_keeps_exactly_a_quarter_per_sample():
    model = small_mae()
    torch.manual_seed(0)
    x = torch.randn(6, 16, 64)
    kept, mask, ids_restore, ids_shuffle = model.random_masking(x, 0.75)
    assert kept.shape == (6, 4, 64)
    assert torch.all(mask.sum(dim=1) == 12)  # 75 % removed in every sample
    assert len({tuple(m.tolist()) for m in mask}) > 1  # each sample draws its own mask
    for b in range(6):
        visible = torch.nonzero(mask[b] == 0).flatten()
        assert sorted(ids_shuffle[b, :4].tolist()) == visible.tolist()
        torch.testing.assert_close(kept[b], x[b, ids_shuffle[b, :4]])
    assert torch.equal(torch.gather(ids_shuffle, 1, ids_restore), torch.arange(16).expand(6, -1))
    # reusing another draw (the teacher's path) reproduces it exactly
    kept2, mask2, *_ = model.random_masking(x, 0.75, ids_shuffle=ids_shuffle)
    assert torch.equal(kept2, kept) and torch.equal(mask2, mask)


def test_loss_covers_only_masked_patches():
    model = small_mae()
    torch.manual_seed(1)
    imgs = torch.randn(2, 3, 32, 32)
    loss, pred, mask = model(imgs, mask_ratio=0.75)
    visible = int(torch.nonzero(mask[0] == 0)[0])
    masked = int(torch.nonzero(mask[0] == 1)[0])

    def perturbed(patch):
        patches = model.patchify(imgs)
        patches[0, patch] += torch.randn_like(patches[0, patch]) * 5
        return model.unpatchify(patches)

    with torch.no_grad():
        torch.testing.assert_close(model.forward_loss(perturbed(visible), pred, mask), loss.detach())
        assert abs(model.forward_loss(perturbed(masked), pred, mask) - loss) > 1e-3
    # the normalised-pixel target: a patch's target is (x - mean) / sqrt(var + 1e-6) over its 192 values
    target = model.patchify(imgs)[0, masked]
    norm = (target - target.mean()) / (target.var() + 1e-6).sqrt()
    manual = ((pred[0, masked] - norm) ** 2).mean()
    one = torch.zeros_like(mask)
    one[0, masked] = 1
    torch.testing.assert_close(model.forward_loss(imgs, pred, one), manual)


def test_encoder_equals_timm_vit_on_all_tokens():
    """Independent truth: with nothing masked the encoder computes timm's ViT (tokens un-shuffled)."""
    model = small_mae().eval()
    reference = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_classes=0).eval()
    encoder_keys = reference.state_dict().keys()
    reference.load_state_dict({k: v for k, v in model.state_dict().items() if k in encoder_keys}, strict=True)
    imgs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        latent, mask, ids_restore, _, stream = model.forward_encoder(imgs, mask_ratio=0.0)
        expected = reference.forward_features(imgs)
    assert mask.sum() == 0 and len(stream) == 3
    patches = torch.gather(latent[:, 1:], 1, ids_restore.unsqueeze(-1).expand(-1, -1, 64))
    torch.testing.assert_close(patches, expected[:, 1:], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(latent[:, 0], expected[:, 0], atol=1e-5, rtol=1e-4)


def test_d2_model_layout_and_gradient_path():
    d2 = mae_vit_tiny_d13_patch16()
    assert len(d2.blocks) == 13 and d2.decode_layer == 8
    extra = {k for k in d2.state_dict() if k.startswith("blocks.12.")}
    assert extra == {"blocks.12.norm1.weight", "blocks.12.norm1.bias", "blocks.12.attn.qkv.weight",
                     "blocks.12.attn.qkv.bias"}
    assert sum(d2.state_dict()[k].numel() for k in extra) == 111_552  # D2-MAE's extra parameters (MAE-Lite ``models_mae.py``)
    small = small_mae(decode_layer=1, extra_attention_block=True)
    loss, _, _ = small(torch.randn(2, 3, 32, 32))
    loss.backward()
    # reconstruction reads layer 1: block 2 (and the extra block) get no gradient from it
    assert small.blocks[0].mlp.fc1.weight.grad.abs().sum() > 0
    assert small.blocks[1].mlp.fc1.weight.grad is None and small.blocks[2].attn.qkv.weight.grad is None
    with pytest.raises(ValueError, match="decode_layer"):
        small_mae(decode_layer=3)
