"""Hiera-Tiny (MAE-Lite's hierarchical 6.5 M model): architecture, MAE by mask units, distillation, key layouts."""

import copy
import json

import numpy as np
import pytest
import torch
from timm.models.hiera import Hiera as TimmHiera
from timm.models.hiera import checkpoint_filter_fn

from mimtrack.errors import UserError
from mimtrack.pretrain.checkpoints import load_pretrained_backbone
from mimtrack.pretrain.distill import MAEPretraining, load_teacher
from mimtrack.pretrain.hiera import HieraClassifier, block_attention_logits, create_hiera, hiera_state_from_timm
from mimtrack.pretrain.mae_hiera import mae_hiera
from tests.pretrain.test_distill import short_run, smooth_images

TINY = dict(embed_dim=46, num_heads=1, stages=(1, 2, 7, 2))


def test_hiera_tiny_is_mae_lites_narrow_hiera():
    """Stage widths / heads / attention kinds of MAE-Lite hiera_tiny_224, and the 6.33 M / 6.69 M counts
    (counted from the Hiera-Tiny definition; the paper rounds to 6.5 M)."""
    model = create_hiera("hiera_tiny")
    assert model.stage_dims == [46, 92, 184, 368]
    assert [model.blocks[i].attn.heads for i in model.stage_ends] == [1, 2, 4, 8]
    # stages 1-2 windowed; the pooling first block of stage 3 still pools inside its unit (Hiera's one-block lag)
    assert [b.attn.use_mask_unit_attn for b in model.blocks] == [True] * 4 + [False] * 8
    assert model.pos_embed.shape == (1, 3136, 46) and model.patch_embed.proj.kernel_size == (7, 7)
    encoder = sum(p.numel() for p in model.parameters())
    assert round(encoder / 1e6, 2) == 6.33
    with_head = sum(p.numel() for p in HieraClassifier(1000, **TINY).parameters())
    assert round(with_head / 1e6, 2) == 6.69
    # q-pool 3 for fine-tuning: strides 4 / 8 / 16 / 32
    maps = model.stage_maps(torch.randn(1, 3, 224, 224))
    assert [tuple(m.shape[1:]) for m in maps] == [(46, 56, 56), (92, 28, 28), (184, 14, 14), (368, 7, 7)]


def test_mask_units_keep_29_of_49_and_the_loss_covers_only_masked_units():
    torch.manual_seed(0)
    model = mae_hiera("hiera_tiny").eval()
    imgs = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        latent, mask, ids_restore, ids_shuffle, _ = model.forward_encoder(imgs, 0.4)
    visible = ids_restore < 29
    assert visible.sum(dim=1).tolist() == [29, 29] and latent.shape == (2, 29, 2, 2, 368)
    # the cell mask is the unit map blown up 2 x 2 (each unit = 32 x 32 px = 2 x 2 cells of 16 px)
    for b in range(2):
        units = (~visible[b]).view(7, 7).numpy().astype(np.float32)
        assert np.array_equal(mask[b].view(14, 14).numpy(), np.kron(units, np.ones((2, 2), np.float32)))
    assert mask.sum(dim=1).tolist() == [80.0, 80.0]  # 20 masked units x 4 cells
    # pixels inside masked units do not reach the encoder (masked stem + dropped tokens)
    unit_px = (~visible).view(2, 1, 7, 1, 7, 1).expand(2, 3, 7, 32, 7, 32).reshape(2, 3, 224, 224)
    with torch.no_grad():
        latent2, *_ = model.forward_encoder(torch.where(unit_px, torch.randn_like(imgs), imgs), 0.4, ids_shuffle)
    torch.testing.assert_close(latent2, latent)
    # the loss is the mean over masked cells of the per-cell MSE against normalised (channel, row, col) pixels
    pred = torch.randn(2, 196, 768)
    cells = imgs.reshape(2, 3, 14, 16, 14, 16).permute(0, 2, 4, 1, 3, 5).reshape(2, 196, 768)
    target = (cells - cells.mean(-1, keepdim=True)) / (cells.var(-1, keepdim=True) + 1e-6) ** 0.5
    per_cell = ((pred - target) ** 2).mean(-1)
    torch.testing.assert_close(model.forward_loss(imgs, pred, mask), per_cell[mask.bool()].mean())
    changed = pred.clone()
    changed[~mask.bool()] += 5.0  # visible cells: no effect
    torch.testing.assert_close(model.forward_loss(imgs, changed, mask), model.forward_loss(imgs, pred, mask))


def test_multi_scale_fusion_lands_on_a_14x14_grid_at_224():
    model = mae_hiera("hiera_tiny")
    assert model.grid_size == 14 and model.pred_stride == 16
    convs = model.multi_scale_fusion_heads
    assert convs[0].weight.shape == (368, 46, 4, 4) and convs[0].stride == (4, 4)  # stage 1: 8 x 8 per unit -> 2 x 2
    assert convs[1].weight.shape == (368, 92, 2, 2) and convs[1].stride == (2, 2)  # stage 2: 4 x 4 per unit -> 2 x 2
    with torch.no_grad():
        latent, mask, ids_restore, _, stream = model.forward_encoder(torch.randn(1, 3, 224, 224), 0.0)
        pred = model.forward_decoder(latent, ids_restore)
    assert latent.shape == (1, 49, 2, 2, 368) and mask.sum() == 0
    assert stream[-1].shape == (1, 196, 368)  # q-pool 2: the last stage is the 14 x 14 stride-16 grid
    assert pred.shape == (1, 196, 768) and model.decoder_pos_embed.shape == (1, 196, 96)


@pytest.mark.parametrize("index", [0, 1, 3, 11])  # windowed, windowed + q-pool, global + q-pool, global
def test_block_attention_logits_are_the_scores_timm_attends_with(index):
    model = create_hiera("hiera_tiny", img_size=64, q_pool=3)
    x = model.unroll(model._pos_embed(model.patch_embed(torch.randn(2, 3, 64, 64))))
    for blk in model.blocks[:index]:
        x = blk(x)
    blk = model.blocks[index]
    attn, xn = blk.attn, blk.norm1(x)
    logits = block_attention_logits(blk, x)
    b, n = xn.shape[:2]
    windows = n // (attn.q_stride * attn.window_size) if attn.use_mask_unit_attn else 1
    v = attn.qkv(xn).reshape(b, -1, windows, 3, attn.heads, attn.head_dim).permute(3, 0, 4, 2, 1, 5)[2]
    probs = logits.softmax(-1) if attn.use_mask_unit_attn else logits.softmax(-1)[:, :, None]
    out = attn.proj((probs @ v).transpose(1, 3).reshape(b, -1, attn.dim_out))
    torch.testing.assert_close(out, attn(xn), atol=1e-5, rtol=1e-4)


def _small_pair():
    student = mae_hiera("hiera_tiny", img_size=64)
    teacher = mae_hiera("hiera_base", img_size=64, decoder_depth=0)
    return student, teacher


def test_hiera_distillation_matches_last_blocks_and_is_zero_when_attention_agrees():
    student, teacher = _small_pair()
    method = MAEPretraining(student, 0.4, teacher)
    assert (method.student_attn_layer, method.teacher_attn_layer) == (12, 24)
    assert method.attn_adapter.weight.shape == (8, 8, 1, 1)  # MAE-Lite's attn_adapter over 8 heads
    loss, logs = method(torch.randn(2, 3, 64, 64))
    loss.backward()
    assert set(logs) == {"rec", "attn"} and logs["attn"] > 0
    assert all(p.grad is None for p in method.teacher.parameters())

    copy_teacher = mae_hiera("hiera_tiny", img_size=64, decoder_depth=0)
    copy_teacher.load_state_dict(student.state_dict(), strict=False)
    method = MAEPretraining(student, 0.4, copy_teacher)
    with torch.no_grad():
        method.attn_adapter.weight.copy_(torch.eye(8).view(8, 8, 1, 1))
    _, logs = method(torch.randn(2, 3, 64, 64))
    assert logs["attn"] == 0  # same weights, same mask units, identity adapter
    with torch.no_grad():
        method.attn_adapter.weight.mul_(0.5)
    _, logs = method(torch.randn(2, 3, 64, 64))
    assert logs["attn"] > 0


def test_short_hiera_pretraining_lowers_the_loss():
    torch.manual_seed(0)
    student, teacher = _small_pair()
    first, last = short_run(MAEPretraining(student, 0.4, teacher), smooth_images(64, 4), 25, 1e-3)
    assert last[0] < 0.8 * first[0] and last[1] < 0.8 * first[1]


# Independent list of MAE-Lite's MaskedAutoencoderHiera key prefixes (projects/mae_lite/hiera_mae.py).
MAE_LITE_MAE_KEYS = {"pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "encoder_norm.weight",
                     "encoder_norm.bias", "multi_scale_fusion_heads.0.weight", "multi_scale_fusion_heads.0.bias",
                     "multi_scale_fusion_heads.1.weight", "multi_scale_fusion_heads.1.bias", "mask_token",
                     "decoder_embed.weight", "decoder_embed.bias", "decoder_pos_embed", "decoder_norm.weight",
                     "decoder_norm.bias", "decoder_pred.weight", "decoder_pred.bias"}
BLOCK_KEYS = {f"{m}.{p}" for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
              for p in ("weight", "bias")}


def test_pretraining_checkpoint_is_mae_lites_layout_and_feeds_the_classifier(tmp_path):
    model = mae_hiera("hiera_tiny")
    state = MAEPretraining(model, 0.4).trainable_state_dict()
    assert all(k.startswith("model.") for k in state)
    keys = {k[len("model."):] for k in state}
    expected = MAE_LITE_MAE_KEYS | {f"decoder_blocks.0.{k}" for k in BLOCK_KEYS}
    expected |= {f"blocks.{i}.{k}" for i in range(12) for k in BLOCK_KEYS}
    expected |= {f"blocks.{i}.proj.{p}" for i in (1, 3, 10) for p in ("weight", "bias")}  # stage transitions
    assert keys == expected
    # MAE-Lite's trainer wraps it as module.model.<key> under 'model'
    torch.save({"model": {"module." + k: v for k, v in state.items()}, "start_epoch": 400}, tmp_path / "mlite.pth")
    clf = HieraClassifier(10, **TINY)
    report = load_pretrained_backbone(clf, tmp_path / "mlite.pth")
    assert report.unexpected == [] and sorted(report.missing) == ["head.projection.bias", "head.projection.weight",
                                                                   "norm.bias", "norm.weight"]
    assert len(report.loaded) == 1 + 2 + 12 * 12 + 6  # pos, stem, blocks, three stage-transition projections
    torch.testing.assert_close(clf.blocks[7].attn.qkv.weight, model.blocks[7].attn.qkv.weight)


def test_fine_tuned_hiera_round_trips_through_timm_and_mae_lite_layouts(tmp_path):
    torch.manual_seed(0)
    ours = HieraClassifier(10, **TINY, img_size=64).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.01 * torch.randn_like(p))
    images = torch.randn(2, 3, 64, 64)
    # ours -> timm (its own filter for MAE-Lite / official layouts) -> strict load, same logits
    timm_model = TimmHiera(img_size=(64, 64), num_classes=10, **TINY).eval()
    timm_model.load_state_dict(checkpoint_filter_fn({"model_state": ours.state_dict()}, timm_model), strict=True)
    torch.testing.assert_close(timm_model(images), ours(images), atol=1e-5, rtol=1e-4)
    # timm -> ours (hiera_state_from_timm), strictly
    back = HieraClassifier(10, **TINY, img_size=64).eval()
    back.load_state_dict(hiera_state_from_timm(timm_model.state_dict()), strict=True)
    torch.testing.assert_close(back(images), ours(images))
    # a MAE-Lite fine-tuned file initialises a new classifier: encoder + norm loaded, the old head ignored
    torch.save({"model": {"module.model." + k: v for k, v in ours.state_dict().items()}}, tmp_path / "ft.pth")
    fresh = HieraClassifier(5, **TINY, img_size=64)
    report = load_pretrained_backbone(fresh, tmp_path / "ft.pth")
    assert report.unexpected == [] and report.missing == ["head.projection.weight", "head.projection.bias"]
    torch.testing.assert_close(fresh.pooled_features(images), ours.pooled_features(images))


def test_pos_embed_resizes_for_another_resolution(tmp_path):
    source = HieraClassifier(10, **TINY)
    torch.save({"model_state": source.state_dict()}, tmp_path / "official.pth")
    small = HieraClassifier(10, **TINY, img_size=96)
    report = load_pretrained_backbone(small, tmp_path / "official.pth")
    assert report.resized == ["pos_embed"] and small.pos_embed.shape == (1, 24 * 24, 46)


def test_hiera_teacher_loads_the_official_layout_and_rejects_a_wrong_arch(tmp_path):
    base = mae_hiera("hiera_base", img_size=64)
    torch.save({"model_state": base.state_dict()}, tmp_path / "mae_hiera_base_224.pth")  # decoder included
    teacher = load_teacher(tmp_path / "mae_hiera_base_224.pth", "hiera_base", img_size=64)
    torch.testing.assert_close(teacher.blocks[23].attn.qkv.weight, base.blocks[23].attn.qkv.weight)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    torch.save({"model_state": copy.deepcopy(mae_hiera("hiera_tiny", img_size=64)).state_dict()}, tmp_path / "t.pth")
    with pytest.raises(UserError, match=r"t.pth: has 12 blocks but distill.teacher_arch=hiera_base has 24"):
        load_teacher(tmp_path / "t.pth", "hiera_base", img_size=64)



def test_hiera_distill_pretraining_then_finetune_run_end_to_end(tmp_path, capsys):
    """The acceptance commands on a tiny ImageNet-layout folder (64 px so that it takes seconds)."""
    from mimtrack import cli
    from tests.pretrain.test_transfer import make_colour_folder

    data = make_colour_folder(tmp_path / "rgb", train=4, val=2, size=72)
    torch.save({"model_state": mae_hiera("hiera_base", img_size=64).state_dict()}, tmp_path / "teacher.pth")
    small = ["--set", "model.img_size=64", "--set", "train.device=cpu", "--set", "train.amp=none",
             "--set", "train.batch_size=4", "--set", "data.num_workers=0"]
    status = cli.main(["pretrain", "mae_hiera_tiny_distill", "--data", str(data), "--teacher",
                       str(tmp_path / "teacher.pth"), "--output", str(tmp_path / "pt"), "--epochs", "1", *small])
    assert status == 0
    ckpt = torch.load(tmp_path / "pt" / "last.pth", weights_only=False)
    assert "model.multi_scale_fusion_heads.0.weight" in ckpt["model"] and "attn_adapter.weight" in ckpt["model"]
    assert not any(k.startswith("teacher.") for k in ckpt["model"])
    assert {"rec", "attn"} <= set(ckpt["history"][0])
    status = cli.main(["finetune", "smoke_cls_hiera", "--data", str(data), "--output", str(tmp_path / "ft"),
                       "--epochs", "1", "--pretrained", str(tmp_path / "pt" / "last.pth")])
    out = capsys.readouterr().out
    assert status == 0 and "missing norm.weight, norm.bias, head.projection.weight, head.projection.bias" in out
    state = torch.load(tmp_path / "ft" / "last.pth", weights_only=False)["model"]
    assert state["head.projection.weight"].shape == (3, 368) and "norm.weight" in state  # MAE-Lite's FT layout


def test_analyze_accepts_a_hiera_checkpoint(tmp_path, capsys):
    """CKA (A against itself: unit diagonal; against a ViT: 13 x 13) and layer probing over Hiera's 12 blocks."""
    from mimtrack import cli
    from mimtrack.pretrain.vit import VisionTransformer
    from tests.pretrain.test_analysis import make_class_images

    images = make_class_images(tmp_path / "imgs")
    torch.manual_seed(0)
    hiera = HieraClassifier(3, **TINY, img_size=64)
    torch.save({"model": {"module.model." + k: v for k, v in hiera.state_dict().items()}}, tmp_path / "hiera.pth")
    vit = VisionTransformer(img_size=64, patch_size=16, embed_dim=32, depth=12, num_heads=4)
    torch.save({"model": vit.state_dict()}, tmp_path / "vit.pth")
    out = tmp_path / "out"
    assert cli.main(["analyze", "--images", str(images), "--checkpoint", str(tmp_path / "hiera.pth"),
                     "--output", str(out), "--batch-size", "5", "--img-size", "64"]) == 0, capsys.readouterr().err
    result = json.loads((out / "analysis.json").read_text())
    np.testing.assert_allclose(np.diag(result["cka"]), 1.0)
    assert np.array(result["cka"]).shape == (13, 13) and len(result["probing"]["accuracy"]["hiera.pth"]) == 13
    assert result["attention_distance_px"] == {} and not (out / "attention_distance.png").exists()
    out2 = tmp_path / "vs_vit"
    assert cli.main(["analyze", "--images", str(images), "--checkpoint", str(tmp_path / "vit.pth"), "--checkpoint-b",
                     str(tmp_path / "hiera.pth"), "--num-heads", "4", "--output", str(out2), "--batch-size", "5"]) == 0
    result = json.loads((out2 / "analysis.json").read_text())
    assert np.array(result["cka"]).shape == (13, 13) and list(result["attention_distance_px"]) == ["vit.pth"]


def test_vit_recipe_values_that_do_not_fit_hiera_are_one_line_errors(tmp_path, capsys):
    from mimtrack import cli
    from tests.pretrain.test_transfer import make_colour_folder

    data = make_colour_folder(tmp_path / "rgb", train=1, val=1)
    status = cli.main(["finetune", "finetune_tiny_in1k", "--data", str(data), "--output", str(tmp_path / "o"),
                       "--set", "model.arch=hiera_tiny"])  # the ViT recipe's num_heads: 12
    err = capsys.readouterr().err
    assert status == 2 and "model.num_heads=12" in err and "Traceback" not in err
    status = cli.main(["finetune", "smoke_cls_hiera", "--data", str(data), "--output", str(tmp_path / "o"),
                       "--set", "model.img_size=80"])
    assert status == 2 and "multiple of 32" in capsys.readouterr().err
