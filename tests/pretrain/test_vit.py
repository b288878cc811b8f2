import pytest
import timm
import torch

from mimtrack.errors import UserError
from mimtrack.pretrain.vit import VIT_CONFIGS, Attention, VisionTransformer, create_vit, resample_pos_embed


def test_registry_matches_mae_lite():
    assert VIT_CONFIGS["vit_tiny"] == dict(embed_dim=192, depth=12, num_heads=12)  # MAE-Lite: 12 heads, not 3
    assert VIT_CONFIGS["vit_small"]["embed_dim"] == 384
    assert VIT_CONFIGS["vit_base"] == dict(embed_dim=768, depth=12, num_heads=12)
    vit = create_vit("vit_tiny")
    assert vit.blocks[0].attn.num_heads == 12 and vit.blocks[0].attn.head_dim == 16
    assert create_vit("vit_tiny", depth=2, num_heads=3).depth == 2
    with pytest.raises(UserError, match="vit_huge"):
        create_vit("vit_huge")


def _timm_vit(num_heads):
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0, num_heads=num_heads,
                             depth=2, global_pool="token").eval()


def test_same_keys_and_function_as_timm():
    """Independent truth: timm's ViT with the same weights computes the same tokens."""
    ours = create_vit("vit_tiny", depth=2).eval()
    reference = _timm_vit(num_heads=12)
    ours_sd, timm_sd = ours.state_dict(), reference.state_dict()
    assert {k: v.shape for k, v in ours_sd.items()} == {k: v.shape for k, v in timm_sd.items()}
    ours.load_state_dict(timm_sd, strict=True)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference.forward_features(images), atol=1e-5, rtol=1e-4)


def test_head_count_changes_the_function_not_the_shapes():
    """Why the registry says 12: 3-head and 12-head models take the same weights and disagree."""
    twelve, three = _timm_vit(num_heads=12), _timm_vit(num_heads=3)
    three.load_state_dict(twelve.state_dict(), strict=True)  # loads silently: shapes do not depend on heads
    ours = create_vit("vit_tiny", depth=2, num_heads=3).eval()
    ours.load_state_dict(twelve.state_dict(), strict=True)
    images = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (three.forward_features(images) - twelve.forward_features(images)).abs().max() > 1e-2
        torch.testing.assert_close(ours(images), three.forward_features(images), atol=1e-5, rtol=1e-4)


def test_attention_probabilities_path_equals_fused_path():
    attn = Attention(64, num_heads=4).eval()
    x = torch.randn(2, 10, 64)
    with torch.no_grad():
        fused = attn(x)
        explicit, probs = attn(x, return_attention=True)
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-4)
    assert probs.shape == (2, 4, 10, 10)
    torch.testing.assert_close(probs.sum(-1), torch.ones(2, 4, 10))


def test_resample_pos_embed_keeps_a_linear_ramp_and_drops_prefix():
    # A table constant along columns equal to the row index stays constant along columns after resizing.
    grid = torch.arange(4.0).repeat_interleave(4)  # row-major 4x4: value = row
    table = torch.cat([torch.full((1,), 99.0), grid]).view(1, 17, 1)
    same = resample_pos_embed(table, 4, num_prefix_tokens=1)
    torch.testing.assert_close(same, grid.view(1, 16, 1))  # same size: identity, cls slot dropped
    bigger = resample_pos_embed(table, 8).view(8, 8)
    assert torch.allclose(bigger, bigger[:, :1].expand(8, 8))
    assert torch.all(bigger[1:, 0] >= bigger[:-1, 0])


def test_other_image_size_uses_resized_table():
    vit = VisionTransformer(img_size=64, embed_dim=32, depth=1, num_heads=4).eval()
    with torch.no_grad():
        assert vit(torch.randn(1, 3, 32, 32)).shape == (1, 1 + 4, 32)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        vit(torch.randn(1, 3, 30, 30))
