import cv2
import numpy as np
import pytest
import torch
from torch import nn

import mimtrack.tracker.checkpoints as tracker_checkpoints
from mimtrack.errors import UserError
from mimtrack.tracker import Tracker, build_model, load_tracker, read_image_rgb
from mimtrack.tracker.checkpoints import save_tracker_checkpoint
from mimtrack.tracker.config import load_tracker_config
from mimtrack.tracker.geometry import crop_square
from mimtrack.tracker.model.head import decode

MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])


class FakeNet(nn.Module):
    """Returns fixed maps (score peaks where the test says) and records the images it was given."""

    def __init__(self, score_map, size=(0.125, 0.0625), offset=(0.25, 0.75)):
        super().__init__()
        self.score = torch.as_tensor(score_map, dtype=torch.float32).view(1, 1, 16, 16)
        self.size = torch.tensor(size, dtype=torch.float32).view(1, 2, 1, 1).expand(1, 2, 16, 16)
        self.offset = torch.tensor(offset, dtype=torch.float32).view(1, 2, 1, 1).expand(1, 2, 16, 16)
        self.box_head = type("Head", (), {"decode": staticmethod(decode)})()
        self.calls = []

    def forward(self, template, search, ce_keep_rate=None):
        self.calls.append((template.clone(), search.clone()))
        return {"score_map": self.score, "size_map": self.size, "offset_map": self.offset}


def peaked_map(cells, background=0.1):
    score = np.full((16, 16), background)
    for (row, col), value in cells.items():
        score[row, col] = value
    return score


def normalised(crop):
    return torch.from_numpy(((crop / 255.0 - MEAN) / STD).transpose(2, 0, 1)[None]).float()


@pytest.fixture
def cfg():
    return load_tracker_config("vit_tiny_256_ce")


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, size=(200, 300, 3), dtype=np.uint8)


def test_box_by_hand_through_crop_decode_map_back_and_clip(cfg, image):
    net = FakeNet(peaked_map({(5, 10): 0.9}))
    tracker = Tracker(net, cfg)
    tracker.initialize(image, [100, 60, 32, 32])
    result = tracker.track(image)
    # crop side 32 * 4 = 128 -> resize factor 2. Decode at (row 5, col 10): cx = (10 + 0.25) / 16, cy = (5 + 0.75) / 16,
    # w = 0.125, h = 0.0625; times 256 / 2 -> (82, 46, 16, 8) in the crop; crop corner = centre (116, 76) - 64
    # -> centre (134, 58) -> [126, 54, 16, 8]; the 10 px margin makes h = 10.
    assert result["box"] == [126.0, 54.0, 16.0, 10.0]
    assert result["score"] == pytest.approx(0.9)
    assert tracker.state == result["box"]

    # Pre-processing: template = factor-2 crop at 128 px, search = factor-4 crop at 256 px around the previous box,
    # both RGB / 255, ImageNet-normalised, NCHW float32.
    template, search = net.calls[0]
    assert template.shape == (1, 3, 128, 128) and template.dtype == torch.float32
    torch.testing.assert_close(template, normalised(crop_square(image, [100, 60, 32, 32], 2.0, 128)[0]))
    torch.testing.assert_close(search, normalised(crop_square(image, [100, 60, 32, 32], 4.0, 256)[0]))

    # The next search region is centred on the new state; the template is never updated.
    tracker.track(image)
    template2, search2 = net.calls[1]
    torch.testing.assert_close(template2, template)
    torch.testing.assert_close(search2, normalised(crop_square(image, result["box"], 4.0, 256)[0]))


def test_size_update_damps_the_size_change_and_keeps_the_centre(cfg, image):
    # The network says 16 x 8 at centre (134, 58) (the case above); with size_update 0.25 the new size is
    # 0.75 * (32, 32) + 0.25 * (16, 8) = (28, 26) around the same centre -> [120, 45, 28, 26].
    cfg.inference.size_update = 0.25
    tracker = Tracker(FakeNet(peaked_map({(5, 10): 0.9})), cfg)
    tracker.initialize(image, [100, 60, 32, 32])
    assert tracker.track(image)["box"] == [120.0, 45.0, 28.0, 26.0]
    for bad in (0.0, 1.5, float("nan")):
        cfg.inference.size_update = bad
        with pytest.raises(UserError, match="inference.size_update"):
            build_model(cfg)


def test_hann_window_moves_the_argmax(cfg, image):
    score = peaked_map({(0, 0): 0.9, (8, 8): 0.6})
    tracker = Tracker(FakeNet(score, offset=(0.0, 0.0)), cfg)
    tracker.initialize(image, [100, 60, 32, 32])
    # Windowed: 0.9 * w[0]^2 ~ 0.001 < 0.6 * w[8]^2 ~ 0.6: the centre cell wins; its raw score is reported.
    result = tracker.track(image)
    assert result["score"] == pytest.approx(0.6)
    # centre cell (8, 8) -> (64, 64) px in the crop = the crop centre -> same centre (116, 76), size 16 x 8 -> h 10
    assert result["box"] == [108.0, 72.0, 16.0, 10.0]

    cfg.inference.hann_window = False
    tracker = Tracker(FakeNet(score, offset=(0.0, 0.0)), cfg)
    tracker.initialize(image, [100, 60, 32, 32])
    result = tracker.track(image)
    assert result["score"] == pytest.approx(0.9)
    # cell (0, 0) -> (0, 0) in the crop -> image centre (116 - 64, 76 - 64) = (52, 12) -> [44, 8, 16, 8] -> h 10
    assert result["box"] == [44.0, 8.0, 16.0, 10.0]


def test_test_time_search_factor_replaces_the_training_one(cfg, image):
    """inference.search_factor (OSTrack's TEST.SEARCH_FACTOR) sets the search crop; the template crop is unchanged."""
    cfg.inference.search_factor = 3.0
    net = FakeNet(peaked_map({(8, 8): 0.9}))
    tracker = Tracker(net, cfg)
    tracker.initialize(image, [100, 60, 32, 32])
    tracker.track(image)
    template, search = net.calls[0]
    torch.testing.assert_close(template, normalised(crop_square(image, [100, 60, 32, 32], 2.0, 256 // 2)[0]))
    torch.testing.assert_close(search, normalised(crop_square(image, [100, 60, 32, 32], 3.0, 256)[0]))
    assert load_tracker_config("smoke_cpu").inference.search_factor == 3.4   # the demo recipe's, chosen on validation
    cfg.inference.search_factor = 0.0
    with pytest.raises(UserError, match="inference.search_factor=0.0"):
        build_model(cfg)


def test_grayscale_rgba_and_changing_frame_sizes(cfg, image):
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    runs = {}
    for name, frame in {"rgb": np.dstack([gray] * 3), "gray": gray, "gray1": gray[:, :, None],
                        "rgba": np.dstack([gray, gray, gray, np.full_like(gray, 255)])}.items():
        net = FakeNet(peaked_map({(5, 10): 0.9}))
        tracker = Tracker(net, cfg)
        tracker.initialize(frame, [100, 60, 32, 32])
        runs[name] = (tracker.track(frame)["box"], net.calls[0][1])
    for name in ("gray", "gray1", "rgba"):
        assert runs[name][0] == runs["rgb"][0]
        torch.testing.assert_close(runs[name][1], runs["rgb"][1])

    # The next frame is smaller and the object's last box lies outside it: the crop pads, the box is clipped in.
    tracker = Tracker(FakeNet(peaked_map({(15, 15): 0.9})), cfg)
    tracker.initialize(image, [250, 150, 40, 40])
    box = tracker.track(image[:100, :120])["box"]
    assert 0 <= box[0] <= 110 and 0 <= box[1] <= 90 and box[2] >= 10 and box[3] >= 10
    assert box[0] + box[2] <= 120 and box[1] + box[3] <= 100


@pytest.mark.parametrize("box", [[10, 10, 0, 5], [10, 10, 5, -1], [300, 10, 5, 5], [-20, 10, 20, 5],
                                 [10, 10, float("nan"), 5], [1, 2, 3], "a,b"])
def test_bad_init_boxes(cfg, image, box):
    tracker = Tracker(FakeNet(peaked_map({})), cfg)
    with pytest.raises(UserError, match="init box"):
        tracker.initialize(image, box)


def test_track_before_initialize_and_bad_images(cfg, image):
    tracker = Tracker(FakeNet(peaked_map({})), cfg)
    with pytest.raises(RuntimeError):
        tracker.track(image)
    with pytest.raises(UserError, match="uint8"):
        tracker.initialize(image.astype(np.float32), [10, 10, 20, 20])
    with pytest.raises(UserError, match="shape"):
        tracker.initialize(image[:, :, :2], [10, 10, 20, 20])


def test_read_image_rgb(tmp_path):
    bgr = np.zeros((4, 5, 3), dtype=np.uint8)
    bgr[..., 0] = 255                            # blue in OpenCV's order
    cv2.imwrite(str(tmp_path / "blue.png"), bgr)
    rgb = read_image_rgb(tmp_path / "blue.png")
    assert rgb.shape == (4, 5, 3) and (rgb[..., 2] == 255).all() and (rgb[..., :2] == 0).all()
    (tmp_path / "junk.jpg").write_bytes(b"not an image")
    for name in ("junk.jpg", "missing.png"):
        with pytest.raises(UserError, match=name):
            read_image_rgb(tmp_path / name)


def test_load_tracker_checkpoint_round_trip(tmp_path, cfg, image, capsys):
    torch.manual_seed(0)
    untrained = load_tracker("vit_tiny_256_ce")
    assert "untrained" in capsys.readouterr().err
    save_tracker_checkpoint(tmp_path / "t.pth", untrained.model)
    loaded = load_tracker("vit_tiny_256_ce", tmp_path / "t.pth", device="cpu")
    assert capsys.readouterr().err == ""
    for t in (untrained, loaded):
        t.initialize(image, [100, 60, 32, 32])
    for _ in range(2):
        assert untrained.track(image) == loaded.track(image)


def test_load_tracker_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(tracker_checkpoints, "DEMO_WEIGHTS", tmp_path / "absent.pth")
    with pytest.raises(UserError, match="no bundled demo weights"):
        load_tracker()
    with pytest.raises(UserError, match="unknown config"):
        load_tracker("no_such_recipe")
    with pytest.raises(UserError, match="--config"):
        load_tracker(checkpoint=tmp_path / "x.pth")
    with pytest.raises(UserError, match="not found"):
        load_tracker("vit_tiny_256_ce", tmp_path / "x.pth")
    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="cut.pth"):
        load_tracker("vit_tiny_256_ce", tmp_path / "cut.pth")
    with pytest.raises(UserError, match="--device"):
        load_tracker("vit_tiny_256_ce", device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA"):
            load_tracker("vit_tiny_256_ce", device="cuda")


def test_wrong_architecture_checkpoint(tmp_path, cfg):
    cfg.model.backbone.depth = 2   # a small stand-in of another architecture
    cfg.model.backbone.embed_dim = 96
    cfg.model.backbone.num_heads = 3
    cfg.model.ce.locations, cfg.model.ce.keep_ratio = [], []
    save_tracker_checkpoint(tmp_path / "other.pth", build_model(cfg))
    with pytest.raises(UserError, match="wrong architecture"):
        load_tracker("vit_tiny_256_ce", tmp_path / "other.pth")
