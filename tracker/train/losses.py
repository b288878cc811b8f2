"""OSTrack's training losses (``lib/train/actors/ostrack.py: compute_losses``, ``lib/utils/focal_loss.py``): focal loss on the centre heatmap + GIoU and L1 on the box
decoded at the PREDICTED heatmap peak, against the ground truth clamped to the crop."""

import torch


def focal_loss(pred, gt):
    """CenterNet focal loss (alpha 2, beta 4), summed over the batch and divided by the number of positives.

    pred, gt: (B, fs, fs) or (B, 1, fs, fs); pred in (0, 1) (the clamped sigmoid), gt a Gaussian heatmap whose
    peak cells are exactly 1. Cells below 1 are negatives, down-weighted by (1 - gt)^4 near the peak.
    """
    pred = pred.reshape(gt.shape[0], -1).float()
    gt = gt.reshape(gt.shape[0], -1).float()
    positive = gt.eq(1).float()
    negative = 1.0 - positive
    # where-guards keep log(0) (an exact 0 or 1 prediction on a cell whose term is zero anyway) out of the sum
    pos_term = torch.where(positive.bool(), torch.log(pred.clamp_min(1e-12)) * (1 - pred) ** 2, 0.0)
    neg_term = torch.where(negative.bool(), torch.log((1 - pred).clamp_min(1e-12)) * pred ** 2 * (1 - gt) ** 4, 0.0)
    num_pos = positive.sum()
    loss = -(pos_term.sum() + neg_term.sum())
    return loss / num_pos.clamp_min(1.0)  # no positives: the plain sum (no host sync to test for it)


def box_cxcywh_to_xyxy(boxes):
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)


def box_xywh_to_xyxy(boxes):
    x, y, w, h = boxes.unbind(-1)
    return torch.stack([x, y, x + w, y + h], dim=-1)


def giou(pred, gt):
    """(GIoU, IoU) of matching rows of two (N, 4) x1y1x2y2 box sets."""
    area_p = (pred[:, 2] - pred[:, 0]).clamp_min(0) * (pred[:, 3] - pred[:, 1]).clamp_min(0)
    area_g = (gt[:, 2] - gt[:, 0]).clamp_min(0) * (gt[:, 3] - gt[:, 1]).clamp_min(0)
    lt = torch.maximum(pred[:, :2], gt[:, :2])
    rb = torch.minimum(pred[:, 2:], gt[:, 2:])
    inter = (rb - lt).clamp_min(0).prod(dim=1)
    union = area_p + area_g - inter
    iou = inter / union.clamp_min(1e-7)
    hull = (torch.maximum(pred[:, 2:], gt[:, 2:]) - torch.minimum(pred[:, :2], gt[:, :2])).clamp_min(0).prod(dim=1)
    return iou - (hull - union) / hull.clamp_min(1e-7), iou


class TrackingLoss:
    """focal_weight * focal + giou_weight * (1 - GIoU) + l1_weight * L1 (OSTrack: 1, 2, 5)."""

    def __init__(self, focal_weight=1.0, giou_weight=2.0, l1_weight=5.0):
        self.focal_weight = focal_weight
        self.giou_weight = giou_weight
        self.l1_weight = l1_weight

    @classmethod
    def from_config(cls, train_cfg):
        return cls(train_cfg.focal_weight, train_cfg.giou_weight, train_cfg.l1_weight)

    def __call__(self, outputs, search_box, search_heatmap, target_present=None):
        """outputs: the model's dict (``pred_boxes`` (B,1,4) cx,cy,w,h decoded at the predicted peak,
        ``score_map``); search_box (B, 4) x,y,w,h normalised to the crop; search_heatmap (B, fs, fs);
        target_present (B,) 1 / 0 or None (all 1): negative pairs (0) add only their focal term, an all-background
        heatmap, while GIoU, L1 and the IoU statistic average over the pairs that hold the target.
        -> (total loss, dict of detached floats: loss, focal, giou, l1, iou)."""
        pred = box_cxcywh_to_xyxy(outputs["pred_boxes"].reshape(-1, 4).float())
        gt = box_xywh_to_xyxy(search_box.float()).clamp(0.0, 1.0)
        g, iou = giou(pred, gt)
        if target_present is None:
            giou_loss = (1 - g).mean()
            l1 = torch.nn.functional.l1_loss(pred, gt)
            mean_iou = iou.mean()
        else:
            present = target_present.reshape(-1).float()
            count = present.sum().clamp_min(1.0)
            giou_loss = ((1 - g) * present).sum() / count
            l1 = ((pred - gt).abs().mean(dim=1) * present).sum() / count
            mean_iou = (iou * present).sum() / count
        focal = focal_loss(outputs["score_map"], search_heatmap)
        total = self.focal_weight * focal + self.giou_weight * giou_loss + self.l1_weight * l1
        stats = {"loss": total.detach(), "focal": focal.detach(), "giou": giou_loss.detach(),
                 "l1": l1.detach(), "iou": mean_iou.detach()}
        return total, stats
