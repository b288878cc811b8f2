"""benchmarks/template_swap.py: the diagnostic that tracks each sequence with another sequence's template."""

import numpy as np

from mimtrack.evaluation.datasets import load_dataset
from mimtrack.images import read_image_rgb
from mimtrack.tracker.data.synthetic import make_synthetic
from mimtrack.tracker.inference import load_tracker


def test_swapped_template_run_is_the_tracker_run_when_the_donor_is_the_sequence(tmp_path, one_torch_thread,
                                                                             benchmark_script):
    make_synthetic("otb", tmp_path, sequences=2, frames=6, size=(96, 72), seed=1)
    first, second = load_dataset("otb", tmp_path)
    tracker = load_tracker()
    tracker.initialize(read_image_rgb(first.frames[0]), first.ground_truth[0].tolist())
    own = [first.ground_truth[0]] + [tracker.track(read_image_rgb(f))["box"] for f in first.frames[1:]]
    swap = benchmark_script("template_swap").track_with_swapped_template
    np.testing.assert_allclose(swap(tracker, first, first), own, rtol=0, atol=1e-4)
    swapped = swap(tracker, first, second)
    np.testing.assert_array_equal(swapped[0], first.ground_truth[0])     # starts from its own box
    assert not np.allclose(swapped, own)                                  # another template, other boxes


class _HoldTheState:
    """A stand-in tracker that answers the box it was given: one-step IoU is then IoU(previous truth, truth)."""

    def initialize(self, image, box):
        self.template_box = box

    def track(self, image):
        return {"box": list(self.state)}


def test_one_step_ious_feed_the_previous_true_box(tmp_path, benchmark_script):
    from mimtrack.evaluation.metrics import box_iou

    make_synthetic("otb", tmp_path, sequences=2, frames=7, size=(96, 72), seed=2)
    first, second = load_dataset("otb", tmp_path)
    frames = {s.name: [None] * len(s) for s in (first, second)}
    ious = benchmark_script("template_swap").one_step_ious(_HoldTheState(), first, second, frames)
    gt = first.ground_truth
    np.testing.assert_allclose(ious, box_iou(gt[:-1], gt[1:]), atol=1e-12)
    assert len(ious) == 6 and min(ious) < 1
