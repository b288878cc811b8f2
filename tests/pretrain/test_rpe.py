"""Relative-position-bias ViT (MAE-Lite's RPE fine-tuning): table shapes, equivalence with the plain ViT, layouts."""

import torch

from mimtrack.pretrain.checkpoints import load_pretrained_backbone
from mimtrack.pretrain.transfer.classify import ViTClassifier
from mimtrack.pretrain.vit import RelPosAttention, create_vit, rpe_state_from_plain, rpe_state_to_mae_lite


def test_rpe_tables_have_beits_shapes_and_index():
    model = create_vit("vit_tiny", rel_pos_bias=True)
    attn = model.blocks[0].attn
    assert isinstance(attn, RelPosAttention)
    assert attn.relative_position_bias_table.shape == ((2 * 14 - 1) ** 2 + 3, 12) == (732, 12)
    assert attn.q_bias.shape == attn.v_bias.shape == (192,) and attn.qkv.bias is None
    index = attn.relative_position_index
    assert index.shape == (197, 197)
    # the three extra rows: cls -> token 729, token -> cls 730, cls -> cls 731 (BEiT's convention)
    assert index[0, 0] == 731 and (index[0, 1:] == 729).all() and (index[1:, 0] == 730).all()
    # equal offsets share an entry: patch (0,0)->(0,1) and (5,3)->(5,4); (1,0)->(0,0) differs from (0,0)->(1,0)
    tok = lambda r, c: 1 + 14 * r + c  # noqa: E731
    assert index[tok(0, 0), tok(0, 1)] == index[tok(5, 3), tok(5, 4)]
    assert index[tok(1, 0), tok(0, 0)] != index[tok(0, 0), tok(1, 0)]
    assert index[1:, 1:].max() == 728 and index[1:, 1:].min() == 0
    assert {k for k in model.state_dict() if k.startswith("blocks.0.attn.")} == {
        "blocks.0.attn.qkv.weight", "blocks.0.attn.q_bias", "blocks.0.attn.v_bias",
        "blocks.0.attn.relative_position_bias_table", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias"}


def test_zero_bias_rpe_vit_equals_the_plain_vit():
    """qkv.bias -> q_bias / v_bias drops the key bias, which softmax cancels: the outputs agree exactly (float)."""
    torch.manual_seed(0)
    plain = create_vit("vit_tiny", img_size=64, depth=3).eval()
    with torch.no_grad():
        for name, p in plain.named_parameters():
            if name.endswith("qkv.bias"):
                p.normal_()  # a non-zero key bias too
    rpe = create_vit("vit_tiny", img_size=64, depth=3, rel_pos_bias=True).eval()
    missing, unexpected = rpe.load_state_dict(rpe_state_from_plain(plain.state_dict(), rpe), strict=False)
    assert unexpected == [] and missing == [f"blocks.{i}.attn.relative_position_bias_table" for i in range(3)]
    images = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(rpe(images), plain(images), atol=1e-5, rtol=1e-4)
    with torch.no_grad():
        rpe.blocks[1].attn.relative_position_bias_table.normal_()
    assert (rpe(images) - plain(images)).abs().max() > 1e-2  # the table does act on the output
    logits = rpe.blocks[1].attn.attention_logits(torch.randn(2, 17, 192))
    _, probs = rpe.blocks[1].attn(torch.randn(2, 17, 192), return_attention=True)
    assert logits.shape == probs.shape == (2, 12, 17, 17)


def test_rpe_checkpoints_load_both_ways_with_mae_lites_layout(tmp_path):
    torch.manual_seed(0)
    ours = ViTClassifier(create_vit("vit_tiny", img_size=64, depth=2, rel_pos_bias=True), 10).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(0.05 * torch.randn_like(p))
    # ours -> MAE-Lite's models_vit_rpe layout: the backbone at the top level, fc_norm / head beside it, and the
    # persisted relative_position_index of every block
    state = {k[len("backbone."):] if k.startswith("backbone.") else k: v for k, v in ours.state_dict().items()}
    mlite = rpe_state_to_mae_lite(state, ours.backbone)
    assert {k for k in mlite if k.startswith("blocks.1.attn.")} == {
        f"blocks.1.attn.{k}" for k in ("qkv.weight", "q_bias", "v_bias", "relative_position_bias_table",
                                       "relative_position_index", "proj.weight", "proj.bias")}
    index = ours.backbone.blocks[0].attn.relative_position_index
    assert torch.equal(mlite["blocks.0.attn.relative_position_index"], index)
    torch.save({"model": {"module.model." + k: v for k, v in mlite.items()}}, tmp_path / "ft_rpe.pth")
    # MAE-Lite -> ours: every encoder tensor loads (the index is recomputed), the classifier head is left out
    fresh = ViTClassifier(create_vit("vit_tiny", img_size=64, depth=2, rel_pos_bias=True), 10).eval()
    report = load_pretrained_backbone(fresh.backbone, tmp_path / "ft_rpe.pth")
    assert report.unexpected == [] and report.missing == [] and "fc_norm.weight" in report.ignored
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fresh.fc_norm.load_state_dict(ours.fc_norm.state_dict())
        fresh.head.load_state_dict(ours.head.state_dict())
    torch.testing.assert_close(fresh(images), ours(images))


def test_plain_mae_checkpoint_initialises_an_rpe_model(tmp_path):
    plain = create_vit("vit_tiny", img_size=64, depth=2)
    torch.save({"model": plain.state_dict()}, tmp_path / "mae.pth")
    rpe = create_vit("vit_tiny", img_size=64, depth=2, rel_pos_bias=True)
    report = load_pretrained_backbone(rpe, tmp_path / "mae.pth")
    assert report.unexpected == []
    assert sorted(report.missing) == [f"blocks.{i}.attn.relative_position_bias_table" for i in range(2)]
    torch.testing.assert_close(rpe.blocks[0].attn.v_bias, plain.blocks[0].attn.qkv.bias[384:])
    assert (rpe.blocks[0].attn.relative_position_bias_table == 0).all()


def test_finetune_with_relative_position_bias_runs(tmp_path):
    from mimtrack import cli
    from tests.pretrain.test_transfer import make_colour_folder

    data = make_colour_folder(tmp_path / "rgb", train=4, val=2)
    status = cli.main(["finetune", "smoke_cls", "--data", str(data), "--output", str(tmp_path / "ft"), "--epochs", "1",
                       "--set", "model.rel_pos_bias=true"])
    assert status == 0
    state = torch.load(tmp_path / "ft" / "last.pth", weights_only=False)["model"]
    assert state["backbone.blocks.1.attn.relative_position_bias_table"].shape == ((2 * 4 - 1) ** 2 + 3, 4)


def test_rpe_tables_resize_for_segmentation_crops(tmp_path):
    """A 224-px RPE classifier (14 x 14 grid, 732 rows) feeds a 512-px segmenter (32 x 32, 63^2 + 3 rows)."""
    clf = create_vit("vit_tiny", depth=1, rel_pos_bias=True)
    with torch.no_grad():
        clf.blocks[0].attn.relative_position_bias_table[-3:] = torch.arange(36.0).view(3, 12)
    torch.save({"model": clf.state_dict()}, tmp_path / "rpe.pth")
    seg = create_vit("vit_tiny", img_size=512, depth=1, rel_pos_bias=True)
    report = load_pretrained_backbone(seg, tmp_path / "rpe.pth")
    table = seg.blocks[0].attn.relative_position_bias_table
    assert report.unexpected == [] and table.shape == (63 ** 2 + 3, 12)
    torch.testing.assert_close(table[-3:], torch.arange(36.0).view(3, 12))  # cls entries carried over


def test_analyze_reads_an_rpe_checkpoint(tmp_path):
    import json

    from mimtrack import cli
    from tests.pretrain.test_analysis import make_class_images

    images = make_class_images(tmp_path / "imgs")
    model = create_vit("vit_tiny", img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=4, rel_pos_bias=True)
    torch.save({"model": model.state_dict()}, tmp_path / "rpe.pth")
    assert cli.main(["analyze", "--images", str(images), "--checkpoint", str(tmp_path / "rpe.pth"), "--num-heads", "4",
                     "--output", str(tmp_path / "out"), "--batch-size", "5"]) == 0
    result = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert len(result["attention_entropy"]["rpe.pth"]) == 2 and len(result["cka"]) == 3
