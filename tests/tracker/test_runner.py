import importlib.util
import os

import numpy as np
import pytest

import mimtrack.tracker.checkpoints as tracker_checkpoints
from mimtrack.cli import main
from tests.fabricate import make_got10k, make_otb
from mimtrack.tracker import load_tracker, read_image_rgb

CONFIG = "vit_tiny_256_ce"
GTS = {  # boxes inside the fabricated 64 x 48 frames
    "Basketball": [[10, 8, 20, 16]] * 6,
    "Car4": [[30.5, 20.25, 12, 10]] * 5,
}


def has_module(name):
    return importlib.util.find_spec(name) is not None


@pytest.fixture(scope="module")
def otb_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("otb")
    make_otb(root, GTS, frames=True)
    return root


def track_cli(*args):
    return main(["track", "--config", CONFIG, *map(str, args)])


def read_rows(path):
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_track_otb_resume_and_same_boxes_as_the_api(otb_root, checkpoint, tmp_path, capsys):
    results = tmp_path / "res"
    assert track_cli("--checkpoint", checkpoint, "--dataset", "otb", "--root", otb_root, "--results", results) == 0
    assert "tracked 2 sequences (11 frames" in capsys.readouterr().out
    for name, gt in GTS.items():
        boxes = read_rows(results / f"{name}.txt")
        times = np.loadtxt(results / f"{name}_time.txt", ndmin=1)
        assert boxes.shape == (len(gt), 4) and times.shape == (len(gt),) and (times > 0).all()
        np.testing.assert_array_equal(boxes[0], gt[0])          # row 1 = the initial box
        assert "," in (results / f"{name}.txt").read_text().splitlines()[1]
        # The API on the same frames gives the same boxes (files hold %.4f).
        tracker = load_tracker(CONFIG, checkpoint)
        frames = sorted((otb_root / name / "img").iterdir())
        tracker.initialize(read_image_rgb(frames[0]), gt[0])
        expected = [tracker.track(read_image_rgb(f))["box"] for f in frames[1:]]
        np.testing.assert_allclose(boxes[1:], expected, atol=6e-5)
    assert sorted(os.listdir(results)) == ["Basketball.txt", "Basketball_time.txt", "Car4.txt", "Car4_time.txt"]

    # Resume: finished sequences are skipped and their files left alone.
    stamps = {p: p.stat().st_mtime_ns for p in results.iterdir()}
    (results / "Car4.txt").unlink()
    assert track_cli("--checkpoint", checkpoint, "--dataset", "otb", "--root", otb_root, "--results", results) == 0
    assert "tracked 1 sequences (5 frames" in capsys.readouterr().out
    assert all(p.stat().st_mtime_ns == stamps[p] for p in stamps if p.name.startswith("Basketball"))
    assert read_rows(results / "Car4.txt").shape == (5, 4)

    if has_module("mimtrack.evaluation.cli"):
        assert main(["eval", "--dataset", "otb", "--root", str(otb_root), "--results", str(results)]) == 0


def test_workers_give_the_same_files(otb_root, checkpoint, tmp_path, capsys):
    for workers in (1, 2):
        assert track_cli("--checkpoint", checkpoint, "--dataset", "otb", "--root", otb_root,
                         "--results", tmp_path / f"w{workers}", "--workers", workers) == 0
    for name in GTS:
        np.testing.assert_allclose(read_rows(tmp_path / "w1" / f"{name}.txt"),
                                   read_rows(tmp_path / "w2" / f"{name}.txt"), atol=2e-4)


def test_got10k_layout_and_submission(tmp_path, checkpoint, capsys):
    root = tmp_path / "got10k"
    gt = np.array([[12, 10, 20, 16]] * 4)
    make_got10k(root, "val", {"GOT-10k_Val_000001": {"gt": gt}}, frames=True)
    results = tmp_path / "res"
    assert track_cli("--checkpoint", checkpoint, "--dataset", "got10k", "--root", root, "--split", "val",
                     "--results", results) == 0
    folder = results / "GOT-10k_Val_000001"
    assert sorted(os.listdir(folder)) == ["GOT-10k_Val_000001_001.txt", "GOT-10k_Val_000001_time.txt"]
    assert read_rows(folder / "GOT-10k_Val_000001_001.txt").shape == (4, 4)
    assert not (tmp_path / "res.zip").exists()      # val has ground truth: nothing to submit

    if has_module("mimtrack.evaluation.submit"):
        make_got10k(root, "test", {"GOT-10k_Test_000001": {"gt": gt[:1]}}, frames=True)
        assert track_cli("--checkpoint", checkpoint, "--dataset", "got10k", "--root", root, "--split", "test",
                         "--results", tmp_path / "test") == 0
        assert (tmp_path / "test.zip").is_file()


def test_track_real_otb_sequence(shared_dir, checkpoint, tmp_path, capsys):
    results = tmp_path / "res"
    assert track_cli("--checkpoint", checkpoint, "--dataset", "otb", "--root", shared_dir / "data" / "otb",
                     "--sequences", "Crossing", "--results", results) == 0
    boxes = read_rows(results / "Crossing.txt")
    assert boxes.shape == (120, 4) and np.isfinite(boxes).all()
    np.testing.assert_array_equal(boxes[0], [205, 151, 17, 50])
    if has_module("mimtrack.evaluation.cli"):
        assert main(["eval", "--dataset", "otb", "--root", str(shared_dir / "data" / "otb"),
                     "--sequences", "Crossing", "--results", str(results)]) == 0


def test_bad_input_one_line_exit_2(otb_root, checkpoint, tmp_path, capsys, monkeypatch):
    truncated = tmp_path / "cut.pth"
    truncated.write_bytes(checkpoint.read_bytes()[:5000])
    results = tmp_path / "res"
    common = ["--dataset", "otb", "--root", str(otb_root), "--results", str(results)]
    monkeypatch.setattr(tracker_checkpoints, "DEMO_WEIGHTS", tmp_path / "absent.pth")
    cases = {
        "folder not found": ["--config", CONFIG, "--dataset", "otb", "--root", str(tmp_path / "nope"),
                             "--results", str(results)],
        "unknown config": ["--config", "no_such_recipe", "--checkpoint", str(checkpoint), *common],
        "cut.pth": ["--config", CONFIG, "--checkpoint", str(truncated), *common],
        "no bundled demo weights": common,
        "not found under": ["--config", CONFIG, "--checkpoint", str(checkpoint), *common, "--sequences", "Nope"],
        "--workers": ["--config", CONFIG, *common, "--workers", "0"],
    }
    for expected, args in cases.items():
        assert main(["track", *args]) == 2, expected
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not results.exists() or not os.listdir(results)
