"""The bundled tracker on real video (../shared/data/real, validation only; skipped when absent): it must follow a
real object, far better than holding the first box still."""

import numpy as np

from mimtrack.evaluation.datasets import load_dataset
from mimtrack.evaluation.metrics import box_iou, curve_auc, success_curve
from mimtrack.images import read_image_rgb
from mimtrack.tracker.inference import load_tracker


def _auc(boxes, gt):
    return curve_auc(success_curve(box_iou(np.asarray(boxes), gt)))


def test_bundled_tracker_follows_the_real_bag(shared_dir, one_torch_thread):
    """The bag blown over grass (VOT's bag): holding the first box scores 0.07 AUC, the `smoke_cpu` tracker
    (synthetic textures only) 0.27, the current one about 0.7."""
    seq = load_dataset("otb", shared_dir / "data" / "real", sequences=["bag"])[0]
    tracker = load_tracker()
    tracker.initialize(read_image_rgb(seq.frames[0]), seq.ground_truth[0])
    boxes = [seq.ground_truth[0]] + [tracker.track(read_image_rgb(f))["box"] for f in seq.frames[1:]]
    held = np.repeat(seq.ground_truth[:1], len(seq), axis=0)
    assert _auc(boxes, seq.ground_truth) > _auc(held, seq.ground_truth) + 0.25
