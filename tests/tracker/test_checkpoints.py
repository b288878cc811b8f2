import sys
import types

import pytest
import torch

from mimtrack.errors import UserError
from mimtrack.tracker.checkpoints import load_tracker_weights, save_tracker_checkpoint
from mimtrack.tracker.config import TrackerConfig
from mimtrack.tracker.model import build_model


def _cfg(arch="vit_tiny", depth=2):
    cfg = TrackerConfig()
    cfg.model.backbone.arch, cfg.model.backbone.depth = arch, depth
    cfg.model.ce.locations, cfg.model.ce.keep_ratio = [1], [0.7]
    return cfg


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(1, 3, 128, 128, generator=g), torch.randn(1, 3, 256, 256, generator=g)


def _run_bn_statistics(model):
    """One training-mode pass so BatchNorm running stats and counters differ from a fresh model's."""
    model.train()
    with torch.no_grad():
        model(*_inputs())
    return model.eval()


def test_round_trip_strict_both_ways(tmp_path):
    torch.manual_seed(0)
    model = _run_bn_statistics(build_model(_cfg()))
    path = tmp_path / "ckpt" / "OSTrack_ep0300.pth.tar"
    save_tracker_checkpoint(path, model, epoch=300, net_type="OSTrack")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind

    torch.manual_seed(1)
    fresh = build_model(_cfg()).eval()
    extra = load_tracker_weights(fresh, path)
    assert extra == {"epoch": 300, "net_type": "OSTrack"}
    with torch.no_grad():
        a, b = model(*_inputs()), fresh(*_inputs())
    for key in ("score_map", "size_map", "offset_map", "pred_boxes"):
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)

    # What OSTrack's tester does with our file: torch.load(...)['net'], strict=True (and torch >= 2.6's
    # weights_only default accepts it: nothing but tensors and plain values inside).
    theirs = build_model(_cfg())
    theirs.load_state_dict(torch.load(path, weights_only=True)["net"], strict=True)
    assert theirs.state_dict()["box_head.conv1_ctr.1.num_batches_tracked"] == 1


def test_plain_state_dict_and_ostrack_file_with_foreign_objects(tmp_path):
    model = build_model(_cfg()).eval()
    plain = tmp_path / "plain.pth"
    torch.save(model.state_dict(), plain)
    assert load_tracker_weights(build_model(_cfg()), plain) == {}

    module = types.ModuleType("throwaway_lib_train_admin")

    class Settings:
        pass

    Settings.__module__, Settings.__qualname__ = module.__name__, "Settings"
    module.Settings = Settings
    sys.modules[module.__name__] = module
    try:
        settings = Settings()
        settings.batchsize = 32
        torch.save({"net": model.state_dict(), "settings": settings, "epoch": 300}, tmp_path / "ostrack.pth.tar")
    finally:
        del sys.modules[module.__name__]
    fresh = build_model(_cfg())
    extra = load_tracker_weights(fresh, tmp_path / "ostrack.pth.tar")
    assert extra["epoch"] == 300 and type(extra["settings"]).__name__ == "Settings"
    torch.testing.assert_close(fresh.state_dict()["backbone.pos_embed_x"], model.state_dict()["backbone.pos_embed_x"])


def test_wrong_architecture_is_a_readable_user_error(tmp_path):
    path = tmp_path / "base.pth.tar"
    save_tracker_checkpoint(path, build_model(_cfg("vit_base")))
    with pytest.raises(UserError) as err:
        load_tracker_weights(build_model(_cfg()), path)
    message = str(err.value)
    assert "wrong architecture: checkpoint is ViT-Base (embed 768) but the config builds 192" in message
    assert "backbone.cls_token: file (1, 1, 768) vs model (1, 1, 192)" in message
    assert "... and " in message and "\n" not in message and "base.pth.tar" in message


def test_depth_and_search_size_mismatches_are_named(tmp_path):
    deep, two_blocks = tmp_path / "deep.pth", tmp_path / "two_blocks.pth"
    save_tracker_checkpoint(deep, build_model(_cfg(depth=3)))
    save_tracker_checkpoint(two_blocks, build_model(_cfg(depth=2)))
    with pytest.raises(UserError, match=r"checkpoint has 3 blocks but the config builds 2: unexpected backbone\.blocks\.2"):
        load_tracker_weights(build_model(_cfg(depth=2)), deep)
    cfg = _cfg()
    cfg.crop.search_size = 384
    with pytest.raises(UserError, match="16x16 search grid but the config builds 24x24"):
        load_tracker_weights(build_model(cfg), two_blocks)


def test_pretraining_file_is_refused_with_a_hint(tmp_path):
    path = tmp_path / "mae_tiny_400e.pth.tar"
    torch.save({"model": {"module.model.cls_token": torch.zeros(1, 1, 192)}}, path)
    with pytest.raises(UserError, match="not a tracker checkpoint.*pretrained"):
        load_tracker_weights(build_model(_cfg()), path)
    with pytest.raises(ValueError):
        save_tracker_checkpoint(tmp_path / "x.pth", build_model(_cfg()), net={})
