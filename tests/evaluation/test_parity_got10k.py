"""Our 'got10k' protocol against the got10k toolkit (PyPI 0.1.3) itself, on fabricated data."""

import os

import numpy as np
import pytest

from mimtrack.evaluation.datasets import load_dataset
from mimtrack.evaluation.protocols import get_protocol
from mimtrack.evaluation.results import load_results, load_times
from tests import fabricate

got10k = pytest.importorskip("got10k")
from got10k.datasets import OTB  # noqa: E402
from got10k.experiments import ExperimentGOT10k, ExperimentOTB, ExperimentUAV123  # noqa: E402

TRACKER = "Noisy"


def noisy_results(rng, gt, nan_rows=True, image_size=fabricate.IMAGE_SIZE):
    """A tracker's boxes: GT + noise, some lost frames, NaN rows, zero sizes, a garbage first row."""
    n = len(gt)
    gt = np.where(np.isnan(gt), 10.0, gt)  # unannotated frames still get a prediction
    pred = gt + rng.normal(0, 3, size=(n, 4))
    lost = rng.random(n) < 0.2
    pred[lost] = fabricate.random_boxes(rng, int(lost.sum()), image_size)
    if nan_rows:
        pred[rng.random(n) < 0.05] = np.nan
    pred[rng.random(n) < 0.05, 2] = 0.0
    pred[0] = [1, 2, 3, 4]  # every toolkit overwrites frame 0 (or drops it)
    return np.round(pred, 3)


def assert_close(ours, theirs):
    assert ours == pytest.approx(theirs, abs=1e-9, rel=0)


def test_otb_parity(tmp_path):
    rng = np.random.default_rng(0)
    root, results_dir = tmp_path / "otb", tmp_path / "results" / "OTB2015" / TRACKER
    gts = {"Basketball": 40, "Jogging.1": 30, "Jogging.2": 30, "Human4": 25}
    gts = {name: fabricate.random_boxes(rng, n) for name, n in gts.items()}
    fabricate.make_otb(root, gts, frames=True)
    for name, gt in gts.items():
        fabricate.write_table(str(results_dir / f"{name}.txt"), noisy_results(rng, gt))

    experiment = ExperimentOTB.__new__(ExperimentOTB)  # __init__ would download OTB
    experiment.dataset = OTB(str(root), 2015, download=False)
    experiment.result_dir = str(tmp_path / "results" / "OTB2015")
    experiment.report_dir = str(tmp_path / "reports" / "OTB2015")
    experiment.nbins_iou, experiment.nbins_ce = 21, 51
    theirs = experiment.report([TRACKER])[TRACKER]

    sequences = load_dataset("otb", root)
    assert sorted(s.name for s in sequences) == sorted(experiment.dataset.seq_names)
    results, _ = load_results(results_dir, sequences)
    ours = get_protocol("got10k").evaluate(sequences, results)
    compare_ope(ours, theirs)


def compare_ope(ours, theirs):
    assert_close(ours.overall["auc"], theirs["overall"]["success_score"])
    assert_close(ours.overall["precision"], theirs["overall"]["precision_score"])
    assert_close(ours.overall["op50"], theirs["overall"]["success_rate"])
    np.testing.assert_allclose(ours.curves["success"], theirs["overall"]["success_curve"], atol=1e-12, rtol=0)
    np.testing.assert_allclose(ours.curves["precision"], theirs["overall"]["precision_curve"], atol=1e-12, rtol=0)
    assert set(ours.per_sequence) == set(theirs["seq_wise"])
    for name, seq_scores in theirs["seq_wise"].items():
        assert_close(ours.per_sequence[name]["auc"], seq_scores["success_score"])
        assert_close(ours.per_sequence[name]["precision"], seq_scores["precision_score"])


def test_uav123_parity_with_unannotated_frames(tmp_path):
    rng = np.random.default_rng(1)
    root, results_dir = tmp_path / "uav", tmp_path / "results" / "UAV123" / TRACKER
    gts = {"uav6": fabricate.random_boxes(rng, 109), "uav2": fabricate.random_boxes(rng, 133)}
    gts["uav6"][40:55] = np.nan  # target out of view
    gts["uav2"][rng.random(133) < 0.1] = np.nan
    fabricate.make_uav123(root, gts)
    for extra in ("data_seq", "README", "LICENSE"):  # got10k wants > 3 entries in the root
        (root / extra).mkdir(exist_ok=True)
    for name, gt in gts.items():
        fabricate.write_table(str(results_dir / f"{name}.txt"), noisy_results(rng, gt))

    experiment = ExperimentUAV123(
        str(root), "UAV123", result_dir=str(tmp_path / "results"), report_dir=str(tmp_path / "reports")
    )
    theirs = experiment.report([TRACKER])[TRACKER]

    sequences = load_dataset("uav123", root)
    results, _ = load_results(results_dir, sequences)
    ours = get_protocol("got10k").evaluate(sequences, results)
    compare_ope(ours, theirs)


def test_got10k_val_parity(tmp_path):
    rng = np.random.default_rng(2)
    width, height = fabricate.IMAGE_SIZE
    root, results_dir = tmp_path / "got10k", tmp_path / "results" / "GOT-10k" / TRACKER
    specs = {}
    for index, n in enumerate((30, 24, 18)):
        gt = fabricate.random_boxes(rng, n)
        gt[: n // 3, 0] -= 8  # partly outside the image: clipping matters
        cover = rng.integers(0, 9, n)
        cover[rng.random(n) < 0.2] = 0
        specs[f"GOT-10k_Val_{index + 1:06d}"] = dict(gt=gt, cover=cover, absence=(cover == 0).astype(int))
    fabricate.make_got10k(root, "val", specs, frames=True)
    for index, (name, spec) in enumerate(specs.items()):
        runs = 3 if index == 0 else 1
        for run in range(runs):
            # (a NaN box makes got10k's AO NaN; ours too, but NaN cannot be compared here)
            pred = noisy_results(rng, spec["gt"], nan_rows=False)
            fabricate.write_table(str(results_dir / name / f"{name}_{run + 1:03d}.txt"), pred)
        times = rng.uniform(0.005, 0.05, size=(len(spec["gt"]), runs))
        times[0, 0] = 0.0  # not a positive time: ignored
        fabricate.write_table(str(results_dir / name / f"{name}_time.txt"), times)

    experiment = ExperimentGOT10k(
        str(root), subset="val", result_dir=str(tmp_path / "results"), report_dir=str(tmp_path / "reports")
    )
    theirs = experiment.report([TRACKER])[TRACKER]

    sequences = load_dataset("got10k", root, split="val")
    assert sequences[0].info["resolution"] == (width, height)
    results, _ = load_results(results_dir, sequences)
    assert len(results[sequences[0].name]) == 3
    ours = get_protocol("got10k").evaluate(sequences, results, load_times(results_dir, sequences))
    assert_close(ours.overall["ao"], theirs["overall"]["ao"])
    assert_close(ours.overall["sr50"], theirs["overall"]["sr"])
    assert_close(ours.overall["sr75"], theirs["overall"]["succ_curve"][75])
    assert_close(ours.overall["fps"], theirs["overall"]["speed_fps"])
    np.testing.assert_allclose(ours.curves["success"], theirs["overall"]["succ_curve"], atol=1e-12, rtol=0)
    for name, seq_scores in theirs["seq_wise"].items():
        assert_close(ours.per_sequence[name]["ao"], seq_scores["ao"])
        assert_close(ours.per_sequence[name]["sr50"], seq_scores["sr"])
    assert os.path.isfile(tmp_path / "reports" / "GOT-10k" / TRACKER / "performance.json")
