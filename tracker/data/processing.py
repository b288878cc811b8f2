"""From a sampled frame pair to network inputs, as OSTrack's ``lib/train/data/processing.py: STARKProcessing``.

1. Joint transforms on the full frames, one roll for the pair: grayscale (p 0.05), horizontal flip (p 0.5).
2. Per crop: jitter the GT box (size * exp(N(0,1) * scale_jitter), centre moved by uniform(-0.5, 0.5) *
   sqrt(jittered area) * center_jitter), crop around the jittered box with :func:`mimtrack.tracker.geometry.crop_square`
   (the crop inference uses) and map the GT into the crop with :func:`mimtrack.tracker.geometry.box_to_crop`.
3. Validity: crop side >= 1, the crop not entirely padding, its 1/16-downsampled padding mask not all padding.
4. Per crop, independent rolls (training only): brightness factor in [0.8, 1.2], horizontal flip (p 0.5) on
   normalised coordinates; then ImageNet normalisation.
5. The search crop's Gaussian heatmap label (CenterNet style).

Optionally (``data.paste_distractors``) an object of another sequence is pasted into the search crop before step 4,
beside the target, at about the target's size and with a soft elliptical edge: a second salient object that only
the template tells apart (copy-paste augmentation; the label stays on the target).
"""

import math

import cv2
import numpy as np

from mimtrack import images
from mimtrack.tracker.config import BackboneConfig
from mimtrack.tracker.geometry import box_to_crop, crop_square

IMAGENET_MEAN = np.array(images.IMAGENET_MEAN, dtype=np.float32)
IMAGENET_STD = np.array(images.IMAGENET_STD, dtype=np.float32)
STRIDE = BackboneConfig.patch_size   # the default: the loader passes the recipe's model.backbone.patch_size
MIN_OVERLAP = 0.7      # CornerNet's gaussian_radius parameter used by OSTrack


def jittered_box(box, scale_jitter, center_jitter, rng):
    """OSTrack's ``_get_jittered_box``: independent scale jitter for w and h, then a centre shift."""
    box = np.asarray(box, dtype=np.float64)
    size = box[2:] * np.exp(rng.standard_normal(2) * scale_jitter)
    max_offset = math.sqrt(max(size[0] * size[1], 0.0)) * center_jitter
    center = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([center - 0.5 * size, size])


def flip_frame(image, box):
    """Mirror a full frame and its box. pytracking maps a column x to (W - 1) - x, so x' = W - 1 - x - w."""
    width = image.shape[1]
    return np.ascontiguousarray(image[:, ::-1]), np.array([width - 1 - box[0] - box[2], box[1], box[2], box[3]])


def to_grayscale(image):
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.stack([gray, gray, gray], axis=2)


def crop_around(frame, gt_box, factor, size, scale_jitter, center_jitter, rng, stride=STRIDE):
    """Jittered crop of one frame -> (uint8 crop, GT box normalised to the crop), or None when invalid.
    ``stride``: the patch size, which sets the feature size of the padding-mask check."""
    jittered = jittered_box(gt_box, scale_jitter, center_jitter, rng)
    w, h = jittered[2:]
    if not (np.isfinite(jittered).all() and w > 0 and h > 0) or math.ceil(math.sqrt(w * h) * factor) < 1:
        return None
    crop, resize_factor, pad_mask = crop_square(frame, jittered, factor, size)
    if pad_mask.all():
        return None
    # F.interpolate(mode='nearest') to the feature size picks rows/columns floor(i * size / feat_size).
    picks = np.floor(np.arange(size // stride) * (size / (size // stride))).astype(int)
    if pad_mask[np.ix_(picks, picks)].all():
        return None
    return crop, box_to_crop(gt_box, jittered, resize_factor, size) / size


def gaussian_radius(width, height, min_overlap=MIN_OVERLAP):
    """CornerNet's radius as OSTrack/CenterNet compute it: the smallest of the three quadratic roots, each taken
    as (b + sqrt(b^2 - 4ac)) / 2 (the /2 instead of /2a is theirs and kept)."""
    a1, b1, c1 = 1.0, height + width, width * height * (1 - min_overlap) / (1 + min_overlap)
    a2, b2, c2 = 4.0, 2 * (height + width), (1 - min_overlap) * width * height
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    roots = [(b + math.sqrt(b * b - 4 * a * c)) / 2 for a, b, c in ((a1, b1, c1), (a2, b2, c2), (a3, b3, c3))]
    return min(roots)


def center_heatmap(box, feat_size):
    """(feat_size, feat_size) float32 label of a normalised x, y, w, h box: a Gaussian with sigma = (2r + 1) / 6
    at cell round(centre * feat_size), truncated to a (2r + 1) square, r = int(gaussian_radius(w, h)) in cells."""
    x, y, w, h = np.asarray(box, dtype=np.float64) * feat_size
    radius = int(max(gaussian_radius(w, h), 0.0))
    sigma = (2 * radius + 1) / 6
    cx, cy = np.round(x + 0.5 * w), np.round(y + 0.5 * h)
    cells = np.arange(feat_size)
    dx, dy = cells[None, :] - cx, cells[:, None] - cy
    heatmap = np.exp(-(dx * dx + dy * dy) / (2 * sigma * sigma))
    heatmap[(np.abs(dx) > radius) | (np.abs(dy) > radius)] = 0
    heatmap[heatmap < np.finfo(np.float64).eps] = 0   # CenterNet zeroes values below eps * max (max = 1)
    return heatmap.astype(np.float32)


def paste_object(crop, target_box, frame, box, rng, max_overlap=0.1, tries=10):
    """Paste the ``box`` region of ``frame`` into the uint8 search ``crop`` (in place) beside ``target_box`` (x, y, w, h
    normalised to the crop): the size of the target's, times exp(N(0, 0.25)) per side, inside the crop, covering at
    most ``max_overlap`` of the target's area, alpha-blended through a feathered ellipse. -> True if pasted."""
    size = crop.shape[0]
    x, y, w, h = (int(round(v)) for v in box)
    patch = frame[max(y, 0):y + h, max(x, 0):x + w]
    tx, ty, tw, th = np.asarray(target_box, dtype=np.float64) * size
    if patch.shape[0] < 2 or patch.shape[1] < 2 or tw < 2 or th < 2:
        return False
    pw, ph = (int(round(min(max(v * math.exp(0.25 * rng.standard_normal()), 4.0), 0.6 * size))) for v in (tw, th))
    target_area = tw * th
    for _ in range(tries):
        px, py = int(rng.integers(0, size - pw + 1)), int(rng.integers(0, size - ph + 1))
        overlap_w = max(0.0, min(px + pw, tx + tw) - max(px, tx))
        overlap_h = max(0.0, min(py + ph, ty + th) - max(py, ty))
        if overlap_w * overlap_h <= max_overlap * target_area:
            break
    else:
        return False
    patch = cv2.resize(patch, (pw, ph), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    alpha = np.zeros((ph, pw), dtype=np.float32)
    cv2.ellipse(alpha, (pw // 2, ph // 2), (max(1, pw // 2), max(1, ph // 2)), 0, 0, 360, 1.0, -1)
    blur = 2 * max(1, int(0.08 * max(pw, ph))) + 1
    alpha = cv2.GaussianBlur(alpha, (blur, blur), 0)[..., None]
    region = crop[py:py + ph, px:px + pw].astype(np.float32)
    crop[py:py + ph, px:px + pw] = np.clip(alpha * patch + (1 - alpha) * region + 0.5, 0, 255).astype(np.uint8)
    return True


class PairProcessor:
    """Turns (template frame, box, search frame, box) into one training sample, or None to redraw.
    ``stride``: the backbone's patch size (the heatmap label is search_size / stride cells a side)."""

    def __init__(self, data_cfg, crop_cfg, augment=True, stride=STRIDE):
        self.data, self.crop, self.augment, self.stride = data_cfg, crop_cfg, augment, stride

    def _crop_tensor(self, crop, box, rng):
        """Brightness jitter and flip (training), ImageNet normalisation -> (3, S, S) float32, box."""
        box = np.asarray(box, dtype=np.float64)
        if self.augment:
            jitter = self.data.brightness_jitter
            factor = rng.uniform(max(0.0, 1 - jitter), 1 + jitter)
            image = np.clip(crop.astype(np.float32) * np.float32(factor / 255.0), 0.0, 1.0)
            if rng.random() < self.data.flip_prob:
                image = image[:, ::-1]
                box = np.array([1 - box[0] - box[2], box[1], box[2], box[3]])
        else:
            image = crop.astype(np.float32) / np.float32(255.0)
        image = (image - IMAGENET_MEAN) / IMAGENET_STD
        return np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32), box.astype(np.float32)

    def __call__(self, template_frame, template_box, search_frame, search_box, rng, distractor=None):
        """``distractor``: None, or (frame, box) of another sequence's object to paste beside the target."""
        # Joint transforms (OSTrack applies them in validation too): the same roll for both frames.
        if rng.random() < self.data.grayscale_prob:
            template_frame, search_frame = to_grayscale(template_frame), to_grayscale(search_frame)
            if distractor is not None:
                distractor = (to_grayscale(distractor[0]), distractor[1])
        if rng.random() < self.data.flip_prob:
            template_frame, template_box = flip_frame(template_frame, template_box)
            search_frame, search_box = flip_frame(search_frame, search_box)
        c, d = self.crop, self.data
        template = crop_around(template_frame, template_box, c.template_factor, c.template_size,
                               d.template_scale_jitter, d.template_center_jitter, rng, self.stride)
        if template is None:
            return None
        search = crop_around(search_frame, search_box, c.search_factor, c.search_size,
                             d.search_scale_jitter, d.search_center_jitter, rng, self.stride)
        if search is None:
            return None
        if distractor is not None:
            paste_object(search[0], search[1], *distractor, rng)
        template_image, template_box = self._crop_tensor(*template, rng)
        search_image, search_box = self._crop_tensor(*search, rng)
        return {"template": template_image, "search": search_image, "template_box": template_box,
                "search_box": search_box, "search_heatmap": center_heatmap(search_box, c.search_size // self.stride)}
