"""``mimtrack make-synthetic``: official layouts that the evaluation readers and the training sources load."""

import os

import numpy as np
import pytest

from mimtrack.evaluation.datasets import load_dataset
from mimtrack import cli
from mimtrack.tracker.data.registry import build_source
from mimtrack.tracker.data.synthetic import SyntheticVideo, make_synthetic

from tests.fabricate import tree_digest



def test_lasot_layout_loads_for_evaluation_and_training(tmp_path):
    names = make_synthetic("lasot", tmp_path, sequences=3, frames=60, size=(80, 60), seed=0)
    sequences = load_dataset("lasot", tmp_path, "train")
    assert [s.name for s in sequences] == names
    seq = sequences[0]
    assert len(seq) == 60 and len(seq.frames) == 60 and all(os.path.isfile(p) for p in seq.frames)
    assert seq.labels["out_of_view"].any()                        # the target leaves the image
    assert not seq.visible.all() and seq.visible.sum() > 20
    # Out-of-view frames: a 0,0,0,0 box. Visible boxes lie inside the image.
    assert (seq.ground_truth[seq.labels["out_of_view"] == 1] == 0).all()
    boxes = seq.ground_truth[seq.visible]
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 0] + boxes[:, 2] <= 80).all()
    source = build_source("lasot", tmp_path)
    assert len(source) == 3 and source.visible_counts().tolist() == [s.visible.sum() for s in sequences]


def test_got10k_train_and_test_layouts(tmp_path):
    make_synthetic("got10k", tmp_path, sequences=2, frames=50, size=(80, 60), seed=0)
    make_synthetic("got10k", tmp_path, sequences=2, frames=50, size=(80, 60), seed=0, split="test")
    train = load_dataset("got10k", tmp_path, "train")
    assert [s.name for s in train] == ["GOT-10k_Train_000001", "GOT-10k_Train_000002"]
    assert set(train[0].labels) == {"absence", "cover", "cut_by_image"}
    assert train[0].labels["absence"].any() and train[0].info["resolution"] == (80, 60)
    assert ((train[0].labels["cover"] >= 0) & (train[0].labels["cover"] <= 8)).all()
    test = load_dataset("got10k", tmp_path, "test")
    assert len(test[0]) == 1 and len(test[0].frames) == 50
    assert len(build_source("got10k", tmp_path, "train_full")) == 2


def test_otb_and_coco_layouts(tmp_path):
    make_synthetic("otb", tmp_path / "otb", sequences=2, frames=30, size=(80, 60))
    otb = load_dataset("otb", tmp_path / "otb")
    assert [s.name for s in otb] == ["Synthetic001", "Synthetic002"]
    assert (otb[0].ground_truth[:, 2:] > 0).all()                 # OTB has no absent frames
    assert os.path.isfile(otb[0].frames[29])
    make_synthetic("coco", tmp_path / "coco", sequences=5, size=(80, 60))
    assert len(build_source("coco", tmp_path / "coco")) >= 5


def test_deterministic_per_seed(tmp_path):
    make_synthetic("got10k", tmp_path / "a", sequences=2, frames=20, size=(64, 48), seed=3)
    make_synthetic("got10k", tmp_path / "b", sequences=2, frames=20, size=(64, 48), seed=3)
    make_synthetic("got10k", tmp_path / "c", sequences=2, frames=20, size=(64, 48), seed=4)
    assert tree_digest(tmp_path / "a") == tree_digest(tmp_path / "b") != tree_digest(tmp_path / "c")


def test_frames_show_the_target_at_its_box():
    video = SyntheticVideo(np.random.default_rng(0), 40, (120, 90), absence=False, occlusion=False, distractors=0)
    frame, box = video.render(10)
    background = video.background
    x, y, w, h = box.astype(int)
    changed = np.abs(frame.astype(int) - background).sum(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert xs.min() >= x and xs.max() < x + w and ys.min() >= y and ys.max() < y + h
    assert changed[y:y + h, x:x + w].mean() > 0.7                  # the target covers its box


def test_cli(tmp_path, capsys):
    assert cli.main(["make-synthetic", "--format", "otb", "--out", str(tmp_path), "--sequences", "1",
                     "--frames", "5", "--size", "48x32"]) == 0
    assert os.path.isfile(tmp_path / "Synthetic001" / "img" / "0005.jpg")
    assert cli.main(["make-synthetic", "--format", "otb", "--out", str(tmp_path), "--size", "big"]) == 2
    assert "--size 'big': expected WIDTHxHEIGHT" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["make-synthetic", "--format", "nosuchformat", "--out", str(tmp_path)])
