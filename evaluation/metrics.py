"""Per-frame box metrics and threshold curves: the one numpy core every protocol uses.

Boxes are (N, 4) float arrays of x, y, w, h (top-left corner + size, pixels).
Everything is vectorised over frames; a protocol concatenates the frames of all
sequences (and runs) and passes ``segment_ids`` so one call yields the curves of
every sequence at once.
"""

import numpy as np

# Thresholds built exactly like the references (an IoU or an error can sit exactly
# on a threshold, so the last bit matters).
IOU_THRESHOLDS = np.linspace(0, 1, 21)  # success plot, IoU > t
PIXEL_THRESHOLDS = np.arange(51, dtype=np.float64)  # precision plot, error <= t px
NORM_THRESHOLDS = np.linspace(0, 0.5, 51)  # normalised precision, error <= t
PYTRACKING_NORM_THRESHOLDS = np.arange(51, dtype=np.float64) / 100.0  # differs from linspace in 3 last bits
GOT10K_THRESHOLDS = np.linspace(0, 1, 101)  # GOT-10k success curve, IoU > t
TRACKINGNET_IOU_THRESHOLDS = np.linspace(0, 1, 21)  # IoU >= t
TRACKINGNET_PIXEL_THRESHOLDS = np.linspace(0, 50, 21)  # error <= t
TRACKINGNET_NORM_THRESHOLDS = np.linspace(0, 0.5, 21)  # error <= t
TRACKINGNET_AREA_X = np.linspace(0, 1, 21)  # the devkit integrates all three curves over this axis


def box_iou(pred, gt, pixel=False, eps=0.0, clip=False):
    """IoU of matching rows of two (N, 4) box arrays.

    pixel: the "+1 pixel" convention of LaSOT-matlab / pytracking (right edge
        x + w - 1, width right - left + 1); equal to the continuous form up to rounding.
    eps, clip: got10k adds float eps to the union and clips the IoU to [0, 1].
    Areas are w * h as in every reference (no abs: odd boxes give odd IoUs, as there).
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    left = np.maximum(pred[:, 0], gt[:, 0])
    top = np.maximum(pred[:, 1], gt[:, 1])
    if pixel:
        right = np.minimum(pred[:, 0] + pred[:, 2] - 1.0, gt[:, 0] + gt[:, 2] - 1.0)
        bottom = np.minimum(pred[:, 1] + pred[:, 3] - 1.0, gt[:, 1] + gt[:, 3] - 1.0)
        inter = np.maximum(right - left + 1.0, 0.0) * np.maximum(bottom - top + 1.0, 0.0)
    else:
        right = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
        bottom = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
        inter = np.maximum(right - left, 0.0) * np.maximum(bottom - top, 0.0)
    union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (union + eps)
    return np.clip(iou, 0.0, 1.0) if clip else iou


def box_centers(boxes):
    """Centres x + (w - 1) / 2, y + (h - 1) / 2 (every toolkit but TrackingNet's)."""
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def center_errors(pred, gt, style="lasot"):
    """(centre error in pixels, normalised centre error) of matching rows.

    The normalised error measures x in GT widths and y in GT heights. style
    'lasot' (LaSOT-matlab, pytracking) divides both centres by the GT size, then
    subtracts; style 'got10k' divides the difference by max(1, GT size). Same
    maths, different rounding and zero-size behaviour.
    """
    pred_center, gt_center = box_centers(pred), box_centers(gt)
    d = pred_center - gt_center
    error = np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        if style == "lasot":
            size = gt[:, 2:]
            d = pred_center / size - gt_center / size
        elif style == "got10k":
            d /= np.maximum(1.0, gt[:, 2:])
        else:
            raise ValueError(f"unknown normalisation style {style!r}")
    return error, np.sqrt(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1])


def all_positive(boxes):
    """Rows whose four values are all > 0 (NaN is not): the toolkits' 'valid GT' test."""
    with np.errstate(invalid="ignore"):
        return (boxes[:, 0] > 0) & (boxes[:, 1] > 0) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def any_nan(boxes):
    """Rows holding a NaN."""
    return np.isnan(boxes[:, 0]) | np.isnan(boxes[:, 1]) | np.isnan(boxes[:, 2]) | np.isnan(boxes[:, 3])


# threshold_slots: how far from a grid point (in steps) a value must be for its slot to be read off arithmetically,
# and how close to uniform a grid must be (both far above the ~1e-14 rounding error of the quotient and grid).
_ON_THRESHOLD = 1e-9
_UNIFORM_GRID = 1e-12


def threshold_slots(values, thresholds, side="left"):
    """``np.searchsorted(thresholds, values, side)`` in a few flat passes on uniform grids (every toolkit's).

    On a grid t_j = t_0 + j * step (up to rounding) the slot of v is floor((v - t_0) / step) + 1,
    clipped to [0, K], wherever (v - t_0) / step lies farther than 1e-9 from an integer: rounding
    (of the grid or of that quotient) cannot move such a value across a threshold, and ``side``
    only matters for values on one. The other values (on or next to a threshold, inf, NaN) take
    the binary search, as do other grids. NaN -> len(thresholds).
    """
    values = np.asarray(values, dtype=np.float64)
    k = len(thresholds)
    step = (thresholds[-1] - thresholds[0]) / (k - 1) if k > 1 else 0.0
    if not step > 0 or np.abs((thresholds - thresholds[0]) / step - np.arange(k)).max() > _UNIFORM_GRID:
        return np.searchsorted(thresholds, values, side=side)
    with np.errstate(invalid="ignore", over="ignore"):
        position = (values - thresholds[0]) * (1.0 / step) if thresholds[0] else values * (1.0 / step)
        floor = np.floor(position)
        fraction = position - floor
        checked = np.flatnonzero(~((fraction >= _ON_THRESHOLD) & (fraction <= 1.0 - _ON_THRESHOLD)))
        slot = np.clip(floor + 1.0, 0, k).astype(np.intp)  # NaN: any number, replaced below
    slot[checked] = np.searchsorted(thresholds, values[checked], side=side)
    return slot


def threshold_counts(values, thresholds, compare, segment_ids=None, n_segments=1):
    """(n_segments, K) number of values passing each threshold, per segment.

    compare: '>' (success), '>=' (TrackingNet success) or '<=' (precision).
    NaN never passes, as with numpy/MATLAB comparisons. Exact: each value is
    located among the sorted thresholds with the same comparison the references
    use, then per-segment histograms are accumulated (one pass over the values).
    """
    values = np.asarray(values, dtype=np.float64)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    k = len(thresholds)
    if compare not in (">", ">=", "<="):
        raise ValueError(f"unknown comparison {compare!r}")
    # '>' and '<=': slot = how many thresholds are < value; '>=': how many are <= value.
    slot = threshold_slots(values, thresholds, side="right" if compare == ">=" else "left")
    if compare != "<=":
        slot[np.isnan(values)] = 0  # NaN sorts last; it must pass nothing
    if segment_ids is None:
        segment_ids = np.zeros(len(values), dtype=np.int64)
    hist = np.bincount(segment_ids * (k + 1) + slot, minlength=n_segments * (k + 1))
    hist = hist.reshape(n_segments, k + 1)
    if compare == "<=":
        # value <= t_j  <=>  slot <= j
        return np.cumsum(hist, axis=1)[:, :k]
    # value > t_j (or >=)  <=>  slot > j
    return np.cumsum(hist[:, ::-1], axis=1)[:, ::-1][:, 1:]


def success_curve(ious, thresholds=IOU_THRESHOLDS, denominator=None):
    """Fraction of frames with IoU > t for each threshold (denominator defaults to len(ious))."""
    ious = np.asarray(ious, dtype=np.float64)
    n = len(ious) if denominator is None else denominator
    return threshold_counts(ious, thresholds, ">")[0] / n


def precision_curve(errors, thresholds=PIXEL_THRESHOLDS, denominator=None):
    """Fraction of frames with centre error <= t for each threshold."""
    errors = np.asarray(errors, dtype=np.float64)
    n = len(errors) if denominator is None else denominator
    return threshold_counts(errors, thresholds, "<=")[0] / n


def curve_auc(curve):
    """Area under success curve(s) (..., K) as the OPE toolkits define it: the mean of the points."""
    return np.mean(curve, axis=-1)


def trapezoid_area(curve, x=TRACKINGNET_AREA_X):
    """Trapezoid area under curve(s) (..., K) (TrackingNet devkit, np.trapz)."""
    return np.trapezoid(curve, x=x, axis=-1)


def trackingnet_errors(pred, gt):
    """IoU, centre distance and normalised distance exactly as the TrackingNet devkit computes them.

    Both box sets must already be rounded to integers. The devkit's pandas
    row-wise max/min skip NaN (np.fmax/np.fmin here), its intersection uses
    the +1 pixel convention and rounds the intersection size, centres are
    x + (w + 1) / 2, and distances are normalised by the (rounded) GT size.
    """
    pred_right = pred[:, 0] + pred[:, 2] - 1.0
    pred_bottom = pred[:, 1] + pred[:, 3] - 1.0
    gt_right = gt[:, 0] + gt[:, 2] - 1.0
    gt_bottom = gt[:, 1] + gt[:, 3] - 1.0
    inter_w = np.round(np.fmin(gt_right, pred_right) - np.fmax(gt[:, 0], pred[:, 0]) + 1.0)
    inter_h = np.round(np.fmin(gt_bottom, pred_bottom) - np.fmax(gt[:, 1], pred[:, 1]) + 1.0)
    # pandas clip(lower=0) keeps NaN, like np.maximum
    inter = np.maximum(inter_w, 0.0) * np.maximum(inter_h, 0.0)
    gt_center = gt[:, :2] + (gt[:, 2:] + 1.0) / 2.0
    pred_center = pred[:, :2] + (pred[:, 2:] + 1.0) / 2.0
    dx = gt_center[:, 0] - pred_center[:, 0]
    dy = gt_center[:, 1] - pred_center[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (gt[:, 2] * gt[:, 3] + pred[:, 2] * pred[:, 3] - inter)
        distance = np.sqrt(dx * dx + dy * dy)
        norm_distance = np.sqrt(dx / gt[:, 2] * dx / gt[:, 2] + dy / gt[:, 3] * dy / gt[:, 3])
    return iou, distance, norm_distance


def forward_fill(boxes, replace):
    """Rows flagged in ``replace`` take the last earlier row that is not replaced.

    The vectorised form of the sequential repair "row i := row i-1" of the
    LaSOT-matlab / pytracking toolkits. replace[0] must be False.
    """
    source = np.where(replace, 0, np.arange(len(boxes)))
    np.maximum.accumulate(source, out=source)
    return np.take(boxes, source, axis=0, out=np.empty_like(boxes))  # keeps the layout (column-major frames)


def clip_to_image(boxes, width, height):
    """Clip boxes to the image as the GOT-10k toolkit does (x, y first, then w, h)."""
    x = np.clip(boxes[:, 0], 0, width)
    y = np.clip(boxes[:, 1], 0, height)
    w = np.clip(boxes[:, 2], 0, width - x)
    h = np.clip(boxes[:, 3], 0, height - y)
    return np.stack([x, y, w, h], axis=1)
