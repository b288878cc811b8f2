"""Hand-computed cases for every rule of every protocol, and the results reader."""

import numpy as np
import pytest

from mimtrack.evaluation.protocols import get_protocol
from mimtrack.evaluation.results import load_results, load_times
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

BOX = [10, 10, 20, 20]
THIRD = [20, 10, 20, 20]  # IoU 1/3 with BOX (200 / 600), centre error 10 px
FAR = [200, 200, 20, 20]  # no overlap, centre error > 50 px


def seq(name, gt, dataset="otb", visible=None, **kwargs):
    gt = np.array(gt, dtype=np.float64)
    vis = None if visible is None else np.array(visible, dtype=bool)
    return Sequence(name, gt, FrameList(list), dataset=dataset, visible=vis, **kwargs)


def score(protocol, sequences, results):
    results = {k: [np.array(r, dtype=np.float64) for r in runs] for k, runs in results.items()}
    return get_protocol(protocol).evaluate(sequences, results)


def flat(value, first, rest=0.0):
    """21-point success curve: `first` for thresholds below 1, `rest` at 1."""
    return np.array([first] * 20 + [rest])


@pytest.mark.parametrize("protocol", ["official", "pytracking", "got10k"])
def test_perfect_tracker(protocol):
    s = seq("a", [BOX] * 5)
    scores = score(protocol, [s], {"a": [[BOX] * 5]})
    assert scores.overall["auc"] == pytest.approx(20 / 21, abs=1e-7)
    for key in ("precision", "op50", "op75"):
        assert scores.overall[key] == 1.0
    assert scores.per_sequence["a"]["auc"] == pytest.approx(20 / 21, abs=1e-7)
    assert scores.curves["precision"].shape == (51,) and scores.thresholds["success"].shape == (21,)


def test_unknown_protocol():
    with pytest.raises(UserError, match="unknown protocol 'vot'"):
        get_protocol("vot")
    assert get_protocol().name == "official"


def test_absent_frames_official_and_pytracking_quirk():
    gt = [BOX] * 4
    visible = [1, 1, 0, 0]
    # official: absent frames deleted but the denominator stays 4 -> they act as failures.
    s = seq("a", gt, "lasot", visible)
    scores = score("official", [s], {"a": [gt]})
    np.testing.assert_allclose(scores.curves["success"], flat(None, 0.5))
    assert scores.overall["auc"] == pytest.approx(0.5 * 20 / 21)
    assert scores.overall["precision"] == 0.5 and scores.overall["norm_precision"] == 0.5
    # pytracking on 'lasot': invisible frames fail everything.
    lasot = score("pytracking", [s], {"a": [gt]}).overall
    assert (lasot["precision"], lasot["norm_precision"]) == (0.5, 0.5)
    # pytracking on 'lasot_ext': invisible frames PASS normalised precision (error -1): the quirk.
    ext = score("pytracking", [seq("a", gt, "lasot_ext", visible)], {"a": [gt]}).overall
    assert ext["precision"] == 0.5 and ext["norm_precision"] == 1.0
    assert ext["auc"] == pytest.approx(0.5 * 20 / 21)


def test_invalid_predictions_per_protocol():
    gt = [BOX] * 4
    pred = [BOX, THIRD, [np.nan] * 4, [0, 0, 0, 5]]
    s = seq("a", gt)
    # official: NaN and zero-width rows repeat the previous (repaired) row: IoUs 1, 1/3, 1/3, 1/3.
    official = score("official", [s], {"a": [pred]})
    expected = np.array([1.0] * 7 + [0.25] * 13 + [0.0])
    np.testing.assert_allclose(official.curves["success"], expected)
    assert official.overall["auc"] == pytest.approx(10.25 / 21)
    assert official.overall["precision"] == 1.0  # repaired rows are 10 px off
    negative = score("official", [s], {"a": [[BOX, THIRD, [10, 10, -5, 20], THIRD]]})
    np.testing.assert_allclose(negative.curves["success"], expected)
    # got10k: no repair; NaN fails, the zero-width box has IoU 0: IoUs 1, 1/3, NaN, 0.
    got10k = score("got10k", [s], {"a": [pred]})
    np.testing.assert_allclose(got10k.curves["success"], [0.5] * 7 + [0.25] * 13 + [0.0])
    assert got10k.overall["auc"] == pytest.approx(6.75 / 21)
    # pytracking: NaN or negative sizes abort; zero sizes are repaired like official.
    with pytest.raises(UserError, match="Invalid results"):
        score("pytracking", [s], {"a": [pred]})
    with pytest.raises(UserError, match="Invalid results"):
        score("pytracking", [s], {"a": [[BOX, THIRD, [10, 10, -5, 20], THIRD]]})
    zero = score("pytracking", [s], {"a": [[BOX, THIRD, [0, 0, 0, 5], [0, 0, 5, 0]]]})
    np.testing.assert_allclose(zero.curves["success"], expected, atol=1e-7)


def test_invalid_ground_truth_x_zero():
    gt = [BOX, [0, 10, 20, 20]]  # x = 0: invalid for LaSOT-matlab
    s = seq("a", gt)
    official = score("official", [s], {"a": [gt]}).overall
    assert official["auc"] == pytest.approx(0.5 * 20 / 21)  # IoU -1 fails
    assert official["precision"] == 1.0  # centre error -1 passes: the quirk
    pytracking = score("pytracking", [s], {"a": [gt]}).overall
    assert pytracking["precision"] == 0.5  # +inf fails
    assert pytracking["norm_precision"] == 1.0  # -1 passes
    got10k = score("got10k", [s], {"a": [gt]}).overall
    assert got10k["auc"] == pytest.approx(20 / 21)  # scored normally


def test_result_lengths():
    gt = [BOX] * 3
    longer = [BOX] * 3 + [FAR] * 2
    shorter = [BOX, BOX]
    for protocol in ("official", "pytracking"):
        assert score(protocol, [seq("a", gt)], {"a": [longer]}).overall["auc"] == pytest.approx(20 / 21, abs=1e-7)
    with pytest.raises(UserError, match=r"2 rows but sequence a has 3 frames"):
        score("official", [seq("a", gt)], {"a": [shorter]})
    with pytest.raises(UserError, match=r"2 rows but sequence a has 3 frames"):
        score("pytracking", [seq("a", gt, "lasot", [1, 1, 1])], {"a": [shorter]})
    # pytracking elsewhere: zero-padded (the padding fails).
    padded = score("pytracking", [seq("a", gt)], {"a": [shorter]}).overall
    assert padded["auc"] == pytest.approx(2 / 3 * 20 / 21, abs=1e-7) and padded["precision"] == pytest.approx(2 / 3)
    for rows in (shorter, longer):
        with pytest.raises(UserError, match="equal lengths"):
            score("got10k", [seq("a", gt)], {"a": [rows]})


def test_all_zero_sequence_dropped_by_official_kept_by_pytracking():
    good = seq("good", [BOX] * 3, "lasot", [1, 1, 1])
    # First frame absent and the tracker never overlaps: every curve of 'lost' is zero.
    lost = seq("lost", [BOX] * 3, "lasot", [0, 1, 1])
    results = {"good": [[BOX] * 3], "lost": [[BOX, FAR, FAR]]}
    official = score("official", [good, lost], results)
    assert official.overall["auc"] == pytest.approx(20 / 21)
    assert official.overall["precision"] == 1.0
    assert official.per_sequence["lost"]["auc"] == 0.0
    pytracking = score("pytracking", [good, lost], results)
    assert pytracking.overall["auc"] == pytest.approx(10 / 21, abs=1e-7)
    assert pytracking.overall["precision"] == 0.5


@pytest.mark.parametrize("protocol", ["official", "pytracking", "got10k", "trackingnet"])
def test_first_frame_is_overwritten_by_ground_truth(protocol):
    s = seq("a", [BOX, BOX])
    scores = score(protocol, [s], {"a": [[FAR, FAR]]})
    assert scores.overall["op50"] == 0.5
    assert scores.overall["precision"] == (0.5 if protocol != "trackingnet" else pytest.approx(0.5))


def test_nan_ground_truth_rows():
    gt = [BOX, [np.nan] * 4, BOX]
    pred = [BOX, THIRD, BOX]
    uav = seq("a", gt, "uav123")
    # official: a NaN GT row is invalid: IoU -1 (fail), error -1 (pass).
    official = score("official", [uav], {"a": [pred]}).overall
    assert official["auc"] == pytest.approx(2 / 3 * 20 / 21) and official["precision"] == 1.0
    # got10k UAV123: the row leaves numerator and denominator; OTB does not filter (NaN IoU fails).
    assert score("got10k", [uav], {"a": [pred]}).overall["auc"] == pytest.approx(20 / 21)
    otb = score("got10k", [seq("a", gt, "otb")], {"a": [pred]}).overall
    assert otb["auc"] == pytest.approx(2 / 3 * 20 / 21) and otb["precision"] == pytest.approx(2 / 3)
    # pytracking: allowed on uav only; error -1 (pass) there.
    pytracking = score("pytracking", [uav], {"a": [pred]}).overall
    assert pytracking["auc"] == pytest.approx(2 / 3 * 20 / 21, abs=1e-7) and pytracking["precision"] == 1.0
    with pytest.raises(UserError, match="NaN in the ground truth"):
        score("pytracking", [seq("a", gt, "otb")], {"a": [pred]})


def test_runs_are_averaged_per_sequence():
    s = seq("a", [BOX] * 2)
    scores = score("official", [s], {"a": [[BOX, BOX], [BOX, FAR]]})
    assert scores.overall["op50"] == 0.75 and scores.overall["precision"] == 0.75


def test_trackingnet_rounding_inclusive_threshold_and_trapezoid():
    gt = [[0, 0, 10, 10]] * 2
    # rounds to [0, 0, 20, 10]: IoU exactly 0.5, centre 5 px off, normalised 0.5
    pred = [FAR, [0.3, -0.4, 19.6, 10.2]]
    scores = score("trackingnet", [seq("a", gt, "trackingnet")], {"a": [pred]})
    np.testing.assert_array_equal(scores.curves["success"], [1.0] * 11 + [0.5] * 10)  # IoU >= t
    assert scores.overall["auc"] == pytest.approx(0.7625)
    assert scores.overall["op50"] == 1.0
    assert scores.overall["precision"] == pytest.approx(0.9625)  # thresholds 0, 2.5, 5 ... 50
    assert scores.overall["norm_precision"] == pytest.approx(0.5125)
    # A short submission is NaN-padded: the missing frame fails every curve.
    short = score("trackingnet", [seq("a", gt, "trackingnet")], {"a": [[FAR]]})
    np.testing.assert_array_equal(short.curves["success"], np.full(21, 0.5))
    assert short.overall["auc"] == pytest.approx(0.5)


def got10k_seq(name, gt, cover, resolution=(100, 100)):
    return seq(name, gt, "got10k", labels={"cover": np.array(cover)}, info={"resolution": resolution})


def test_got10k_val_pooled_ao_sr():
    a = got10k_seq("a", [BOX] * 3, [8, 8, 0])
    b = got10k_seq("b", [[90, 90, 20, 20]] * 2, [8, 3])
    results = {
        "a": [[FAR, THIRD, FAR]],  # frame 0 dropped; frame 2 has cover 0
        "b": [[FAR, [95, 90, 20, 20]]],  # clipped to the image: IoU 50 / 100 = 0.5 (not > 0.5)
    }
    scores = score("got10k", [a, b], results)
    assert scores.overall["ao"] == pytest.approx((1 / 3 + 0.5) / 2)
    assert scores.overall["sr50"] == 0.0 and scores.overall["sr75"] == 0.0
    assert scores.curves["success"].shape == (101,) and scores.curves["success"][0] == 1.0
    assert scores.per_sequence["b"]["ao"] == pytest.approx(0.5)
    assert scores.subset(["b"]).overall["ao"] == pytest.approx(0.5)
    # several runs are pooled frame by frame (not averaged per sequence)
    results["a"].append([FAR, BOX, FAR])
    pooled = score("got10k", [a, b], results)
    assert pooled.overall["ao"] == pytest.approx((1 / 3 + 1 + 0.5) / 3)
    assert pooled.overall["sr50"] == pytest.approx(1 / 3) and pooled.overall["sr75"] == pytest.approx(1 / 3)
    times = {"a": np.array([0.5, 0.25, np.nan, 0.0]), "b": np.array([0.5])}
    timed = get_protocol("got10k").evaluate([a, b], results, times)
    assert timed.overall["fps"] == pytest.approx((2 + 4 + 2) / 3)
    with pytest.raises(UserError, match="one row per frame"):
        score("got10k", [a], {"a": [[BOX] * 2]})


def test_subset_reaggregates_like_the_protocol():
    sequences = [seq("a", [BOX] * 2), seq("b", [BOX] * 2), seq("c", [BOX] * 2)]
    results = {"a": [[BOX, BOX]], "b": [[BOX, FAR]], "c": [[BOX, THIRD]]}
    for protocol in ("official", "pytracking", "trackingnet", "got10k"):
        full = score(protocol, sequences, results)
        part = full.subset(["b", "c"])
        direct = score(protocol, sequences[1:], results)
        assert part.overall == direct.overall
    with pytest.raises(UserError):
        full.subset(["zzz"])


def test_load_results_layouts_and_missing(tmp_path):
    (tmp_path / "a.txt").write_text("1,2,3,4\n5\t6\t7\t8\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "b_001.txt").write_text("1 2 3 4\n")
    (tmp_path / "b" / "b_002.txt").write_text("1,2,3,4.5\n")
    (tmp_path / "b" / "b_time.txt").write_text("0.1,0.2\n")
    (tmp_path / "a_time.txt").write_text("0.5\n0.5\n")
    sequences = [seq(n, [BOX]) for n in ("a", "b")]
    results, missing = load_results(tmp_path, sequences)
    assert missing == [] and len(results["a"]) == 1 and len(results["b"]) == 2
    np.testing.assert_array_equal(results["a"][0], [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert results["b"][1].path.endswith("b_002.txt") and results["b"][1][0, 3] == 4.5
    times = load_times(tmp_path, sequences)
    np.testing.assert_array_equal(times["b"], [0.1, 0.2])
    # the protocol's length error names the file
    with pytest.raises(UserError, match=r"a\.txt: 2 rows but sequence a has 1 frames"):
        get_protocol("got10k").evaluate(sequences, results)
    many = [seq(f"s{i}", [BOX]) for i in range(8)] + sequences
    listed = r"no results for 8 of 10 sequences \(s0, s1, s2, s3, s4, \.\.\.\).*--skip-missing"
    with pytest.raises(UserError, match=listed):
        load_results(tmp_path, many)
    results, missing = load_results(tmp_path, many, skip_missing=True)
    assert missing == [f"s{i}" for i in range(8)] and set(results) == {"a", "b"}
    with pytest.raises(UserError, match="results folder not found"):
        load_results(tmp_path / "nope", sequences)


@pytest.mark.parametrize("protocol", ["official", "pytracking", "got10k", "trackingnet"])
def test_runs_scored_in_groups_equal_one_pass(protocol, monkeypatch):
    """The OPE protocols score runs in cache-sized groups; every group size must give the same bits."""
    from mimtrack.evaluation import protocols

    rng = np.random.default_rng(7)
    sequences, results = [], {}
    for i in range(9):
        n = int(rng.integers(5, 40))
        gt = np.column_stack([rng.uniform(1, 50, (n, 2)), rng.uniform(5, 40, (n, 2))])
        visible = rng.random(n) > 0.1 if i % 3 else None
        sequences.append(seq(f"s{i}", gt, dataset="lasot" if i % 3 else "otb", visible=visible))
        boxes = gt + rng.normal(0, 1 + i, gt.shape)
        boxes[:, 2:] = np.abs(boxes[:, 2:])
        boxes[rng.random(n) < 0.1, 2] = 0.0  # zero widths: the repairs look at the previous row
        results[f"s{i}"] = [boxes] if i % 4 else [boxes, boxes[::-1].copy()]  # some with two runs
    expected = score(protocol, sequences, results)
    for group_frames in (1, 30, 100):
        monkeypatch.setattr(protocols, "_GROUP_FRAMES", group_frames)
        grouped = score(protocol, sequences, results)
        assert grouped.overall == expected.overall and grouped.per_sequence == expected.per_sequence
