import math

import pytest
import torch

from mimtrack.tracker.train.losses import TrackingLoss, box_cxcywh_to_xyxy, focal_loss, giou


def test_focal_loss_hand_computed_on_a_2x2_map():
    gt = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])
    pred = torch.tensor([[[0.8, 0.3], [0.1, 0.2]]])
    positive = -math.log(0.8) * 0.2 ** 2
    negatives = (-math.log(0.7) * 0.3 ** 2 * 0.5 ** 4     # (1 - gt)^4 = 0.0625 near the peak
                 - math.log(0.9) * 0.1 ** 2 - math.log(0.8) * 0.2 ** 2)
    assert focal_loss(pred, gt).item() == pytest.approx(positive + negatives, rel=1e-6)


def test_focal_loss_is_normalised_by_the_number_of_positives():
    gt = torch.tensor([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]])
    pred = torch.full((2, 2, 2), 0.3)
    one = focal_loss(pred[:1], gt[:1]).item()
    assert focal_loss(pred, gt).item() == pytest.approx(one, rel=1e-6)  # same per-sample loss, two positives


def test_giou_of_known_boxes():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    b = torch.tensor([[0.25, 0.25, 0.75, 0.75]])
    g, iou = giou(a, b)
    assert iou.item() == pytest.approx(0.0625 / 0.4375)
    assert g.item() == pytest.approx(0.0625 / 0.4375 - (0.5625 - 0.4375) / 0.5625)


def _outputs(cx, cy, w, h, fs=4, peak=None):
    score = torch.zeros(1, 1, fs, fs)
    score[0, 0, peak[1], peak[0]] = 1.0
    return {"pred_boxes": torch.tensor([[[cx, cy, w, h]]]), "score_map": score}


def test_total_loss_is_zero_at_a_perfect_prediction_and_positive_otherwise():
    loss = TrackingLoss(1.0, 2.0, 5.0)
    box = torch.tensor([[0.3, 0.4, 0.2, 0.2]])  # x, y, w, h: centre (0.4, 0.5) -> cell (1, 2) of 4x4
    heatmap = torch.zeros(1, 4, 4)
    heatmap[0, 2, 1] = 1.0
    heatmap[0, 2, 2] = 0.6
    total, stats = loss(_outputs(0.4, 0.5, 0.2, 0.2, peak=(1, 2)), box, heatmap)
    assert total.item() == pytest.approx(0.0, abs=1e-6)
    assert stats["iou"].item() == pytest.approx(1.0)
    wrong_box, _ = loss(_outputs(0.45, 0.5, 0.2, 0.3, peak=(1, 2)), box, heatmap)
    wrong_peak, s = loss(_outputs(0.4, 0.5, 0.2, 0.2, peak=(3, 3)), box, heatmap)
    assert wrong_box.item() > 0.1 and s["focal"].item() > 1.0 and wrong_peak.item() == pytest.approx(s["focal"].item())


def test_ground_truth_is_clamped_to_the_crop():
    loss = TrackingLoss(0.0, 0.0, 1.0)
    heatmap = torch.zeros(1, 4, 4)
    heatmap[0, 0, 0] = 1.0
    outside = torch.tensor([[-0.2, -0.2, 0.6, 0.6]])          # x1y1x2y2 = (-0.2, -0.2, 0.4, 0.4) -> (0, 0, 0.4, 0.4)
    pred = box_cxcywh_to_xyxy(torch.tensor([0.2, 0.2, 0.4, 0.4]))
    assert pred.tolist() == pytest.approx([0.0, 0.0, 0.4, 0.4])
    total, _ = loss(_outputs(0.2, 0.2, 0.4, 0.4, peak=(0, 0)), outside, heatmap)
    assert total.item() == pytest.approx(0.0, abs=1e-7)


def test_negative_pairs_add_only_their_focal_term():
    """Two code paths that must agree: a batch with a negative pair (target_present 0) gives the positive pair's
    GIoU / L1 / IoU alone, and the focal loss of the whole batch (the negative's all-background map included)."""
    loss = TrackingLoss(1.0, 2.0, 5.0)
    good = _outputs(0.4, 0.5, 0.2, 0.3, peak=(1, 2))
    bad = _outputs(0.8, 0.8, 0.5, 0.1, peak=(3, 3))
    outputs = {k: torch.cat([good[k], bad[k]]) for k in good}
    boxes = torch.tensor([[0.3, 0.4, 0.2, 0.2], [0.1, 0.1, 0.2, 0.2]])
    heatmap = torch.zeros(2, 4, 4)
    heatmap[0, 2, 1] = 1.0
    _, alone = loss(good, boxes[:1], heatmap[:1])
    _, mixed = loss(outputs, boxes, torch.stack([heatmap[0], torch.zeros(4, 4)]), torch.tensor([1.0, 0.0]))
    for key in ("giou", "l1", "iou"):
        assert mixed[key].item() == pytest.approx(alone[key].item(), rel=1e-6), key
    assert mixed["focal"].item() == pytest.approx(focal_loss(outputs["score_map"], torch.stack(
        [heatmap[0], torch.zeros(4, 4)])).item())
    assert mixed["focal"].item() > alone["focal"].item() + 1.0   # the negative's peak of 1 is punished
    # all present: the same numbers as without the mask
    _, plain = loss(outputs, boxes, heatmap)
    _, masked = loss(outputs, boxes, heatmap, torch.ones(2))
    for key in plain:
        assert masked[key].item() == pytest.approx(plain[key].item(), rel=1e-6), key
