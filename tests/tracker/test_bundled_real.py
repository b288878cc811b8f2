"""The bundled tracker on real video (../shared/data/real, validation only; skipped when absent): it must follow a
real object, far better than holding the first box still."""

import numpy as np

from evaluation.datasets import load_dataset
from evaluation.metrics import box_iou, curve_auc, success_curve
from tracker.inference import load_tracker, read_image_rgb


def _auc(boxes, gt):
    return curve_auc(success_curve(box_iou(np.asarray(boxes), gt)))


def test_bundled_tracker_follows_the_real_can(shared_dir, one_torch_thread):
    seq = load_dataset("otb", shared_dir / "data" / "real", sequences=["can"])[0]
    tracker = load_tracker()
    tracker.initialize(read_image_rgb(seq.frames[0]), seq.ground_truth[0])
    boxes = [seq.ground_truth[0]] + [tracker.track(read_image_rgb(f))["box"] for f in seq.frames[1:]]
    held = np.repeat(seq.ground_truth[:1], len(seq), axis=0)
    assert _auc(boxes, seq.ground_truth) > _auc(held, seq.ground_truth) + 0.2
