"""Pair sampling and processing (OSTrack's sampler and STARKProcessing): visibility, causal gaps, crops, labels."""

import numpy as np
import pytest

from mimtrack.errors import UserError
from mimtrack.tracker.config import TrackerConfig
from mimtrack.tracker.data.processing import IMAGENET_MEAN, IMAGENET_STD, PairProcessor, center_heatmap, gaussian_radius
from mimtrack.tracker.data.sampler import PairSampler, causal_pair
from mimtrack.tracker.data.sources import Source, TrainSequence


def _sequence(name, visible):
    visible = np.asarray(visible, dtype=bool)
    boxes = np.tile([10.0, 10.0, 20.0, 20.0], (len(visible), 1))
    return TrainSequence(name, boxes, visible, [f"{name}/{k}.jpg" for k in range(len(visible))])


def test_causal_pair_visible_and_within_max_gap():
    rng = np.random.default_rng(0)
    visible = rng.random(400) < 0.6
    ids = np.flatnonzero(visible)
    for _ in range(2000):
        t, s = causal_pair(visible, 10, rng)
        assert visible[t] and visible[s]
        assert t < s <= t + 10     # a 60% visible sequence always has a visible frame within 10
    # Every visible frame but the last can be the template; searches cover the whole window.
    templates = {causal_pair(visible, 10, rng)[0] for _ in range(20000)}
    assert templates == set(ids[:-1].tolist())


def test_causal_pair_window_grows_by_five():
    visible = np.zeros(200, dtype=bool)
    visible[:10] = True
    visible[100:] = True
    rng = np.random.default_rng(1)
    searches = set()
    for _ in range(3000):
        t, s = causal_pair(visible, 20, rng)
        if t == 9:
            searches.add(s)
        else:
            assert s <= t + 20
    # From frame 9 the first visible frame is 91 away: gap 20 grows to 20 + 5 * ceil(71 / 5) = 95 -> (9, 104].
    assert searches == {100, 101, 102, 103, 104}


def test_sampler_ratios_and_eligibility():
    short = _sequence("short", [1] * 10)             # fewer than min_visible_frames visible
    few = _sequence("few", [1] * 4 + [0] * 40)        # not more than 2 * (1 + 1) visible
    good = _sequence("good", [1] * 30)
    videos = Source("videos", [short, few, good])
    images = Source("images", [_sequence(f"img{k}", [0]) for k in range(3)])
    images.is_video = False
    sampler = PairSampler([videos, images], [3, 1], max_gap=5, min_visible_frames=20)
    rng = np.random.default_rng(2)
    drawn = [sampler.sample(rng) for _ in range(4000)]
    video_draws = [d for d in drawn if d[0] == 0]
    assert {d[1].name for d in video_draws} == {"good"}
    assert abs(len(video_draws) / len(drawn) - 0.75) < 0.03
    # Image sequences: visibility not checked, template and search are frame 0.
    assert {(d[2], d[3]) for d in drawn if d[0] == 1} == {(0, 0)}
    assert {d[1].name for d in drawn if d[0] == 1} == {"img0", "img1", "img2"}
    with pytest.raises(UserError, match="videos: no sequence has enough visible frames"):
        PairSampler([Source("videos", [short, few])], [1], min_visible_frames=20)


def test_gaussian_radius_and_heatmap_by_hand():
    # w = h = 8 cells: roots 15.26, 29.39 and (-22.4 + sqrt(22.4^2 + 4 * 2.8 * 19.2)) / 2 = 2.187 -> r = 2.
    assert gaussian_radius(8.0, 8.0) == pytest.approx(2.1866, abs=1e-3)
    heatmap = center_heatmap([0.25, 0.25, 0.5, 0.5], 16)
    assert heatmap.shape == (16, 16) and heatmap.dtype == np.float32
    assert np.unravel_index(heatmap.argmax(), heatmap.shape) == (8, 8) and heatmap[8, 8] == 1
    sigma2 = (5 / 6) ** 2
    assert heatmap[8, 9] == pytest.approx(np.exp(-1 / (2 * sigma2)), rel=1e-6)
    assert heatmap[10, 10] == pytest.approx(np.exp(-8 / (2 * sigma2)), rel=1e-6)
    assert heatmap[8, 11] == 0 and heatmap[5, 8] == 0          # outside the (2r + 1) square
    assert np.count_nonzero(heatmap) == 25
    # A small box (3.2 x 1.6 cells): radius 0.59 -> 0, a single hot cell at round(centre * 16) = (y 6, x 8).
    small = center_heatmap([0.4, 0.3, 0.2, 0.1], 16)
    assert np.count_nonzero(small) == 1 and small[6, 8] == 1


def _red_box_frame(box, size=(320, 240)):
    frame = np.full((size[1], size[0], 3), 128, dtype=np.uint8)
    x, y, w, h = box
    frame[y:y + h, x:x + w] = (255, 0, 0)
    return frame


@pytest.mark.parametrize("augment", [True, False])
def test_crops_hold_the_target_at_the_labelled_box(augment):
    cfg = TrackerConfig()
    cfg.data.grayscale_prob = 0.0       # a grey frame has no red to find
    processor = PairProcessor(cfg.data, cfg.crop, augment=augment)
    box = (150, 90, 40, 30)
    frame = _red_box_frame(box)
    flips = set()
    for seed in range(12):
        rng = np.random.default_rng(seed)
        sample = processor(frame, np.array(box, float), frame, np.array(box, float), rng)
        assert sample is not None
        for key, size in (("template", 128), ("search", 256)):
            image = sample[key].transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN   # back to [0, 1] RGB
            red = (image[..., 0] > 0.6) & (image[..., 1] < 0.25) & (image[..., 2] < 0.25)
            x, y, w, h = sample[f"{key}_box"] * size
            margin = 4
            inner = red[int(np.ceil(y + margin)):int(y + h - margin), int(np.ceil(x + margin)):int(x + w - margin)]
            assert inner.size and inner.all(), (seed, key)
            outside = np.ones_like(red)
            outside[max(0, int(y - margin)):int(np.ceil(y + h + margin)),
                    max(0, int(x - margin)):int(np.ceil(x + w + margin))] = False
            assert not (red & outside).any(), (seed, key)
        # The template is not jittered: the target sits at the crop centre, (128 - 1) / 2 px, or mirrored to
        # 128 / 2 + 0.5 px by the per-crop flip; the crop side is ceil(2 * sqrt(40 * 30)) px.
        tx, _, tw, _ = sample["template_box"] * 128
        assert tw == pytest.approx(40 * 128 / np.ceil(np.sqrt(1200) * 2), rel=1e-5)
        assert tx + tw / 2 == pytest.approx(63.5, abs=1e-3) or tx + tw / 2 == pytest.approx(64.5, abs=1e-3)
        flips.add(bool(tx + tw / 2 > 64))
        hm = sample["search_heatmap"]
        sx, sy, sw, sh = sample["search_box"] * 16
        assert np.unravel_index(hm.argmax(), hm.shape) == (np.round(sy + sh / 2), np.round(sx + sw / 2))
    assert flips == ({True, False} if augment else {False})


def test_label_size_follows_the_patch_size():
    """A patch-8 backbone scores a 12x12 map on a 96 px search crop: the label must be 12x12 too, peaked at the
    target's cell (the loader passes the recipe's patch size)."""
    cfg = TrackerConfig()
    cfg.crop.template_size, cfg.crop.search_size = 48, 96
    box = (150, 90, 40, 30)
    frame = _red_box_frame(box)
    sample = PairProcessor(cfg.data, cfg.crop, augment=False, stride=8)(
        frame, np.array(box, float), frame, np.array(box, float), np.random.default_rng(0))
    hm = sample["search_heatmap"]
    sx, sy, sw, sh = sample["search_box"] * 12
    assert hm.shape == (12, 12) and sample["search"].shape == (3, 96, 96)
    assert np.unravel_index(hm.argmax(), hm.shape) == (np.round(sy + sh / 2), np.round(sx + sw / 2))


def test_invalid_crops_are_rejected():
    cfg = TrackerConfig()
    processor = PairProcessor(cfg.data, cfg.crop, augment=False)
    frame = np.full((100, 100, 3), 100, np.uint8)
    rng = np.random.default_rng(0)
    assert processor(frame, np.array([10, 10, 0, 5.0]), frame, np.array([10, 10, 5, 5.0]), rng) is None
    # A box far outside the frame: the crop is padding only.
    assert processor(frame, np.array([10, 10, 5, 5.0]), frame, np.array([900, 900, 5, 5.0]), rng) is None
