"""mimtrack.evaluation.bootstrap: hand-computed resamples, closed forms, and ``mimtrack eval --ci`` end to end."""

import json

import numpy as np
import pytest

from mimtrack.evaluation import bootstrap
from mimtrack.evaluation.protocols import Got10kValProtocol, get_protocol
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.cli import main
from mimtrack.errors import UserError
from tests import fabricate as fab

OPE = ["auc", "op50", "op75", "precision", "norm_precision"]


def _ope_scores(protocol, aucs, precisions=None):
    """Scores whose sequences have flat success curves at ``aucs`` (so AUC = OP50 = OP75 = the value)."""
    protocol = get_protocol(protocol)
    precisions = aucs if precisions is None else precisions
    states = {}
    for i, (a, p) in enumerate(zip(aucs, precisions)):
        states[f"s{i}"] = {"success": np.full(21, a), "precision": np.full(51, p), "norm_precision": np.full(51, p)}
    return protocol.summarise(states)


def test_hand_computed_resamples_official_drops_zero_sequences():
    scores = {"T": _ope_scores("official", [0.2, 0.4, 0.0])}
    counts = np.array([[1, 1, 1], [2, 1, 0], [0, 0, 3], [0, 3, 0]], dtype=np.float64)
    sums = {("T", k): v for k, v in scores["T"].protocol.sequence_sums(scores["T"].sequence_states).items()}
    resampled = bootstrap.resampled_numbers(sums, counts)
    # The LaSOT toolkit drops s2 (its curve sums to 0): (0.2 + 0.4) / 2, (2 * 0.2 + 0.4) / 3, nothing left, 0.4.
    assert resampled[("T", "auc")] == pytest.approx([0.3, 0.8 / 3, 0.0, 0.4], abs=1e-15)
    assert scores["T"].overall["auc"] == pytest.approx(0.3, abs=1e-15)  # all ones = the protocol's own number


def test_hand_computed_resamples_pytracking_counts_every_sequence():
    scores = _ope_scores("pytracking", [0.2, 0.4, 0.0], precisions=[1.0, 0.5, 0.0])
    counts = np.array([[1, 1, 1], [2, 1, 0], [0, 0, 3]], dtype=np.float64)
    resampled = bootstrap.resampled_numbers({k: v for k, v in scores.protocol.sequence_sums(
        scores.sequence_states).items()}, counts)
    assert resampled["auc"] == pytest.approx([0.2, 0.8 / 3, 0.0], abs=1e-7)
    assert resampled["precision"] == pytest.approx([0.5, 2.5 / 3, 0.0], abs=1e-7)


def test_hand_computed_resamples_got10k_pool_frames():
    states = {"a": {"ious": np.array([0.9, 0.6]), "times": None}, "b": {"ious": np.array([0.3]), "times": None},
              "c": {"ious": np.zeros(0), "times": None}}
    scores = Got10kValProtocol().summarise(states)
    assert scores.overall["ao"] == pytest.approx(0.6)
    sums = scores.protocol.sequence_sums(states)
    counts = np.array([[1, 1, 1], [2, 1, 0], [0, 0, 3]], dtype=np.float64)
    resampled = bootstrap.resampled_numbers(sums, counts)
    assert resampled["ao"] == pytest.approx([0.6, (2 * 1.5 + 0.3) / 5, 0.0])  # frames pooled: 5 of them
    assert resampled["sr50"] == pytest.approx([2 / 3, 4 / 5, 0.0])
    assert resampled["sr75"] == pytest.approx([1 / 3, 2 / 5, 0.0])


@pytest.mark.parametrize("protocol", ["official", "pytracking", "got10k", "trackingnet"])
def test_sums_reproduce_the_overall_numbers(protocol):
    rng = np.random.default_rng(3)
    sequences = []
    for i in range(6):
        gt = np.column_stack([rng.uniform(10, 50, (40, 2)), rng.uniform(20, 40, (40, 2))])
        sequences.append(Sequence(f"s{i}", gt, FrameList(list), "lasot"))
    results = {}
    for i, s in enumerate(sequences):
        boxes = s.ground_truth + rng.normal(0, 2 + 3 * i, (40, 4))
        boxes[:, 2:] = np.abs(boxes[:, 2:]) + 1
        results[s.name] = [boxes]
    scores = get_protocol(protocol).evaluate(sequences, results)
    for key, (numerator, denominator) in scores.protocol.sequence_sums(scores.sequence_states).items():
        assert numerator.sum() / denominator.sum() == pytest.approx(scores.overall[key], abs=1e-6)


def test_identical_trackers_differ_by_exactly_zero_with_p_one():
    aucs = np.random.default_rng(0).uniform(0.2, 0.8, 50)
    scores = {"A": _ope_scores("official", aucs), "B": _ope_scores("official", aucs)}
    result = bootstrap.compare(scores, OPE, "auc", resamples=500)
    d = result["differences"][("A", "B")]
    assert d["difference"] == 0.0 and d["interval"] == (0.0, 0.0) and d["p_value"] == 1.0
    assert result["intervals"]["A"] == result["intervals"]["B"]


def test_a_constant_shift_is_the_difference_in_every_resample():
    aucs = np.random.default_rng(1).uniform(0.2, 0.8, 50)
    scores = {"A": _ope_scores("pytracking", aucs + 0.125), "B": _ope_scores("pytracking", aucs)}
    result = bootstrap.compare(scores, OPE, "auc", resamples=999)
    d = result["differences"][("A", "B")]
    assert d["interval"] == pytest.approx((0.125, 0.125), abs=1e-6)
    assert d["p_value"] == pytest.approx(2 / 1000)  # never <= 0 in 999 resamples: the smallest p reported


def test_interval_width_matches_the_standard_error_of_a_mean():
    """The bootstrap distribution of a mean of S values has standard deviation sd / sqrt(S) (sd with ddof=0)."""
    aucs = np.random.default_rng(2).beta(2, 2, 280)
    scores = {"A": _ope_scores("official", aucs)}
    counts = bootstrap.resample_counts(280, 20000, seed=5)
    sums = {("A", k): v for k, v in scores["A"].protocol.sequence_sums(scores["A"].sequence_states).items()}
    resampled = bootstrap.resampled_numbers(sums, counts)[("A", "auc")]
    standard_error = aucs.std() / np.sqrt(len(aucs))
    assert resampled.std() == pytest.approx(standard_error, rel=0.03)
    assert resampled.mean() == pytest.approx(aucs.mean(), abs=3 * standard_error / np.sqrt(20000) + 1e-12)
    low, high = bootstrap.compare(scores, OPE, "auc", resamples=20000, seed=5)["intervals"]["A"]["auc"]
    assert (high - low) == pytest.approx(2 * 1.96 * standard_error, rel=0.05)  # ~normal at S = 280


def test_resample_counts_are_seeded_multinomial_draws():
    counts = bootstrap.resample_counts(30, 200, seed=7)
    assert counts.shape == (200, 30) and (counts.sum(axis=1) == 30).all()
    assert np.array_equal(counts, bootstrap.resample_counts(30, 200, seed=7))
    assert not np.array_equal(counts, bootstrap.resample_counts(30, 200, seed=8))


def test_bad_settings_are_user_errors():
    scores = {"A": _ope_scores("official", [0.5, 0.6])}
    with pytest.raises(UserError, match="--ci-resamples"):
        bootstrap.compare(scores, OPE, "auc", resamples=10)
    with pytest.raises(UserError, match="--ci-level"):
        bootstrap.compare(scores, OPE, "auc", level=95)


def test_eval_ci_got10k_table_matrix_and_json(tmp_path, capsys):
    rng = np.random.default_rng(4)
    gts = {f"GOT-10k_Val_{i:06d}": fab.random_boxes(rng, 20) for i in range(1, 7)}
    fab.make_got10k(tmp_path / "got", "val", gts)
    for tracker, noise in (("A", 1.0), ("B", 6.0)):
        for name, gt in gts.items():
            boxes = np.round(gt + rng.normal(0, noise, gt.shape), 2)
            fab.write_table(tmp_path / tracker / name / f"{name}_001.txt", boxes)
    status = main(["eval", "--dataset", "got10k", "--root", str(tmp_path / "got"), "--results", str(tmp_path / "A"),
                   str(tmp_path / "B"), "--json", str(tmp_path / "s.json"), "--ci", "--ci-resamples", "2000"])
    out = capsys.readouterr().out
    assert status == 0
    data = json.loads((tmp_path / "s.json").read_text())
    ci = data["A"]["ci"]
    assert ci["settings"]["resamples"] == 2000 and ci["settings"]["unit"] == "sequence"
    for key in ("ao", "sr50", "sr75"):
        low, high = ci["intervals"][key]
        assert low <= data["A"]["overall"][key] <= high
    ao_row = next(line for line in out.splitlines() if line.startswith("A "))
    low, high = ci["intervals"]["ao"]
    assert f"{100 * data['A']['overall']['ao']:.1f} [{100 * low:.1f}, {100 * high:.1f}]" in ao_row
    difference = ci["differences"]["B"]
    assert difference["difference"] == pytest.approx(data["A"]["overall"]["ao"] - data["B"]["overall"]["ao"])
    assert data["B"]["ci"]["differences"]["A"]["difference"] == pytest.approx(-difference["difference"])
    assert data["B"]["ci"]["differences"]["A"]["p_value"] == difference["p_value"]
    assert "AO difference, paired bootstrap over 6 sequences" in out and "Two-sided p-value" in out


def test_eval_ci_ope_intervals_for_every_column(tmp_path, capsys):
    from mimtrack.evaluation import cli

    assert cli.DEFAULT_RESAMPLES == bootstrap.DEFAULT_RESAMPLES  # kept apart so that --help imports no numpy
    rng = np.random.default_rng(5)
    gts = {name: fab.random_boxes(rng, 30) for name in ("Basketball", "Crossing", "Walking", "Jogging")}
    fab.make_otb(tmp_path / "otb", gts)
    for tracker, noise in (("A", 1.0), ("B", 1.0)):
        for name, gt in gts.items():
            fab.write_table(tmp_path / tracker / f"{name}.txt", np.round(gt + rng.normal(0, noise, gt.shape), 2))
    argv = ["eval", "--dataset", "otb", "--root", str(tmp_path / "otb"), "--results", str(tmp_path / "A"),
            str(tmp_path / "B"), str(tmp_path / "A"), "--names", "A", "B", "A2", "--json", str(tmp_path / "s.json"),
            "--ci", "--ci-resamples", "500", "--ci-seed", "3"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    data = json.loads((tmp_path / "s.json").read_text())
    assert set(data["A"]["ci"]["intervals"]) == set(OPE)
    assert data["A"]["ci"]["differences"]["A2"] == {"difference": 0.0, "interval": [0.0, 0.0], "p_value": 1.0}
    assert data["A"]["ci"]["intervals"] == data["A2"]["ci"]["intervals"]
    header = next(line for line in out.splitlines() if line.startswith("Tracker"))
    assert header.split() == ["Tracker", "AUC", "OP50", "OP75", "P@20", "NP@0.20"]
    assert "AUC difference, paired bootstrap over 4 sequences (500 resamples, seed 3)" in out
    assert main(argv) == 0 and json.loads((tmp_path / "s.json").read_text()) == data  # seeded: the same again
