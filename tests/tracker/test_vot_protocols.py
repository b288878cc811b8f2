"""VOT protocols run live: restarts where vot-toolkit restarts, anchors, early stop, results vot-toolkit accepts,
the TraX server against vot-trax's client, VOT-format data (make-synthetic, real sequences converted)."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mimtrack.evaluation import vot, vot_cli
from mimtrack.evaluation.datasets import load_dataset
from mimtrack.cli import main
from tests.conftest import REPO
from tests.evaluation import vot_workspace as fab
from mimtrack.tracker import vot_runner

FAR = 10_000.0   # a box this far away has overlap 0 with any ground truth


def frame_index(path):
    return int(os.path.basename(path)[:8]) - 1


class ScriptedTracker:
    """Reports the ground-truth box (overlap > 0), except a far-away box at the frames in ``lose``; the images it
    gets are the frame paths (``read_image`` is the identity)."""

    def __init__(self, sequence, lose=()):
        self.truth, self.lose = sequence.info["regions"], set(lose)
        self.inits, self.tracked = [], []

    def initialize(self, image, box):
        self.inits.append(frame_index(image))

    def track(self, image):
        k = frame_index(image)
        self.tracked.append(k)
        box = self.truth[k].box() or [0.0, 0.0, 1.0, 1.0]   # unknown ground truth: any box fails
        return {"box": [box[0] + FAR, box[1] + FAR, box[2], box[3]] if k in self.lose else box, "score": 1.0}


def identity(path):
    return path


@pytest.fixture
def workspace(tmp_path):
    ws = fab.make_workspace(tmp_path / "ws")
    shutil.rmtree(os.path.join(ws, "results"))
    return ws


def sequences_of(ws, names=None):
    return load_dataset("vot", os.path.join(ws, "sequences"), sequences=names)


def rows_of(path):
    with open(path) as f:
        return f.read().split()


def test_baseline_restarts_where_the_toolkit_does(workspace):
    (alpha,) = sequences_of(workspace, ["alpha"])   # 37 frames
    tracker = ScriptedTracker(alpha, lose={7, 9, 26, 31})
    stack = vot.get_stack("vot-baseline", "vot2018")
    results = os.path.join(workspace, "results", "Scripted")
    vot_runner.track_vot(tracker, [alpha], results, "vot-baseline", stack, read_image=identity)
    # Failure at 7 -> frames 8..11 skipped, re-initialised at 12 (skip_initialize 5); 9 is never tracked;
    # failure at 26 -> re-init at 31 (the scripted loss at 31 is an initialisation frame, not tracked).
    assert tracker.inits == [0, 12, 31] * 3
    assert {8, 9, 10, 11, 27, 28, 29, 30, 31}.isdisjoint(tracker.tracked) and 36 in tracker.tracked
    folder = os.path.join(results, "baseline", "alpha")
    # A deterministic tracker: three identical repetitions, then the toolkit's early stop.
    assert sorted(f for f in os.listdir(folder) if f.endswith(".txt")) == [f"alpha_00{k}.txt" for k in (1, 2, 3)]
    rows = rows_of(os.path.join(folder, "alpha_001.txt"))
    special = {k: r for k, r in enumerate(rows) if "," not in r}
    assert special == {0: "1", 7: "2", 8: "0", 9: "0", 10: "0", 11: "0", 12: "1", 26: "2", 27: "0", 28: "0",
                       29: "0", 30: "0", 31: "1"}
    assert len(rows) == len(alpha) and len(rows_of(os.path.join(folder, "alpha_001_time.value"))) == len(alpha)
    np.testing.assert_allclose([float(v) for v in rows[1].split(",")], alpha.info["regions"][1].box(), atol=1e-4)

    # Scored: 2 failures per repetition; the frames outside burn-ins (22..25) replay the ground truth.
    (scores,), _, _ = vot_cli.score([results], [alpha], "vot-baseline", stack)
    assert scores.per_sequence["alpha"]["failures"] == 2 and scores.overall["accuracy"] == pytest.approx(1.0)

    # Resume: the finished repetitions are not rerun.
    again = ScriptedTracker(alpha, lose={7})
    vot_runner.track_vot(again, [alpha], results, "vot-baseline", stack, read_image=identity)
    assert again.inits == []


class FlakyTracker(ScriptedTracker):
    """Loses the target at a different frame on every initialisation at frame 0: never three equal runs."""

    def initialize(self, image, box):
        super().initialize(image, box)
        if frame_index(image) == 0:
            self.lose = {3 + self.inits.count(0)}


def test_baseline_runs_every_repetition_of_a_nondeterministic_tracker(workspace):
    (gamma,) = sequences_of(workspace, ["gamma"])
    stack = vot.get_stack("vot-baseline", "vot2018")
    results = os.path.join(workspace, "results", "Flaky")
    vot_runner.track_vot(FlakyTracker(gamma), [gamma], results, "vot-baseline", stack, read_image=identity)
    folder = os.path.join(results, "baseline", "gamma")
    assert len([f for f in os.listdir(folder) if f.endswith(".txt")]) == stack.repetitions == 15
    assert rows_of(os.path.join(folder, "gamma_015.txt"))[3 + 15] == "2"


def test_multistart_runs_each_anchor_forwards_or_backwards(workspace):
    (alpha,) = sequences_of(workspace, ["alpha"])
    n = len(alpha)
    tracker = ScriptedTracker(alpha)
    stack = vot.get_stack("vot-multistart", "vot2022")
    results = os.path.join(workspace, "results", "Scripted")
    vot_runner.track_vot(tracker, [alpha], results, "vot-multistart", stack, read_image=identity)
    assert tracker.inits == [0, n // 3, n // 2, n - 1]
    backward_from_half = list(range(n // 2 - 1, -1, -1))
    assert tracker.tracked[-(n - 1) - (n // 2):-(n - 1)] == backward_from_half
    for anchor, length in ((0, n), (n // 3, n - n // 3), (n // 2, n // 2 + 1), (n - 1, n)):
        rows = rows_of(os.path.join(results, "baseline", "alpha", f"alpha_{anchor:08d}.txt"))
        assert len(rows) == length and rows[0] == "1" and "," in rows[-1]
    (scores,), _, _ = vot_cli.score([results], [alpha], "vot-multistart", stack)
    assert scores.overall["robustness"] == 1.0 and scores.overall["accuracy"] > 0.9


def test_vot_analysis_accepts_the_results(workspace):
    fab.toolkit_python()
    sequences = sequences_of(workspace)
    results = os.path.join(workspace, "results", fab.TRACKER)
    stack = vot.get_stack("vot-baseline", "vot2018", fab.EAO_BASELINE)
    for sequence in sequences:
        tracker = ScriptedTracker(sequence, lose={6, len(sequence) - 9})
        vot_runner.track_vot(tracker, [sequence], results, "vot-baseline", stack, read_image=identity)
        vot_runner.track_vot(tracker, [sequence], results, "vot-unsupervised", stack, read_image=identity)
    reference = fab.toolkit_analysis(workspace, ["baseline", "unsupervised"])
    accuracy, failures, _, _ = reference["baseline"]["supervised.AverageAccuracyRobustness"]
    (mine,), _, _ = vot_cli.score([results], sequences, "vot-baseline", stack)
    assert failures == pytest.approx(2.0) and mine.overall["failures"] == pytest.approx(2.0)
    assert accuracy == pytest.approx(mine.overall["accuracy"], abs=1e-9)
    assert reference["baseline"]["supervised.EAOScore"][0] == pytest.approx(mine.overall["eao"], abs=1e-6)
    unsupervised = vot.get_stack("vot-unsupervised", "vot2022")
    (mine,), _, _ = vot_cli.score([results], sequences, "vot-unsupervised", unsupervised)
    assert reference["unsupervised"]["accuracy.AverageAccuracy"][0] == pytest.approx(
        mine.overall["average_accuracy"], abs=1e-9)


def test_track_cli_vot_protocols_with_the_demo_tracker(tmp_path, capsys, one_torch_thread):
    root = tmp_path / "sequences"
    assert main(["make-synthetic", "--format", "vot", "--out", str(root), "--sequences", "1", "--frames", "12",
                 "--size", "96x72"]) == 0
    (sequence,) = load_dataset("vot", root)
    assert sequence.info["size"] == (96, 72) and len(sequence.frames) == 12
    assert vot.find_anchors(sequence.labels["anchor"]) == ([0], [11])
    results = tmp_path / "results" / "demo"
    assert main(["track", "--dataset", "vot", "--root", str(root), "--results", str(results),
                 "--protocol", "vot-unsupervised", "--threads", "1"]) == 0
    assert "vot-unsupervised" in capsys.readouterr().out
    rows = rows_of(results / "unsupervised" / "Synthetic001" / "Synthetic001_001.txt")
    assert len(rows) == 12 and rows[0] == "1"
    assert main(["eval", "--dataset", "vot", "--root", str(root), "--results", str(results),
                 "--protocol", "vot-unsupervised"]) == 0
    assert main(["track", "--dataset", "vot", "--root", str(root), "--results", str(results)]) == 2
    assert "choose --protocol" in capsys.readouterr().err
    assert main(["track", "--dataset", "otb", "--root", str(root), "--results", str(results),
                 "--protocol", "vot-baseline"]) == 2
    assert "only for --dataset vot" in capsys.readouterr().err


def test_trax_server_answers_with_the_boxes_of_load_tracker(tmp_path, one_torch_thread):
    trax = pytest.importorskip("trax")
    from trax.client import Client

    from mimtrack.tracker import load_tracker, read_image_rgb
    from mimtrack.tracker.runner import track_frames

    root = tmp_path / "sequences"
    main(["make-synthetic", "--format", "vot", "--out", str(root), "--sequences", "1", "--frames", "8",
          "--size", "128x96"])
    (sequence,) = load_dataset("vot", root)
    frames = list(sequence.frames)
    init = sequence.ground_truth[0].tolist()
    expected, _ = track_frames(load_tracker(threads=1), frames, init)

    server = subprocess.Popen([sys.executable, "-m", "mimtrack.cli", "vot-server", "--threads", "1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, cwd=REPO,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO)] + sys.path)))
    try:
        messages = []
        client = Client(stream=(server.stdin.fileno(), server.stdout.fileno()), log=messages.append)
        assert client.tracker_name == "mimtrack" and client.region_formats == ["rectangle"]

        def image(k):
            return {trax.ImageChannel.COLOR: trax.FileImage.create(frames[k])}

        objects, _ = client.initialize(image(0), [(trax.Rectangle.create(*init), {})], {})
        boxes = [objects[0][0].bounds()]
        for k in range(1, len(frames)):
            objects, _ = client.frame(image(k), {}, [])
            boxes.append(objects[0][0].bounds())
            assert 0 <= float(objects[0][1]["confidence"]) <= 1
        client.quit()
        assert server.wait(timeout=60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    # TraX sends numbers as text with 4 decimals, read back as float32.
    np.testing.assert_allclose(boxes, expected, atol=1e-4)
    assert np.abs(np.diff(expected[:, :2], axis=0)).max() > 0   # the tracker did move


def test_real_sequences_converted_to_vot(shared_dir, tmp_path):
    import cv2

    from mimtrack.tracker.data.vot_layout import convert_sequences

    real = shared_dir / "data" / "real"
    if not real.is_dir():
        pytest.skip("../shared/data/real is not present")
    originals = load_dataset("otb", real)
    out = tmp_path / "sequences"
    assert convert_sequences(originals, out) == [s.name for s in originals]
    converted = {s.name: s for s in load_dataset("vot", out)}
    for original in originals:
        sequence = converted[original.name]
        assert len(sequence) == len(original.frames) == len(sequence.frames)
        np.testing.assert_allclose(sequence.ground_truth, original.ground_truth[:len(sequence)], atol=1e-6)
        height, width = cv2.imread(original.frames[0]).shape[:2]
        assert sequence.info["size"] == (width, height)
        with open(original.frames[-1], "rb") as a, open(sequence.frames[-1], "rb") as b:
            assert a.read() == b.read()
    # Replaying the ground truth: accuracy 1 and no failure on real annotations (rounding, image bounds).
    sequences = list(converted.values())
    results = tmp_path / "results" / "replay"
    for sequence in sequences:
        vot_runner.track_vot(ScriptedTracker(sequence), [sequence], str(results), "vot-baseline",
                             vot.get_stack("vot-baseline", "vot2018"), read_image=identity)
    (scores,), _, _ = vot_cli.score([str(results)], sequences, "vot-baseline", vot.get_stack("vot-baseline"))
    assert scores.overall["failures"] == 0 and scores.overall["accuracy"] == pytest.approx(1.0)
