import sys
import types

import pytest
import torch
import torch.nn.functional as F

from mimtrack.checkpoints import ForeignObject, extract_state_dict, load_checkpoint
from mimtrack.errors import UserError
from mimtrack.pretrain.checkpoints import backbone_state_from_pretrained
from mimtrack.pretrain.vit import VisionTransformer
from mimtrack.tracker.config import TrackerConfig
from mimtrack.tracker.model import build_model

DIM = 192


def _encoder_weights(dim=DIM, depth=12, grid=14, prefix_tokens=1, seed=0):
    """Random weights with timm/MAE key names: a stand-in for a MAE-Lite encoder."""
    g = torch.Generator().manual_seed(seed)
    reference = VisionTransformer(embed_dim=dim, depth=depth, num_heads=12)
    state = {k: torch.randn(v.shape, generator=g) for k, v in reference.state_dict().items()}
    state["pos_embed"] = torch.randn(1, prefix_tokens + grid * grid, dim, generator=g)
    return state


def _bicubic(pos_embed, prefix, side):
    """Hand-made OSTrack resize: drop prefix, 14x14 grid -> side x side, bicubic, align_corners=False."""
    grid = pos_embed[0, prefix:].reshape(14, 14, -1).permute(2, 0, 1)[None]
    out = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
    return out[0].permute(1, 2, 0).reshape(1, side * side, -1)


@pytest.mark.parametrize("prefix", ["module.model.", "model."])
def test_mae_lite_file_initialises_every_backbone_tensor(tmp_path, prefix, capsys):
    encoder = _encoder_weights()
    extras = {
        "decoder_embed.weight": torch.randn(96, DIM),
        "mask_token": torch.randn(1, 1, 96),
        "blocks.12.attn.qkv.weight": torch.randn(3 * DIM, DIM),  # D^2's 13th block
        "blocks.12.norm1.weight": torch.randn(DIM),
    }
    model_state = {prefix + k: v for k, v in {**encoder, **extras}.items()}
    model_state["tch_model.x"] = torch.randn(3)
    model_state["attn_adapter.adapter11.weight"] = torch.randn(12, 12, 1, 1)
    path = tmp_path / "mae_tiny_distill_d2_400e.pth.tar"
    torch.save({"start_epoch": 400, "model": model_state, "optimizer": {}, "best_top1": 0.0}, path)

    model = build_model(TrackerConfig(), pretrained=str(path))
    got = model.backbone.state_dict()
    report = model.pretrained_report
    assert report.source_format == "model"
    assert report.missing == [] and report.unexpected == []
    assert set(report.ignored) == {"decoder_embed.weight", "mask_token", "blocks.12.attn.qkv.weight",
                                   "blocks.12.norm1.weight", "tch_model.x", "attn_adapter.adapter11.weight"}
    assert sorted(report.resized) == ["pos_embed_x", "pos_embed_z"]
    for key, value in encoder.items():
        torch.testing.assert_close(got[key], value, rtol=0, atol=0)
    torch.testing.assert_close(got["pos_embed_z"], _bicubic(encoder["pos_embed"], 1, 8))
    torch.testing.assert_close(got["pos_embed_x"], _bicubic(encoder["pos_embed"], 1, 16))
    assert len(report.loaded) == len(got)
    printed = capsys.readouterr().out
    assert f"{len(got)} tensors loaded" in printed and "ignored 6" in printed


def test_deit_distilled_table_has_two_prefix_slots():
    state = _encoder_weights(depth=2, prefix_tokens=2)
    state["dist_token"] = torch.randn(1, 1, DIM)
    state["head_dist.weight"] = torch.randn(1000, DIM)
    cfg = TrackerConfig()
    cfg.model.backbone.depth, cfg.model.ce.locations, cfg.model.ce.keep_ratio = 2, [], []
    backbone = build_model(cfg).backbone
    weights, report = backbone_state_from_pretrained(state, backbone)
    torch.testing.assert_close(weights["pos_embed_x"], _bicubic(state["pos_embed"], 2, 16))
    torch.testing.assert_close(weights["pos_embed"][:, 1:], state["pos_embed"][:, 2:])  # grid kept, dist slot dropped
    assert {"dist_token", "head_dist.weight"} <= set(report.ignored)


def test_extract_state_dict_formats_and_prefixes():
    w = torch.zeros(1)
    assert extract_state_dict({"net": {"backbone.norm.weight": w}, "epoch": 3}) == ({"backbone.norm.weight": w}, "net")
    assert extract_state_dict({"model": {"module.model.norm.weight": w}})[0] == {"norm.weight": w}
    assert extract_state_dict({"module.norm.weight": w}) == ({"norm.weight": w}, "plain")
    assert extract_state_dict({"state_dict": {"module.tch_model.a": w}})[0] == {"tch_model.a": w}
    with pytest.raises(UserError, match="no weights found"):
        extract_state_dict({"epoch": 3, "settings": ForeignObject()}, source="x.pth")


def test_file_pickling_unknown_classes_loads_without_importing_them(tmp_path):
    # A throwaway module standing in for OSTrack's lib.train.admin.settings, gone before loading.
    module = types.ModuleType("throwaway_ostrack_settings")

    class Settings:
        def __init__(self):
            self.env = {"workspace_dir": "/nonexistent"}
            self.batch_size = 32

    class AverageMeter:
        def __init__(self):
            self.avg, self.count = 0.25, 7

    for cls in (Settings, AverageMeter):
        cls.__module__ = module.__name__
        cls.__qualname__ = cls.__name__
        setattr(module, cls.__name__, cls)
    sys.modules[module.__name__] = module
    path = tmp_path / "OSTrack_ep0300.pth.tar"
    try:
        net = {"backbone.norm.weight": torch.arange(4.0), "box_head.conv5_ctr.bias": torch.ones(1)}
        torch.save({"epoch": 300, "net": net, "settings": Settings(), "stats": {"train": {"Loss": AverageMeter()}},
                    "net_type": "OSTrack"}, path)
    finally:
        del sys.modules[module.__name__]

    with pytest.raises(Exception):  # what torch >= 2.6 does by default with such a file
        torch.load(path, weights_only=True)
    ckpt = load_checkpoint(path)
    assert module.__name__ not in sys.modules
    torch.testing.assert_close(ckpt["net"]["backbone.norm.weight"], torch.arange(4.0))
    settings = ckpt["settings"]
    assert isinstance(settings, ForeignObject) and type(settings).__name__ == "Settings"
    assert settings.state["batch_size"] == 32
    assert ckpt["stats"]["train"]["Loss"].state == {"avg": 0.25, "count": 7}


def test_truncated_and_foreign_files_are_user_errors(tmp_path):
    good = tmp_path / "good.pth"
    torch.save({"model": {"norm.weight": torch.randn(1000)}}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(UserError, match="truncated.pth"):
        load_checkpoint(truncated)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(UserError, match="notes.txt"):
        load_checkpoint(text)
    with pytest.raises(UserError, match="not found"):
        load_checkpoint(tmp_path / "absent.pth")


def test_a_code_executing_pickle_is_not_executed(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (exec, ("raise SystemExit('executed')",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"norm.weight": torch.zeros(2)}, "x": Exploit()}, path)
    ckpt = load_checkpoint(path)  # builtins.exec is not on the allow-list: an inert stand-in
    assert isinstance(ckpt["x"], ForeignObject)


def test_wrong_architecture_lists_shapes_readably(tmp_path):
    base = VisionTransformer(embed_dim=768, depth=2, num_heads=12).state_dict()  # ViT-Base shapes, 2 blocks
    path = tmp_path / "mae_pretrain_vit_base.pth"
    torch.save({"model": base}, path)
    with pytest.raises(UserError) as err:
        build_model(TrackerConfig(), pretrained=str(path))
    message = str(err.value)
    assert "\n" not in message and "mae_pretrain_vit_base.pth" in message
    assert "patch_embed.proj.weight: file (768, 3, 16, 16) vs model (192, 3, 16, 16)" in message
    assert message.endswith(f"... and {len(base) - 3} more")  # every tensor mismatches; 3 are listed
    assert len(message) < 400
