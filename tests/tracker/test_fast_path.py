"""The per-frame fast path (one crop, in-place normalisation, cached template tokens) against OSTrack's order."""

import cv2
import numpy as np
import pytest
import torch

from mimtrack.errors import UserError
from mimtrack.tracker import Tracker, build_model, load_tracker
from mimtrack.tracker.backends import TorchNetwork, physical_cores
from mimtrack.tracker.config import load_tracker_config
from mimtrack.tracker.geometry import clip_box, crop_resize, crop_square, hann2d, map_box_back
from mimtrack.tracker.model.head import decode

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
SMALL = ["model.backbone.depth=4", "model.ce.locations=[1,2]", "model.ce.keep_ratio=[0.7,0.7]",
         "model.head.channels=64"]


def ostrack_crop(image, box, factor, size):
    """sample_target written out: pad the in-image part black (right/bottom pad x2 - W + 1), then resize."""
    x, y, w, h = box
    sz = int(np.ceil(np.sqrt(w * h) * factor))
    x1, y1 = round(x + 0.5 * w - sz * 0.5), round(y + 0.5 * h - sz * 0.5)
    x2, y2 = x1 + sz, y1 + sz
    H, W = image.shape[:2]
    l, t, r, b = max(0, -x1), max(0, -y1), max(x2 - W + 1, 0), max(y2 - H + 1, 0)
    patch = cv2.copyMakeBorder(image[y1 + t:y2 - b, x1 + l:x2 - r], t, b, l, r, cv2.BORDER_CONSTANT, value=0)
    return cv2.resize(patch, (size, size)), size / sz


def random_boxes(rng, height, width, n):
    boxes = []
    for _ in range(n):
        w, h = rng.uniform(3, width * 0.8), rng.uniform(3, height * 0.8)
        boxes.append([rng.uniform(-0.5 * w, width - 0.5 * w), rng.uniform(-0.5 * h, height - 0.5 * h), w, h])
    return boxes


def test_one_crop_is_bit_identical_to_ostrack_and_resize_first_is_not():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(180, 260, 3), dtype=np.uint8)
    out = np.empty((64, 64, 3), np.uint8)
    padded = 0
    for box in random_boxes(rng, 180, 260, 200):
        expected, factor = ostrack_crop(image, box, 4.0, 64)
        got, got_factor = crop_resize(image, box, 4.0, 64, out=out)
        assert got_factor == factor and np.array_equal(got, expected)
        assert got is out or got.base is out   # resized into the preallocated buffer
        assert np.array_equal(crop_square(image, box, 4.0, 64)[0], expected)
        padded += int(np.sqrt(box[2] * box[3]) * 4 > 100)
    assert padded > 50   # most of these crops reach outside the image

    # Why we keep OSTrack's order: resizing only the in-image part and padding after changes the border pixels.
    box = [200.3, 10.7, 50.0, 40.0]   # crop reaches past the right and top edges
    expected, _ = ostrack_crop(image, box, 4.0, 64)
    sz = int(np.ceil(np.sqrt(2000.0) * 4))
    x1, y1 = round(225.3 - sz / 2), round(30.7 - sz / 2)
    l, t, r, b = 0, -y1, x1 + sz - 260 + 1, 0
    inner = image[0:y1 + sz, x1:260 - 1]
    w_in, h_in = round((sz - l - r) * 64 / sz), round((sz - t - b) * 64 / sz)
    resized_first = np.zeros((64, 64, 3), np.uint8)
    resized_first[64 - h_in:, :w_in] = cv2.resize(inner, (w_in, h_in))
    assert not np.array_equal(resized_first, expected)


def test_in_place_normalisation_is_bit_identical():
    cfg = load_tracker_config("vit_tiny_256_ce", SMALL)
    tracker = Tracker(build_model(cfg), cfg)
    for seed in range(3):
        crop = np.random.default_rng(seed).integers(0, 256, size=(256, 256, 3), dtype=np.uint8)
        crop[0, :, :] = np.arange(256, dtype=np.uint8)[:, None]   # every pixel value in every channel
        reference = (torch.from_numpy(crop).float().permute(2, 0, 1).unsqueeze(0) / 255.0 - MEAN) / STD
        got = tracker._normalise(crop, tracker.search_input)
        assert got.data_ptr() == tracker.search_input.data_ptr()
        assert torch.equal(got, reference)
    assert torch.equal(tracker._normalise(crop[:128, :128]), reference[:, :, :128, :128])


class ReferenceTracker:
    """The per-frame path before the fast path: crop_square, fresh tensors, the full forward every frame."""

    def __init__(self, model, cfg):
        self.model, self.cfg = model.eval(), cfg
        self.window = hann2d(cfg.crop.search_size // 16)

    def normalise(self, crop):
        return (torch.from_numpy(crop).float().permute(2, 0, 1).unsqueeze(0) / 255.0 - MEAN) / STD

    @torch.no_grad()
    def initialize(self, image, box):
        self.template = self.normalise(crop_square(image, box, self.cfg.crop.template_factor,
                                                   self.cfg.crop.template_size)[0])
        self.state = list(box)

    @torch.no_grad()
    def track(self, image):
        size = self.cfg.crop.search_size
        crop, factor, _ = crop_square(image, self.state, self.cfg.crop.search_factor, size)
        out = self.model(self.template, self.normalise(crop))
        response = out["score_map"] * self.window
        box = (decode(response, out["size_map"], out["offset_map"])[0] * size / factor).tolist()
        self.state = clip_box(map_box_back(box, self.state, factor, size), *image.shape[:2])
        return self.state


def moving_square_frames(n=12):
    rng = np.random.default_rng(3)
    background = rng.integers(0, 120, size=(200, 280, 3), dtype=np.uint8)
    frames, x = [], 20
    for k in range(n):
        frame = background.copy()
        x = 20 + 17 * k   # runs off the right edge: padded crops
        frame[60:100, x:x + 40] = (230, 180, 40)
        frames.append(frame)
    return frames, [20.0, 60.0, 40.0, 40.0]


def test_fast_tracker_gives_the_reference_boxes():
    torch.manual_seed(0)
    cfg = load_tracker_config("vit_tiny_256_ce", SMALL)
    model = build_model(cfg).eval()
    fast, reference = Tracker(model, cfg), ReferenceTracker(model, cfg)
    frames, box = moving_square_frames()
    fast.initialize(frames[0], box)
    reference.initialize(frames[0], box)
    assert fast.network.template.shape == (1, 64, 192)   # the template's tokens, computed once
    for frame in frames[1:]:
        # Size and offset come from the peak's 9x9 window (OSTrack.locate): the same sums, other rounding.
        np.testing.assert_allclose(fast.track(frame)["box"], reference.track(frame), rtol=0, atol=1e-4)


def test_torch_network_falls_back_to_the_full_forward_for_other_modules():
    class Plain(torch.nn.Module):
        def forward(self, template, search):
            v = (template.mean() + search.mean()).view(1, 1, 1, 1)
            return {"score_map": v, "size_map": v.expand(1, 2, 1, 1), "offset_map": v.expand(1, 2, 1, 1)}

    network = TorchNetwork(Plain(), "cpu")
    template = torch.ones(1, 3, 8, 8)
    network.set_template(template)
    template.fill_(5)   # the caller's buffer may be reused: the network keeps its own copy
    score_map, box, peak = network(torch.zeros(1, 3, 8, 8), torch.ones(1, 1, 1, 1))
    assert float(score_map) == 1.0 and box.tolist() == [[1.0, 1.0, 1.0, 1.0]] and peak.tolist() == [0]


def test_torch_int8_runs_and_stays_close_to_float():
    torch.manual_seed(0)
    cfg = load_tracker_config("vit_tiny_256_ce", SMALL)
    model = build_model(cfg).eval()
    from mimtrack.tracker.backends import quantize_torch_int8

    quantized = TorchNetwork(quantize_torch_int8(model), "cpu")
    float_net = TorchNetwork(model, "cpu")
    gen = torch.Generator().manual_seed(0)
    template, search = torch.randn(1, 3, 128, 128, generator=gen), torch.randn(1, 3, 256, 256, generator=gen)
    for net in (quantized, float_net):
        net.set_template(template)
    window = torch.ones(1, 1, 16, 16)
    q_score, f_score = quantized(search, window)[0], float_net(search, window)[0]
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in quantized.model.modules())
    score_diff = float((q_score - f_score).abs().max())
    assert 0 < score_diff < 0.15   # quantised (not the same function) but close: scores are sigmoids in [0, 1]


def test_load_tracker_rejects_bad_backend_and_threads():
    with pytest.raises(UserError, match="--backend 'tensorrt'"):
        load_tracker("vit_tiny_256_ce", backend="tensorrt")
    with pytest.raises(UserError, match="--threads 0"):
        load_tracker("vit_tiny_256_ce", threads=0)
    with pytest.raises(UserError, match="--precision 'fp16' with --backend onnxruntime: expected one of fp32"):
        load_tracker("vit_tiny_256_ce", backend="onnxruntime", precision="fp16")
    with pytest.raises(UserError, match="--compile applies to the torch backend only"):
        load_tracker("vit_tiny_256_ce", backend="onnxruntime", compile=True)


def test_physical_cores_counts_cores_not_more_than_usable_cpus():
    assert 1 <= physical_cores() <= (len(__import__("os").sched_getaffinity(0)))
