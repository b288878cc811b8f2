import os

import cv2
import numpy as np
import pytest

import mimtrack.tracker.checkpoints as tracker_checkpoints
from mimtrack.cli import main
from mimtrack.tracker import build_model
from mimtrack.tracker.checkpoints import save_tracker_checkpoint
from mimtrack.tracker import clip
from mimtrack.tracker.clip import demo_clip, render_clip
from mimtrack.tracker.config import load_tracker_config

CONFIG = "vit_tiny_256_ce"


@pytest.fixture
def no_demo_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(tracker_checkpoints, "DEMO_WEIGHTS", tmp_path / "absent.pth")


def count_video_frames(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    size = (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    capture.release()
    return count, size


def test_demo_on_a_video(shared_dir, checkpoint, tmp_path, capsys):
    video = shared_dir / "data" / "video" / "bag.avi"
    out, boxes = tmp_path / "out.mp4", tmp_path / "out.txt"
    assert main(["demo", str(video), "--init", "315,140,112,115", "--config", CONFIG, "--checkpoint",
                 str(checkpoint), "--output", str(out), "--boxes", str(boxes)]) == 0
    printed = capsys.readouterr().out
    assert "196 frames" in printed and "frames/s" in printed and "excluded" in printed
    assert count_video_frames(out) == (196, (480, 360))
    rows = np.loadtxt(boxes, delimiter=",", ndmin=2)
    assert rows.shape == (196, 4) and np.isfinite(rows).all()
    np.testing.assert_array_equal(rows[0], [315, 140, 112, 115])
    assert sorted(os.listdir(tmp_path)) == ["out.mp4", "out.txt"]    # no temporary file left


def test_demo_on_a_grayscale_folder_whose_frames_change_size(checkpoint, tmp_path, capsys):
    frames = tmp_path / "frames"
    frames.mkdir()
    rng = np.random.default_rng(1)
    for k, (w, h) in enumerate([(80, 60), (80, 60), (100, 70), (64, 48)]):
        cv2.imwrite(str(frames / f"{k:03d}.png"), rng.integers(0, 256, size=(h, w), dtype=np.uint8))
    (frames / "notes.txt").write_text("not a frame")
    out = tmp_path / "gray.mp4"
    assert main(["demo", str(frames), "--init", "20,15,30,20", "--config", CONFIG, "--checkpoint",
                 str(checkpoint), "--output", str(out), "--boxes", str(tmp_path / "b.txt")]) == 0
    assert count_video_frames(out) == (4, (80, 60))     # written at the first frame's size
    rows = np.loadtxt(tmp_path / "b.txt", delimiter=",", ndmin=2)
    assert rows.shape == (4, 4)
    assert rows[3, 0] + rows[3, 2] <= 64 and rows[3, 1] + rows[3, 3] <= 48     # clipped into the small last frame


def test_demo_without_video_and_without_weights_says_so(no_demo_weights, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MIMTRACK_CACHE", str(tmp_path / "cache"))
    assert main(["demo"]) == 0
    printed = capsys.readouterr().out
    assert len(printed.strip().splitlines()) == 1 and "no bundled demo weights" in printed
    assert not (tmp_path / "cache").exists()


def test_demo_without_video_tracks_the_generated_clip(checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MIMTRACK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(clip, "NUM_FRAMES", 12)     # a shorter clip: CPU time
    assert main(["demo", "--config", CONFIG, "--checkpoint", str(checkpoint), "--boxes", str(tmp_path / "b.txt")]) == 0
    folder, gt = demo_clip()
    assert folder == tmp_path / "cache" / clip.CLIP_NAME
    rows = np.loadtxt(tmp_path / "b.txt", delimiter=",", ndmin=2)
    assert rows.shape == (len(gt), 4) == (12, 4)
    np.testing.assert_array_equal(rows[0], gt[0])


def test_clip_is_deterministic_and_its_ground_truth_marks_the_object(tmp_path):
    frames, gt = render_clip()
    frames2, gt2 = render_clip()
    assert len(frames) == len(gt) == 60
    assert all(np.array_equal(a, b) for a, b in zip(frames, frames2)) and np.array_equal(gt, gt2)
    height, width = frames[0].shape[:2]
    assert (gt[:, 0] >= 0).all() and (gt[:, 0] + gt[:, 2] <= width).all() and (gt[:, 3] > 0).all()
    assert (gt[:, 1] >= 0).all() and (gt[:, 1] + gt[:, 3] <= height).all()
    assert len(np.unique(gt[:, :2], axis=0)) > 30       # it moves
    # The ground truth marks the object: it is where consecutive frames change (the background is static).
    for k in range(1, len(frames)):
        moved = np.abs(frames[k].astype(int) - frames[k - 1].astype(int)).sum(axis=2) > 0
        x, y, w, h = np.round(gt[k]).astype(int)
        inside = np.zeros_like(moved)
        inside[y:y + h, x:x + w] = True
        assert moved[inside].mean() > moved[~inside].mean()
    folder, gt3 = demo_clip(tmp_path / "clip")
    assert np.array_equal(gt3, gt) and len(list(folder.glob("*.png"))) == 60
    np.testing.assert_array_equal(cv2.imread(str(folder / "0001.png"))[..., ::-1], frames[0])


def test_bad_input_one_line_exit_2_and_no_output(shared_dir, checkpoint, tmp_path, capsys, monkeypatch):
    video = str(shared_dir / "data" / "video" / "bag.avi")
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all")
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(checkpoint.read_bytes()[:4000])
    other_cfg = load_tracker_config(CONFIG)
    other_cfg.model.backbone.depth, other_cfg.model.ce.locations, other_cfg.model.ce.keep_ratio = 2, [], []
    other = tmp_path / "other.pth"
    save_tracker_checkpoint(other, build_model(other_cfg))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    out = tmp_path / "out" / "o.mp4"
    weights = ["--config", CONFIG, "--checkpoint", str(checkpoint)]
    cases = {
        "no such video": [str(tmp_path / "missing.avi"), "--init", "1,1,5,5", *weights],
        "cannot open it as a video": [str(junk), "--init", "1,1,5,5", *weights],
        "--init '1,2,3'": [video, "--init", "1,2,3", *weights],
        "--init 'a,b,c,d'": [video, "--init", "a,b,c,d", *weights],
        "width and height must be > 0": [video, "--init", "10,10,0,20", *weights],
        "entirely outside": [video, "--init", "500,10,20,20", *weights],
        "cut.pth": [video, "--init", "315,140,112,115", "--config", CONFIG, "--checkpoint", str(truncated)],
        "wrong architecture": [video, "--init", "315,140,112,115", "--config", CONFIG, "--checkpoint", str(other)],
        "unknown config": [video, "--init", "315,140,112,115", "--config", "no_such_recipe"],
        "no display": [video, *weights],
    }
    for expected, args in cases.items():
        assert main(["demo", *args, "--output", str(out), "--boxes", str(tmp_path / "out" / "b.txt")]) == 2
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (expected, err)
        assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out"), expected
