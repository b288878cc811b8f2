"""Crops and box transforms shared by inference and training (OSTrack's conventions, reproduced exactly).

Boxes are ``[x, y, w, h]`` in pixels unless a name says ``cx, cy``. Images are HxWxC uint8 arrays.
"""

import math

import cv2
import numpy as np
import torch

from mimtrack.errors import UserError


def crop_window(box, factor, image_size):
    """OSTrack's crop of ``box``: ``(x1, y1, crop_sz, pads)``, pads = (left, top, right, bottom) in pixels.

    Side ``ceil(sqrt(w*h) * factor)``, top-left ``round(centre - side / 2)`` (Python's banker's rounding, as
    OSTrack); ``image_size`` is (height, width). The right/bottom pad is ``x2 - W + 1``, as OSTrack's.
    """
    x, y, w, h = (float(v) for v in box)
    area = w * h
    if not (w > 0 and h > 0 and math.isfinite(area) and math.isfinite(x + y)):
        raise UserError(f"box {[x, y, w, h]} cannot be cropped: width and height must be finite and > 0")
    crop_sz = math.ceil(math.sqrt(area) * factor)
    if crop_sz < 1:
        raise UserError(f"box {[x, y, w, h]} is too small to crop (crop side {crop_sz} px)")
    im_h, im_w = image_size
    x1 = round(x + 0.5 * w - crop_sz * 0.5)
    y1 = round(y + 0.5 * h - crop_sz * 0.5)
    x2, y2 = x1 + crop_sz, y1 + crop_sz
    pads = (max(0, -x1), max(0, -y1), max(x2 - im_w + 1, 0), max(y2 - im_h + 1, 0))
    return x1, y1, crop_sz, pads


def crop_resize(image, box, factor, output_size, out=None):
    """The crop of :func:`crop_square` without its pad mask -> ``(crop, resize_factor)``: what inference needs.

    Same operations in the same order (black padding, then one cv2 INTER_LINEAR resize), so the crop is
    bit-identical; resizing first and padding after is not (the border pixels blend the black into the image).
    The padding copy is skipped when the crop lies inside the image. ``out``: an optional preallocated
    ``output_size`` x ``output_size`` x C uint8 array to resize into (C > 1).
    """
    x1, y1, crop_sz, (left, top, right, bottom) = crop_window(box, factor, image.shape[:2])
    channels = image.shape[2] if image.ndim == 3 else 1
    if crop_sz * crop_sz * channels * image.itemsize > MAX_PADDED_CROP_BYTES:
        return _warp_crop(image, x1, y1, crop_sz, output_size, out), output_size / crop_sz
    xs, xe = x1 + left, x1 + crop_sz - right
    ys, ye = y1 + top, y1 + crop_sz - bottom
    if xs < xe and ys < ye:
        patch = image[ys:ye, xs:xe]
        if left or top or right or bottom:
            patch = cv2.copyMakeBorder(patch, top, bottom, left, right, cv2.BORDER_CONSTANT, value=0)
    else:
        # The crop misses the image entirely (OSTrack's slicing breaks here): all padding.
        patch = np.zeros((crop_sz, crop_sz) + image.shape[2:], dtype=image.dtype)
    crop = cv2.resize(patch, (output_size, output_size), dst=out)   # INTER_LINEAR, cv2's default
    if crop.ndim == 2 and patch.ndim == 3:   # cv2 drops a trailing channel axis of size 1
        crop = crop[:, :, None]
    return crop, output_size / crop_sz


# A padded crop larger than this is not built: a box far larger than the frame (``--init 0,0,100000,100000``)
# would need a 200000 x 200000 patch (120 GB). Such crops are sampled straight from the frame instead.
MAX_PADDED_CROP_BYTES = 256 << 20


def _warp_crop(image, x1, y1, crop_sz, output_size, out=None):
    """The resize of the zero-padded crop without building it: each output pixel samples the frame where
    cv2.resize (INTER_LINEAR) would sample the padded patch, ``(i + 0.5) * scale - 0.5`` crop pixels from its
    corner; outside the frame it is black. Equal to the padded path up to interpolation rounding and the black
    last column/row of OSTrack's pad rule, which only these giant crops skip."""
    scale = crop_sz / output_size
    to_source = np.array([[scale, 0.0, x1 + 0.5 * scale - 0.5], [0.0, scale, y1 + 0.5 * scale - 0.5]])
    crop = cv2.warpAffine(image, to_source, (output_size, output_size), dst=out,
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if crop.ndim == 2 and image.ndim == 3:
        crop = crop[:, :, None]
    return crop


def crop_square(image, box, factor, output_size):
    """Crop a square of side ``ceil(sqrt(w*h) * factor)`` centred on ``box`` and resize it to ``output_size``.

    Returns ``(crop, resize_factor, pad_mask)``: the ``output_size`` x ``output_size`` crop, ``output_size / crop_sz``
    and a bool mask (True = padded pixel). Parts outside the image are black (OSTrack replaced pytracking's replicate
    padding by zeros). Like OSTrack's ``sample_target``, the right/bottom pad is ``x2 - W + 1``: when the crop reaches
    the right (bottom) edge, the image's last column (row) is padded over in black too.
    """
    crop, resize_factor = crop_resize(image, box, factor, output_size)
    x1, y1, crop_sz, (left, top, right, bottom) = crop_window(box, factor, image.shape[:2])
    mask = np.ones((crop_sz, crop_sz), dtype=np.float64)
    if left + right < crop_sz and top + bottom < crop_sz:
        mask[top:crop_sz - bottom, left:crop_sz - right] = 0
    pad_mask = cv2.resize(mask, (output_size, output_size)).astype(bool)
    return crop, resize_factor, pad_mask


def map_box_back(box_in_crop_px, prev_state, resize_factor, search_size):
    """A predicted ``cx, cy, w, h`` (image-pixel scale, relative to the search crop's corner) -> image ``[x, y, w, h]``.

    The crop's corner is taken at ``prev_centre - crop_sz / 2`` (crop_sz = search_size / resize_factor), i.e. the
    crop centre sits at ``search_size / 2`` in crop pixels. Training uses ``(size - 1) / 2`` (see
    :func:`box_to_crop`): half an output pixel apart. Both are OSTrack's and kept so its weights give its results.
    """
    cx, cy, w, h = (float(v) for v in box_in_crop_px)
    cx_prev = prev_state[0] + 0.5 * prev_state[2]
    cy_prev = prev_state[1] + 0.5 * prev_state[3]
    half_side = 0.5 * search_size / resize_factor
    cx_img = cx + (cx_prev - half_side)
    cy_img = cy + (cy_prev - half_side)
    return [cx_img - 0.5 * w, cy_img - 0.5 * h, w, h]


def clip_box(box, height, width, margin=10):
    """Keep ``[x, y, w, h]`` inside the image: x1 in [0, W - margin], x2 in [margin, W], w >= margin (same for y).

    The margin stops the state from collapsing: the tracked box is always at least ``margin`` pixels wide and high.
    """
    x1, y1, w, h = (float(v) for v in box)
    x2, y2 = x1 + w, y1 + h
    x1 = min(max(0.0, x1), width - margin)
    x2 = max(min(width, x2), margin)
    y1 = min(max(0.0, y1), height - margin)
    y2 = max(min(height, y2), margin)
    return [x1, y1, max(margin, x2 - x1), max(margin, y2 - y1)]


def hann1d(size):
    """0.5 * (1 - cos(2*pi*k / (size + 1))), k = 1..size: a centred window with no zeros at the borders."""
    k = torch.arange(1, size + 1, dtype=torch.float32)
    return 0.5 * (1 - torch.cos((2 * math.pi / (size + 1)) * k))


def hann2d(size):
    """The (size, size) outer product of :func:`hann1d`; multiplies the score map at inference."""
    window = hann1d(size)
    return window[:, None] * window[None, :]


def box_to_crop(box, crop_center_box, resize_factor, output_size):
    """Training side: image ``[x, y, w, h]`` -> ``[x, y, w, h]`` in the pixels of a crop centred on ``crop_center_box``.

    OSTrack's ``transform_image_to_crop``: the crop centre is at ``(output_size - 1) / 2``, where inference's
    :func:`map_box_back` puts it at ``output_size / 2``. A box mapped in with this and back with that therefore moves
    by ``-0.5 / resize_factor`` image pixels in x and y: the documented half-(crop-)pixel gap, kept for parity.
    """
    box = np.asarray(box, dtype=np.float64)
    ref = np.asarray(crop_center_box, dtype=np.float64)
    ref_center = ref[:2] + 0.5 * ref[2:]
    box_center = box[:2] + 0.5 * box[2:]
    out_center = (output_size - 1) / 2 + (box_center - ref_center) * resize_factor
    out_wh = box[2:] * resize_factor
    return np.concatenate([out_center - 0.5 * out_wh, out_wh])
