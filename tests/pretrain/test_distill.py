import copy

import pytest
import timm
import torch
import torch.nn.functional as F

from mimtrack.errors import UserError
from mimtrack.pretrain.distill import MAEPretraining, load_teacher
from mimtrack.pretrain.mae import MaskedAutoencoderViT

ARCH = dict(img_size=32, patch_size=8, decoder_dim=32, decoder_depth=1, decoder_heads=2)


def student(**kwargs):
    return MaskedAutoencoderViT(embed_dim=64, depth=2, num_heads=4, **ARCH, **kwargs)


def teacher_net(heads=8):
    return MaskedAutoencoderViT(embed_dim=96, depth=3, num_heads=heads, img_size=32, patch_size=8, decoder_depth=0)


def test_attention_logits_are_pre_softmax_scores():
    block = student().blocks[0]
    x = torch.randn(2, 5, 64)
    logits = block.attention_logits(x)
    _, probs = block.attn(block.norm1(x), return_attention=True)
    torch.testing.assert_close(logits.softmax(-1), probs)
    q, k, _ = block.attn.qkv(block.norm1(x)).reshape(2, 5, 3, 4, 16).permute(2, 0, 3, 1, 4)
    torch.testing.assert_close(logits, q @ k.transpose(-2, -1) / 4.0)


def test_teacher_frozen_in_eval_and_adapter_maps_heads():
    method = MAEPretraining(student(), 0.75, teacher_net(heads=8))
    method.train()
    assert not method.teacher.training and method.model.training
    assert all(not p.requires_grad for p in method.teacher.parameters())
    assert method.attn_adapter.weight.shape == (8, 4, 1, 1) and method.attn_adapter.bias is None
    loss, logs = method(torch.randn(2, 3, 32, 32))
    loss.backward()
    assert set(logs) == {"rec", "attn"}
    assert all(p.grad is None for p in method.teacher.parameters())
    assert method.attn_adapter.weight.grad.abs().sum() > 0
    assert not any(k.startswith("teacher.") for k in method.trainable_state_dict())


def test_distillation_loss_is_zero_when_attention_agrees():
    """Teacher = a copy of the student, identity adapter: zero loss only if the teacher sees the same tokens."""
    model = student()
    teacher = MaskedAutoencoderViT(embed_dim=64, depth=2, num_heads=4, img_size=32, patch_size=8, decoder_depth=0)
    teacher.load_state_dict(model.state_dict(), strict=False)
    method = MAEPretraining(model, 0.75, teacher, student_hidden_layer=2, teacher_hidden_layer=2)
    with torch.no_grad():
        method.attn_adapter.weight.copy_(torch.eye(4).view(4, 4, 1, 1))
        method.hidden_adapter.weight.copy_(torch.eye(64))
    _, logs = method(torch.randn(3, 3, 32, 32))
    assert logs["attn"] == 0 and logs["hidden"] == 0
    with torch.no_grad():
        method.attn_adapter.weight.mul_(0.5)
    _, logs = method(torch.randn(3, 3, 32, 32))
    assert logs["attn"] > 0


def test_loss_terms_match_a_manual_computation():
    torch.manual_seed(0)
    method = MAEPretraining(student(), 0.75, teacher_net(), attn_weight=2.0)
    imgs = torch.randn(2, 3, 32, 32)
    torch.manual_seed(5)
    loss, logs = method(imgs)
    torch.manual_seed(5)  # same mask draw
    latent, mask, ids_restore, ids_shuffle, stream = method.model.forward_encoder(imgs, 0.75)
    rec = method.model.forward_loss(imgs, method.model.forward_decoder(latent, ids_restore), mask)
    *_, t_stream = method.teacher.forward_encoder(imgs, 0.75, ids_shuffle=ids_shuffle)
    assert t_stream[0].shape[1] == 1 + 4  # cls + the student's 4 visible patches
    t = method.teacher.blocks[2].attention_logits(t_stream[2])
    s = method.attn_adapter(method.model.blocks[1].attention_logits(stream[1]))
    torch.testing.assert_close(loss, rec + 2.0 * F.mse_loss(s, t))


def test_d2_distils_the_extra_block_and_decodes_layer_one():
    method = MAEPretraining(student(decode_layer=1, extra_attention_block=True), 0.75, teacher_net())
    assert method.student_attn_layer == 3 and method.teacher_attn_layer == 3
    loss, _ = method(torch.randn(2, 3, 32, 32))
    loss.backward()
    blocks = method.model.blocks
    assert blocks[2].attn.qkv.weight.grad.abs().sum() > 0  # the attention-only block learns from the teacher
    assert blocks[1].mlp.fc2.weight.grad.abs().sum() > 0  # layer 2 only through the distillation term


def smooth_images(size, count):
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    return torch.stack([torch.stack([torch.sin(3 * f * xx), torch.cos(2 * f * yy), xx * yy * f])
                        for f in torch.linspace(0.5, 2, count)])


def short_run(method, imgs, steps, lr):
    """AdamW on a fixed batch -> (mean (rec, attn) of the first 5 steps, of the last 5)."""
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=lr)
    history = []
    for _ in range(steps):
        loss, logs = method(imgs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append((float(logs["rec"]), float(logs["attn"])))
    return [sum(v) / 5 for v in zip(*history[:5])], [sum(v) / 5 for v in zip(*history[-5:])]


def test_short_run_lowers_reconstruction_and_distillation_losses():
    torch.manual_seed(0)
    first, last = short_run(MAEPretraining(student(), 0.75, teacher_net()), smooth_images(32, 8), 40, 2e-3)
    assert last[0] < 0.8 * first[0] and last[1] < 0.7 * first[1]


def test_load_teacher_from_mae_and_timm_layouts(tmp_path):
    reference = timm.models.vision_transformer.VisionTransformer(
        img_size=32, patch_size=8, embed_dim=96, depth=3, num_heads=8, num_classes=10)
    torch.save(reference.state_dict(), tmp_path / "timm.pth")  # plain timm file, with a classifier head
    mae = MaskedAutoencoderViT(embed_dim=96, depth=3, num_heads=8, **ARCH)
    torch.save({"model": mae.state_dict()}, tmp_path / "mae.pth")  # MAE layout, decoder included
    small = dict(arch="vit_base", num_heads=8, img_size=32, patch_size=8, embed_dim=96, depth=3)
    teacher = load_teacher(tmp_path / "timm.pth", **small)
    torch.testing.assert_close(teacher.blocks[2].attn.qkv.weight, reference.blocks[2].attn.qkv.weight)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    teacher = load_teacher(tmp_path / "mae.pth", **small)
    torch.testing.assert_close(teacher.pos_embed, mae.pos_embed)


def test_teacher_of_the_wrong_architecture_is_a_one_line_error(tmp_path):
    torch.save({"model": student().state_dict()}, tmp_path / "tiny.pth")  # 64-d, 2 blocks
    with pytest.raises(UserError, match=r"tiny.pth: has 2 blocks but distill.teacher_arch=vit_base has 12"):
        load_teacher(tmp_path / "tiny.pth", "vit_base")
    mismatch = r"tiny.pth: weights do not fit the model \(wrong architecture\?\): cls_token: file \(1, 1, 64\) vs"
    with pytest.raises(UserError, match=mismatch):
        load_teacher(tmp_path / "tiny.pth", num_heads=8, img_size=32, patch_size=8, embed_dim=96, depth=2)
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="junk.pth: not a readable PyTorch checkpoint"):
        load_teacher(tmp_path / "junk.pth")
    teacher = copy.deepcopy(student())
    with pytest.raises(UserError, match="teacher has 2 layers"):
        MAEPretraining(student(), 0.75, teacher, teacher_attn_layer=5)
