"""Report formatting: tables in percent, JSON in fractions, plots ranked like LaSOT-matlab."""

import json

import numpy as np

from mimtrack.evaluation import report
from mimtrack.evaluation.protocols import get_protocol
from mimtrack.evaluation.sequence import FrameList, Sequence


def _scores():
    rng = np.random.default_rng(0)
    sequences = []
    for i, attrs in enumerate([("IV",), ("IV", "POC"), ("POC",)]):
        gt = np.column_stack([rng.uniform(10, 50, (30, 2)), rng.uniform(20, 40, (30, 2))])
        sequences.append(Sequence(f"s{i}", gt, FrameList(list), "lasot", attributes=attrs))
    scores = {}
    for name, noise in (("weak", 8.0), ("strong", 1.0)):
        results = {s.name: [s.ground_truth + rng.normal(0, noise, (30, 4))] for s in sequences}
        scores[name] = get_protocol("official").evaluate(sequences, results)
    return sequences, scores


def test_table_in_percent_with_two_decimals():
    _, scores = _scores()
    lines = report.format_table(scores).splitlines()
    assert lines[0].split() == ["Tracker", "AUC", "OP50", "OP75", "P@20", "NP@0.20"]
    weak = scores["weak"].overall
    assert lines[2].split() == ["weak"] + [f"{100 * weak[k]:.2f}" for k in
                                           ("auc", "op50", "op75", "precision", "norm_precision")]


def test_attribute_table_uses_subset_scores():
    sequences, scores = _scores()
    by_attribute = report.attribute_scores(scores, sequences)
    assert list(by_attribute) == ["IV", "POC"]
    count, per_tracker = by_attribute["POC"]
    assert count == 2
    assert per_tracker["strong"].overall == scores["strong"].subset(["s1", "s2"]).overall
    text = report.format_attribute_table(by_attribute)
    assert f"{100 * per_tracker['weak'].overall['auc']:.2f}" in text.splitlines()[3]


def test_json_holds_fractions_per_tracker_and_sequence():
    _, scores = _scores()
    data = json.loads(report.to_json(scores))
    assert data["strong"]["overall"] == scores["strong"].overall
    assert set(data["weak"]["per_sequence"]) == {"s0", "s1", "s2"}
    assert 0 <= data["weak"]["overall"]["auc"] <= 1


def test_plots_rank_the_legend_by_score(monkeypatch):
    _, scores = _scores()
    labels = {}
    from matplotlib.axes import Axes

    original = Axes.legend

    def record(self, *args, **kwargs):
        labels[self.get_title()] = [t for t in self.get_legend_handles_labels()[1]]
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", record)
    images = report.render_plots(scores, "lasot")
    assert set(images) == {"success_plot.png", "precision_plot.png", "norm_precision_plot.png"}
    assert all(png.startswith(b"\x89PNG") for png in images.values())
    strong, weak = scores["strong"].overall, scores["weak"].overall
    assert labels["Success plots of OPE on LaSOT"] == [f"[{strong['auc']:.3f}] strong", f"[{weak['auc']:.3f}] weak"]
    assert labels["Precision plots of OPE on LaSOT"][0] == f"[{strong['precision']:.3f}] strong"
