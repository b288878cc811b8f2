"""Training data from real photographs: ``make-synthetic --photos``, the ``photos`` still-pair source and
``collect-photos``."""

import os

import cv2
import numpy as np
import pytest

from mimtrack.evaluation.datasets import load_dataset
from mimtrack import cli
from mimtrack.errors import UserError
from mimtrack.tracker.data.photos import PhotoBank, PhotoPairSource, PhotoVideo, random_view
from mimtrack.tracker.data.registry import build_source
from mimtrack.tracker.data.synthetic import make_synthetic, random_texture

from tests.fabricate import tree_digest


@pytest.fixture
def photo_dir(tmp_path_factory):
    """Three photos: scikit-image's sample photographs when installed, else textured stand-ins."""
    folder = tmp_path_factory.mktemp("photos")
    try:
        import skimage.data
        images = [skimage.data.astronaut(), skimage.data.chelsea(), skimage.data.coffee()]
    except ImportError:
        rng = np.random.default_rng(0)
        images = [random_texture(rng, 240, 320) for _ in range(3)]
    for k, image in enumerate(images):
        image = cv2.resize(np.ascontiguousarray(image[..., :3]), (320, 240), interpolation=cv2.INTER_AREA)
        assert cv2.imwrite(str(folder / f"photo{k}.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return folder



def test_video_layouts_load_for_evaluation_and_training(photo_dir, tmp_path):
    names = make_synthetic("got10k", tmp_path / "got10k", sequences=3, frames=40, size=(96, 72), seed=1,
                           photos=photo_dir)
    train = load_dataset("got10k", tmp_path / "got10k", "train")
    assert [s.name for s in train] == names
    for seq in train:
        assert len(seq) == 40 and all(os.path.isfile(p) for p in seq.frames)
        absent = seq.labels["absence"] == 1
        assert (seq.ground_truth[absent] == 0).all() and (seq.ground_truth[~absent, 2:] > 0).all()
        boxes = seq.ground_truth[~absent]
        assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 96).all()
        assert (boxes[:, 1] + boxes[:, 3] <= 72).all()
    assert len(build_source("got10k", tmp_path / "got10k", "train_full")) == 3
    make_synthetic("lasot", tmp_path / "lasot", sequences=2, frames=30, size=(96, 72), photos=photo_dir)
    assert len(load_dataset("lasot", tmp_path / "lasot", "train")) == 2
    make_synthetic("otb", tmp_path / "otb", sequences=2, frames=30, size=(96, 72), photos=photo_dir)
    otb = load_dataset("otb", tmp_path / "otb")
    assert len(otb) == 2 and (otb[0].ground_truth[:, 2:] > 0).all()   # OTB: the target never leaves


def test_deterministic_per_seed(photo_dir, tmp_path):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        make_synthetic("got10k", tmp_path / name, sequences=2, frames=15, size=(64, 48), seed=seed, photos=photo_dir)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


@pytest.mark.parametrize("seed", range(6))
def test_box_is_the_extent_of_the_drawn_target(photo_dir, seed):
    """A white target on a black scene: the pixels that the target made bright span exactly the box."""
    video = PhotoVideo(np.random.default_rng(seed), 30, (160, 120), PhotoBank(photo_dir), absence=False,
                       occlusion=False, distractors=0)
    video.background[:] = 0
    video.scene_gain[:] = 1
    video.target.patch = np.repeat(255 * video.target.alpha[..., None], 3, axis=2)   # premultiplied white
    video.target.gain = None
    for k in (0, 7, 29):
        frame, box = video.render(k)
        ys, xs = np.nonzero(frame.max(axis=2) >= 128)          # round(255 * alpha) >= 128  <=>  alpha >= 0.5
        inside = (box[0] >= 0 and box[1] >= 0 and box[0] + box[2] <= 160 and box[1] + box[3] <= 120)
        if not inside:
            continue
        assert (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()) == tuple(box.astype(int))


@pytest.mark.parametrize("aspect", [0.25, 4.0])
def test_target_aspect_sets_the_shape_of_the_drawn_target(photo_dir, aspect):
    """--target-aspect LOW HIGH bounds the target's width / height; LOW = HIGH fixes it (up to the aspect breathing,
    rotation and perspective that some sequences add, hence the median over seeds)."""
    bank = PhotoBank(photo_dir)
    drawn = [np.divide(*PhotoVideo(np.random.default_rng(seed), 20, (160, 120), bank, absence=False, occlusion=False,
                                   distractors=0, target_aspect=(aspect, aspect)).box(0)[2:])
             for seed in range(12)]
    assert aspect / 1.4 < np.median(drawn) < aspect * 1.4
    default = [np.divide(*PhotoVideo(np.random.default_rng(seed), 20, (160, 120), bank, absence=False,
                                     occlusion=False, distractors=0).box(0)[2:]) for seed in range(12)]
    assert not np.allclose(drawn, default)


def test_distractor_counts(photo_dir):
    bank = PhotoBank(photo_dir)
    video = lambda seed, d: PhotoVideo(np.random.default_rng(seed), 5, (96, 72), bank, distractors=d)
    assert [len(video(s, 4).distractors) for s in range(3)] == [4, 4, 4]
    assert [len(video(s, (5, 5)).distractors) for s in range(3)] == [5, 5, 5]
    counts = [len(video(s, (2, 4)).distractors) for s in range(20)]
    assert set(counts) == {2, 3, 4}
    assert set(len(video(s, None).distractors) for s in range(20)) <= {0, 1, 2, 3}


def test_distractor_reach_keeps_the_distractors_near_the_target(photo_dir):
    bank = PhotoBank(photo_dir)
    far = near = 0
    for seed in range(6):
        args = (np.random.default_rng(seed), 40, (320, 240), bank)
        video = PhotoVideo(*args, absence=False, distractors=3, distractor_reach=1.0)
        h, w = video.target.patch.shape[:2]                         # the base side, truncated to whole pixels
        side = np.sqrt((h + 1) * (w + 1))
        for layer in video.distractors:
            offset = np.abs(layer.centres - video.target.centres).max()
            assert offset <= side + 1e-6
            near += 1
        roaming = PhotoVideo(*args, absence=False, distractors=3)
        far += sum(np.abs(layer.centres - roaming.target.centres).max() > side for layer in roaming.distractors)
    assert near == 18 and far > 0


def test_bad_target_aspect_and_distractors(photo_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    for extra, message in ((["--photos", str(photo_dir), "--target-aspect", "2", "1"], "0 < LOW <= HIGH"),
                           (["--photos", str(photo_dir), "--target-aspect", "0", "1"], "0 < LOW <= HIGH"),
                           (["--target-aspect", "0.2", "2"], "--photos DIR"),
                           (["--photos", str(photo_dir), "--distractors", "3", "1"], "0 <= MIN <= MAX"),
                           (["--photos", str(photo_dir), "--distractors", "-1", "1"], "0 <= MIN <= MAX"),
                           (["--distractors", "1", "2"], "--photos DIR"),
                           (["--photos", str(photo_dir), "--distractor-reach", "0"], "a number > 0"),
                           (["--distractor-reach", "1.5"], "--photos DIR")):
        assert cli.main(["make-synthetic", "--format", "otb", "--out", out, "--sequences", "1", "--frames", "3",
                         *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not os.path.exists(out)


def test_labels_follow_leaving_the_frame_and_occlusion(photo_dir):
    bank = PhotoBank(photo_dir)
    left = seen = 0
    for seed in range(12):
        video = PhotoVideo(np.random.default_rng(seed), 60, (96, 72), bank)
        gt, in_view, visible = video.labels()
        assert ((gt[:, 2] == 0) == (in_view == 0)).all()
        assert (visible <= in_view + 1e-6).all() and (in_view <= 1 + 1e-6).all()
        left += (in_view == 0).any()
        seen += (visible < in_view - 0.05).any()
    assert left and seen      # some targets leave the image, some are partly hidden by the occluder


def test_still_pairs_from_photos(photo_dir):
    source = build_source("photos", photo_dir)
    assert len(source) == 3 * source.regions_per_photo and not source.is_video
    a, b = source.sequence(5), PhotoPairSource(photo_dir).sequence(5)
    np.testing.assert_array_equal(a.boxes, b.boxes)                 # regions are a function of the index
    assert not np.array_equal(a.boxes, source.sequence(6).boxes)
    frame = source.frame(a.frames[0])
    assert frame.shape == (240, 320, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize("seed", range(5))
def test_second_view_box_covers_the_warped_region(seed):
    image = np.zeros((200, 260, 3), np.uint8)
    box = np.array([90.0, 60.0, 70.0, 50.0])
    image[60:110, 90:160] = 255
    view, view_box = random_view(image, box, np.random.default_rng(seed))
    # The same view of a black image (same draws: same noise) leaves only the warped white region in the difference.
    black, _ = random_view(np.zeros_like(image), box, np.random.default_rng(seed))
    ys, xs = np.nonzero(np.abs(view.astype(int) - black).max(axis=2) > 40)
    drawn = np.array([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()], float)
    x0, y0 = np.maximum(drawn[:2], view_box[:2])
    x1, y1 = np.minimum(drawn[:2] + drawn[2:], view_box[:2] + view_box[2:])
    iou = max(x1 - x0, 0) * max(y1 - y0, 0) / (drawn[2] * drawn[3] + view_box[2] * view_box[3]
                                                - max(x1 - x0, 0) * max(y1 - y0, 0))
    assert iou > 0.75


def test_training_batches_from_photos(photo_dir, tmp_path):
    from mimtrack.tracker.config import TrainDataset, load_tracker_config
    from mimtrack.tracker.data.loader import build_pair_dataset

    make_synthetic("got10k", tmp_path / "got10k", sequences=2, frames=40, size=(96, 72), seed=2, photos=photo_dir)
    cfg = load_tracker_config("smoke_cpu")
    cfg.data.train = [TrainDataset("got10k", "train"), TrainDataset("photos")]
    dataset = build_pair_dataset(cfg, {"got10k": str(tmp_path / "got10k"), "photos": str(photo_dir)})
    sample = dataset[3]
    assert sample["template"].shape == (3, 64, 64) and sample["search"].shape == (3, 128, 128)
    assert sample["search_heatmap"].max() == 1.0
    np.testing.assert_array_equal(dataset[3]["search"], sample["search"])   # a function of (seed, epoch, index)


def test_bad_photo_folders(tmp_path, capsys):
    with pytest.raises(UserError, match="photo folder not found"):
        PhotoBank(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no photos found"):
        PhotoBank(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.jpg").write_bytes(b"not a jpeg")
    bank = PhotoBank(tmp_path / "broken")
    with pytest.raises(UserError, match="none of its 1 image files could be decoded"):
        bank.draw(np.random.default_rng(0))
    out = str(tmp_path / "out")
    for folder, message in (("empty", "no photos found"), ("broken", "could be decoded")):
        assert cli.main(["make-synthetic", "--format", "otb", "--out", out, "--sequences", "1", "--frames", "3",
                         "--photos", str(tmp_path / folder)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert cli.main(["make-synthetic", "--format", "coco", "--out", out, "--photos", str(tmp_path / "broken")]) == 2
    assert "--data photos=DIR" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_unreadable_photo_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"x")
    folder.chmod(0)
    try:
        with pytest.raises(UserError, match="cannot read the photo folder"):
            PhotoBank(folder)
    finally:
        folder.chmod(0o755)


def test_collect_photos(tmp_path, capsys):
    pytest.importorskip("skimage")
    assert cli.main(["collect-photos", "--out", str(tmp_path), "--max-side", "256"]) == 0
    names = sorted(os.listdir(tmp_path))
    assert "skimage-astronaut.jpg" in names and len(names) >= 15
    image = cv2.imread(str(tmp_path / "skimage-astronaut.jpg"))
    assert max(image.shape[:2]) == 256
    assert len(PhotoBank(tmp_path)) == len(names)


def test_collect_photos_reads_one_plasma_wallpaper_per_folder_at_its_largest_size(tmp_path, monkeypatch):
    import mimtrack.tracker.data.photos as photos

    wallpapers = tmp_path / "wallpapers"
    rng = np.random.default_rng(0)
    for name, sizes in (("Path", ((120, 160), (300, 400))), ("Kite", ((90, 120),))):
        folder = wallpapers / name / "contents" / "images"
        folder.mkdir(parents=True)
        for h, w in sizes:
            cv2.imwrite(str(folder / f"{w}x{h}.jpg"), rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
    monkeypatch.setattr(photos, "PLASMA_WALLPAPERS", str(wallpapers))
    monkeypatch.setattr(photos, "PLASMA_PHOTOS", ("Path", "Kite", "Absent"))
    monkeypatch.setattr(photos, "SYSTEM_PHOTO_GLOBS", ())
    out = tmp_path / "out"
    names = photos.collect_photos(out, max_side=1024)
    assert [n for n in names if n.startswith("debian-")] == ["debian-plasma-Path", "debian-plasma-Kite"]
    assert cv2.imread(str(out / "debian-plasma-Path.jpg")).shape[:2] == (300, 400)
