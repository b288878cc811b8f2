"""VOT scoring on hand-computed cases (the toolkit parity is in test_parity_vot.py), the reader, ``mimtrack eval``."""

import json
import os

import cv2
import numpy as np
import pytest

from mimtrack.evaluation import vot
from mimtrack.evaluation.datasets import load_dataset
from mimtrack.evaluation.datasets.vot import image_size
from mimtrack.cli import main
from mimtrack.errors import UserError
from tests.evaluation import vot_workspace as fab

R = vot.Region.rectangle


@pytest.mark.parametrize("a, b, size, expected", [
    (R(0, 0, 10, 10), R(5, 0, 10, 10), (100, 100), 50 / 150),          # pixel columns 0..9 and 5..14
    (R(0.5, 0, 10, 10), R(0, 0, 10, 10), (100, 100), 1.0),             # 0.5 rounds half to even: 0
    (R(1.5, 0, 10, 10), R(0, 0, 10, 10), (100, 100), 80 / 120),        # 1.5 -> 2
    (R(-5, 0, 10, 10), R(0, 0, 5, 10), (100, 100), 1.0),               # clipped to the image: columns 0..4
    # Without bounds the raster starts at x = -5 and the toolkit clips right edges at the absolute bound 4 in
    # raster coordinates: the first box keeps raster columns 0..4, the second (5..9) none -> 0, not 0.5.
    (R(-5, 0, 10, 10), R(0, 0, 5, 10), None, 0.0),
    (R(5, 0, 10, 10), R(10, 0, 5, 10), None, 0.5),                     # non-negative: no such effect
    (R(3, 3, 1, 5), R(3, 4, 1, 2), (100, 100), 1.0),                   # one-pixel-wide union: "identical"
    (vot.Region.special(1), R(10, 10, 5, 5), (50, 50), 0.0),           # a special row is an empty region
    (vot.Region.polygon([(0, 0), (9, 0), (9, 9), (0, 9)]), R(0, 0, 10, 10), (100, 100), 1.0),
    (vot.Region.polygon([(0, 0), (9, 0), (9, 9), (0, 9)]), R(0, 0, 10, 5), (100, 100), 0.5),
    (vot.parse_region("m1,1,2,2,0,4"), R(1, 1, 2, 2), (100, 100), 1.0),
    (R(90, 90, 20, 20), R(95, 95, 20, 20), (100, 100), 25 / 100),       # both cut by the image corner
])
def test_overlap_hand_computed(a, b, size, expected):
    assert vot.overlap(a, b, size) == pytest.approx(expected, abs=1e-12)
    assert vot.overlap(b, a, size) == pytest.approx(expected, abs=1e-12)


def test_parse_regions_and_round_trip():
    assert vot.parse_region("2").is_special(vot.FAILURE)
    assert vot.parse_region("nan,nan,nan,nan").is_special(vot.UNKNOWN)
    poly = vot.parse_region("1,2,11,2,11,8,1,8")
    assert poly.kind == vot.POLYGON and poly.box() == [1.0, 2.0, 10.0, 6.0]
    # A mask whose pixels end in column 0 reads as empty (vot-toolkit's Mask._optimize).
    assert vot.parse_region("m0,0,1,2,0,2").data.size == 0
    mask = vot.parse_region("m3,4,3,2,1,2,2,1")   # 3 x 2 at (3, 4): rows 011 and 001 -> columns 1..2
    assert mask.box() == [4.0, 4.0, 2.0, 2.0]
    for text in ("1", "0", "2.5,3,10,20.25", "1,2,11,2,11,8,1,8", mask.text()):
        assert vot.parse_region(vot.parse_region(text).text()).text() == vot.parse_region(text).text()
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,4,5"):
        with pytest.raises(UserError, match="where"):
            vot.parse_region(bad, "where")


def _trajectory(rows):
    return [vot.parse_region(r) for r in rows]


def test_supervised_accuracy_failures_and_eao_by_hand():
    good, third = "0,0,10,10", "5,0,10,10"   # overlaps 1 and 1/3 with the ground truth below
    rows = ["1", good, good, third, "2", "0", "0", "0", "0", "1", good, third]
    trajectory = _trajectory(rows)
    truth = [R(0, 0, 10, 10)] * len(rows)
    frame_overlaps = vot.overlaps(trajectory, truth, (50, 50))
    np.testing.assert_allclose(frame_overlaps, [0, 1, 1, 1 / 3, 0, 0, 0, 0, 0, 0, 1, 1 / 3])
    # burnin 2: frames 0-1 and 9-10 left out, failure 4 and skipped 5-8 too -> frames 2, 3, 11.
    assert vot.supervised_accuracy(trajectory, frame_overlaps, burnin=2) == pytest.approx((1 + 2 / 3) / 3)
    fragments = vot.eao_fragments(trajectory, frame_overlaps)
    assert [(len(o), ok) for o, ok in fragments] == [(4, False), (3, True)]
    # Failed [0, 1, 1, 1/3] counts at every length; [0, 1, 1/3] up to 3; means over frames 1..j.
    np.testing.assert_allclose(vot.supervised_eao_curve(fragments), [0, 1, (1 + 2 / 3) / 2, 7 / 9], atol=1e-7)


def test_multistart_grace_and_partial_curve_by_hand():
    values = [1, 0.05, 0.05, 0.05, 0.5, 0.05, 0.05, 0.05, 0.05]
    truth = [R(0, 0, 10, 10)] * len(values)
    # Three frames <= 0.1 in a row from frame 1: the run failed at frame 1, one frame tracked.
    assert vot.multistart_progress(values, truth, grace=3, threshold=0.1) == 1
    assert vot.multistart_progress(values, truth, grace=5, threshold=0.1) == len(values)
    # Empty ground truth does not count against the tracker.
    empty = [truth[0]] + [R(0, 0, 0, 0)] * 3 + truth[4:]
    assert vot.multistart_progress(values, empty, grace=3, threshold=0.1) == 5
    phi, active = vot.multistart_partial_curve([(np.array([0, 1.0, 0.5]), False), (np.array([0, 0.5]), True)], 5)
    # Length 1: both runs (1 and 0.5); 2: the first (0.75); 3, 4: the failed one, sum 1.5 / (j - 1).
    np.testing.assert_allclose(phi, [0, 0.75, 0.75, 0.75, 0.5])
    np.testing.assert_allclose(active, [0, 2, 1, 1, 1])


@pytest.mark.parametrize("width, height", [(80, 60), (321, 17)])
def test_image_size_from_headers(tmp_path, width, height):
    image = np.zeros((height, width, 3), np.uint8)
    for ext in ("jpg", "png"):
        path = str(tmp_path / f"frame.{ext}")
        cv2.imwrite(path, image)
        assert image_size(path) == (width, height)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(UserError, match="bad.jpg"):
        image_size(str(tmp_path / "bad.jpg"))


def test_reader_pads_ground_truth_and_reads_values(tmp_path):
    ws = fab.make_workspace(tmp_path / "ws")
    sequences = load_dataset("vot", os.path.join(ws, "sequences"))
    assert [s.name for s in sequences] == [s[0] for s in fab.SEQUENCES]
    gamma = sequences[2]
    assert len(gamma) == fab.SEQUENCES[2][1] and gamma.info["size"] == fab.SEQUENCES[2][2]
    assert all(r.is_special(vot.UNKNOWN) for r in gamma.info["regions"][-3:])
    assert np.isnan(gamma.ground_truth[-1]).all() and not np.isnan(gamma.ground_truth[0]).any()
    forward, backward = vot.find_anchors(gamma.labels["anchor"])
    assert forward == [0, len(gamma) // 3] and backward == [len(gamma) // 2, len(gamma) - 1]
    assert gamma.labels["occlusion"].dtype == bool and gamma.labels["occlusion"][0]
    assert sequences[1].info["regions"][0].kind == vot.POLYGON


def _eval(ws, *extra):
    return main(["eval", "--dataset", "vot", "--root", os.path.join(ws, "sequences"),
                 "--results", os.path.join(ws, "results", fab.TRACKER), *extra])


def test_eval_cli_writes_json_and_plots(tmp_path, capsys):
    ws = fab.make_workspace(tmp_path / "ws")
    out = tmp_path / "scores.json"
    assert _eval(ws, "--protocol", "vot-baseline", "--eao-interval", *map(str, fab.EAO_BASELINE),
                 "--json", str(out), "--plots", str(tmp_path / "plots")) == 0
    text = capsys.readouterr().out
    assert "vot-baseline" in text and "EAO" in text and fab.TRACKER in text
    scores = json.loads(out.read_text())[fab.TRACKER]
    assert set(scores["overall"]) == {"accuracy", "failures", "ar_robustness", "eao"}
    assert scores["per_sequence"]["beta"]["repetitions"] == fab.REPETITIONS - 1
    assert 0 < scores["overall"]["eao"] < 1 and len(scores["eao_curve"]) > fab.EAO_BASELINE[0]
    assert sorted(os.listdir(tmp_path / "plots")) == ["ar_plot.png", "eao_curve.png"]
    assert _eval(ws, "--protocol", "vot-multistart", "--experiment", "multistart", "--eao-interval", "4", "30") == 0
    assert _eval(ws, "--protocol", "vot-unsupervised", "--stack", "vot2018") == 0


def test_eval_cli_bad_input_is_one_line(tmp_path, capsys):
    ws = fab.make_workspace(tmp_path / "ws")
    assert _eval(ws) == 2
    assert "choose --protocol" in capsys.readouterr().err
    assert _eval(ws, "--protocol", "vot-multistart", "--stack", "vot2018") == 2
    assert "supervised stack" in capsys.readouterr().err
    path = os.path.join(ws, "results", fab.TRACKER, "baseline", "alpha", "alpha_001.txt")
    with open(path, "a") as f:
        f.write("1,2,3\n")
    assert _eval(ws, "--protocol", "vot-baseline") == 2
    err = capsys.readouterr().err
    assert "alpha_001.txt: line" in err and len(err.strip().splitlines()) == 1
    os.remove(path)
    for k in (2, 3):
        os.remove(path.replace("_001", f"_00{k}"))
    assert _eval(ws, "--protocol", "vot-baseline") == 2
    assert "alpha_001.txt: file not found" in capsys.readouterr().err
    assert _eval(ws, "--protocol", "vot-baseline", "--skip-missing") == 0
    assert "skipped 1 sequence" in capsys.readouterr().out
    assert main(["eval", "--dataset", "otb", "--root", str(tmp_path), "--results", str(tmp_path),
                 "--protocol", "vot-baseline"]) == 2
    assert "only for --dataset vot" in capsys.readouterr().err
