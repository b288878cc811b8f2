"""Tracking training data from real photographs: no download, any folder of photos.

Three pieces, all seeded:

- :class:`PhotoBank` — the photos of a folder (searched recursively; jpg, png, webp, bmp, tif), decoded lazily and
  downscaled to at most ``max_side`` pixels.
- :class:`PhotoVideo` — one sequence in which a region cut from a photo (a rectangle, an ellipse or a smooth
  blob, with a soft edge) moves over another photo with the motions real targets have: translation with momentum
  and sudden jumps, scale drift, in-plane rotation, perspective, non-rigid deformation, motion blur, illumination
  change of the scene and of the target, an occluder crossing it, leaving the frame and coming back, look-alike
  distractors and camera pan / shake. It has :class:`mimtrack.tracker.data.synthetic.SyntheticVideo`'s interface, so
  ``mimtrack make-synthetic --photos DIR`` writes it in every official layout. The ground truth is the bounding box
  of the target's drawn (alpha >= 0.5) pixels, so it matches what is drawn.
- :class:`PhotoPairSource` — still-image pairs the way SiamRPN++ / OSTrack use COCO (``--data photos=DIR``): each
  "sequence" is one textured region of one photo; the template is cropped from the photo and the search region
  from a second, independently augmented view of it (affine and perspective warp, colour, blur, noise).

``mimtrack collect-photos --out DIR`` fills a folder with the real photographs that installable packages ship
(scikit-image's and scikit-learn's sample images, matplotlib's sample photo, the photographic wallpapers of Debian's
``mate-backgrounds``, ``lomiri-wallpapers-20.04`` / ``-16.04`` and ``plasma-workspace-wallpapers`` packages when
installed).
"""

import functools
import math
import os

import cv2
import numpy as np

from mimtrack.evaluation.datasets._common import list_frames, natural_key
from mimtrack.errors import UserError
from mimtrack.images import IMAGE_EXTENSIONS

from .sources import CorruptFrame, Source, TrainSequence

MAX_SIDE = 1024          # photos are downscaled to this longest side on load (wallpapers are up to 5640 px)
MIN_SIDE = 64            # smaller images cannot give a background or a region worth tracking


def list_photos(folder):
    """Image files below ``folder`` (each folder's in natural order, folders in natural order too); UserError when
    there are none."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: photo folder not found")
    paths = []
    for dirpath, dirnames, _ in os.walk(folder, onerror=_raise_unreadable):
        dirnames.sort(key=natural_key)
        paths += list_frames(dirpath, IMAGE_EXTENSIONS)
    if not paths:
        raise UserError(f"{folder}: no photos found ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)})")
    return paths


def _raise_unreadable(error):
    raise UserError(f"{error.filename}: cannot read the photo folder ({error.strerror})")


def decode_photo(data, max_side=MAX_SIDE):
    """Encoded bytes -> BGR uint8 with the longest side <= ``max_side`` (INTER_AREA), or None."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None or min(image.shape[:2]) < MIN_SIDE:
        return None
    scale = max_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return image


class PhotoBank:
    """The photos of a folder, decoded on first use (BGR, longest side <= ``max_side``), a few kept in memory."""

    def __init__(self, folder, max_side=MAX_SIDE, cache=32):
        self.folder = os.fspath(folder)
        self.paths = list_photos(self.folder)
        self.max_side = max_side
        self._load = functools.lru_cache(maxsize=cache)(self._decode)
        self._bad = set()

    def __len__(self):
        return len(self.paths)

    def _decode(self, index):
        try:
            with open(self.paths[index], "rb") as f:
                return decode_photo(f.read(), self.max_side)
        except OSError:
            return None

    def photo(self, index):
        """Photo ``index`` (BGR uint8), or None when it cannot be decoded (or is smaller than 64 px)."""
        image = self._load(index)
        if image is None:
            self._bad.add(index)
        return image

    def draw(self, rng):
        """A random decodable photo; UserError when no photo of the folder can be decoded."""
        for _ in range(4 * len(self.paths) + 8):
            image = self.photo(int(rng.integers(len(self.paths))))
            if image is not None:
                return image
            if len(self._bad) == len(self.paths):
                break
        raise UserError(f"{self.folder}: none of its {len(self.paths)} image files could be decoded as a photo of "
                        f"at least {MIN_SIDE}x{MIN_SIDE} pixels")


# ---------------------------------------------------------------- random regions, shapes and paths
def crop_region(rng, photo, aspect, min_frac=0.1, max_frac=0.6):
    """A random axis-aligned region of ``photo`` with width / height = ``aspect`` whose shorter side spans
    ``min_frac``-``max_frac`` of the photo's shorter side, returned as a copy."""
    ph, pw = photo.shape[:2]
    side = rng.uniform(min_frac, max_frac) * min(ph, pw)
    w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
    scale = min(1.0, pw / w, ph / h)
    w, h = max(8, int(w * scale)), max(8, int(h * scale))
    x, y = int(rng.integers(0, pw - w + 1)), int(rng.integers(0, ph - h + 1))
    return photo[y:y + h, x:x + w].copy()


def textured_region(rng, photo, aspect, tries=8, **kwargs):
    """:func:`crop_region`, preferring a region with structure (grey-level std >= 12) over a flat one."""
    best, best_std = None, -1.0
    for _ in range(tries):
        region = crop_region(rng, photo, aspect, **kwargs)
        std = float(cv2.cvtColor(region, cv2.COLOR_BGR2GRAY).std())
        if std >= 12:
            return region
        if std > best_std:
            best, best_std = region, std
    return best


def shape_mask(rng, height, width):
    """A float32 alpha mask in [0, 1] of a rectangle, ellipse or smooth random blob filling the patch, with an
    edge softened over ~1.5 % of its size (objects are not cut out with scissors)."""
    kind = rng.choice(3, p=[0.35, 0.3, 0.35])
    mask = np.zeros((height, width), dtype=np.uint8)
    if kind == 0:
        mask[:] = 1
    elif kind == 1:
        cv2.ellipse(mask, (width // 2, height // 2), (max(1, width // 2), max(1, height // 2)), 0, 0, 360, 1, -1)
    else:
        # r(theta) = 1 + sum of 3 low harmonics: a star-free, potato-like outline touching the patch border.
        theta = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        radius = np.ones_like(theta)
        for harmonic in (2, 3, 5):
            radius += rng.uniform(0, 0.25 / harmonic * 2) * np.sin(harmonic * theta + rng.uniform(0, 2 * np.pi))
        x, y = radius * np.cos(theta), radius * np.sin(theta)
        x = (x - x.min()) / np.ptp(x) * (width - 1)
        y = (y - y.min()) / np.ptp(y) * (height - 1)
        cv2.fillPoly(mask, [np.stack([x, y], axis=1).round().astype(np.int32)], 1)
    alpha = mask.astype(np.float32)
    blur = 2 * int(0.015 * max(height, width)) + 1
    if blur > 1 and kind != 0:
        alpha = cv2.GaussianBlur(alpha, (blur, blur), 0) * mask   # soft inside the outline, zero outside
    return alpha


def smooth_path(rng, n, amplitude, periods=(20, 80)):
    """(n,) sum of two random sinusoids of the given amplitude: smooth, bounded variation."""
    t = np.arange(n)
    return sum(amplitude / 2 * np.sin(2 * np.pi * t / rng.uniform(*periods) + rng.uniform(0, 2 * np.pi))
               for _ in range(2))


def momentum_path(rng, n, start, low, high, speed, jump_prob=0.02):
    """(n, 2) positions of a point moving with momentum inside [low, high] (per axis): velocity = 0.85 x velocity
    + noise of scale ``speed`` px, reflected at the bounds, with rare sudden jumps (fast motion)."""
    position, velocity = np.asarray(start, dtype=np.float64).copy(), rng.normal(0, speed, 2)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    out = np.empty((n, 2))
    for k in range(n):
        velocity = 0.85 * velocity + rng.normal(0, speed, 2)
        if rng.random() < jump_prob:
            velocity += rng.normal(0, 6 * speed, 2)
        position = position + velocity
        for axis in range(2):
            if position[axis] < low[axis] or position[axis] > high[axis]:
                position[axis] = np.clip(position[axis], low[axis], high[axis])
                velocity[axis] = -0.5 * velocity[axis]
        out[k] = position
    return out


def _homography(cx, cy, angle, scale, shear, width, height, perspective=(0.0, 0.0)):
    """3x3 map from patch pixels (width x height, centred) to frame pixels: translate(cx, cy) @ rotate(angle) @
    scale @ shear @ perspective @ translate(-w/2, -h/2)."""
    c, s = math.cos(angle), math.sin(angle)
    centre = np.array([[1, 0, -width / 2], [0, 1, -height / 2], [0, 0, 1]])
    persp = np.array([[1, 0, 0], [0, 1, 0], [perspective[0] / max(width, 1), perspective[1] / max(height, 1), 1]])
    shape = np.array([[scale[0], shear, 0], [0, scale[1], 0], [0, 0, 1]])
    rotate = np.array([[c, -s, cx], [s, c, cy], [0, 0, 1]])
    return rotate @ shape @ persp @ centre


def _deform(patch, alpha, k, params):
    """Non-rigid, time-varying warp (a travelling sine displacement field), as cloth, bags or bodies bend."""
    amplitude, wavelength, speed = params
    h, w = alpha.shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    phase = 2 * np.pi * (yy / (wavelength * h) + k * speed)
    map_x = xx + np.float32(amplitude * w) * np.sin(phase).astype(np.float32)
    phase = 2 * np.pi * (xx / (wavelength * w) + k * speed * 0.7)
    map_y = yy + np.float32(amplitude * h * 0.5) * np.sin(phase).astype(np.float32)
    patch = cv2.remap(patch, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    alpha = cv2.remap(alpha, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return patch, alpha


def _motion_blur(image, alpha, velocity):
    """Blur along the motion direction with a line kernel of about half the displacement (an exposure of half a
    frame interval)."""
    length = int(round(0.5 * math.hypot(*velocity)))
    if length < 2:
        return image, alpha
    kernel = np.zeros((2 * length + 1, 2 * length + 1), dtype=np.float32)
    angle = math.atan2(velocity[1], velocity[0])
    dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
    cv2.line(kernel, (round(length - dx), round(length - dy)), (round(length + dx), round(length + dy)), 1.0, 1)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel), cv2.filter2D(alpha, -1, kernel)


class _Layer:
    """A photo patch with an alpha mask, drawn at a pose per frame. The colour is kept premultiplied by alpha, so
    resampling, deformation and motion blur act on colour and coverage alike (blurred edges stay consistent)."""

    def __init__(self, patch, alpha, centres, scales, angles, shear=0.0, perspective=None, deform=None,
                 gain=None):
        self.patch, self.alpha = patch.astype(np.float32) * alpha[..., None], alpha
        self.centres, self.scales, self.angles, self.shear = centres, scales, angles, shear
        self.perspective, self.deform, self.gain = perspective, deform, gain

    def warp(self, k):
        """(premultiplied colour, alpha, x0, y0): the layer at frame ``k`` warped into the smallest region that
        holds it, whose top-left corner is frame pixel (x0, y0) (possibly outside the frame)."""
        patch, alpha = self.patch, self.alpha
        if self.deform is not None:
            patch, alpha = _deform(patch, alpha, k, self.deform)
        h, w = alpha.shape
        persp = self.perspective[k] if self.perspective is not None else (0.0, 0.0)
        cx, cy = self.centres[k]
        H = _homography(cx, cy, self.angles[k], self.scales[k], self.shear, w, h, persp)
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], dtype=np.float64) @ H.T
        corners = corners[:, :2] / corners[:, 2:]
        velocity = self.centres[k] - self.centres[k - 1] if k > 0 else np.zeros(2)
        pad = 2 + int(math.hypot(*velocity))
        x0, y0 = np.floor(corners.min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + pad
        H = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]]) @ H
        size = (int(x1 - x0), int(y1 - y0))
        image = cv2.warpPerspective(patch, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        mask = cv2.warpPerspective(alpha, H, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if self.gain is not None:
            image *= np.float32(self.gain[k])
        image, mask = _motion_blur(image, mask, velocity)
        return image, mask, int(x0), int(y0)


def _blend(frame, image, mask, x0, y0):
    """Composite a premultiplied region whose top-left is frame pixel (x0, y0) over ``frame`` (clipped to it);
    returns the layer's alpha as a frame-sized array."""
    fh, fw = frame.shape[:2]
    h, w = mask.shape
    a0, b0, a1, b1 = max(x0, 0), max(y0, 0), min(x0 + w, fw), min(y0 + h, fh)
    coverage = np.zeros((fh, fw), dtype=np.float32)
    if a0 >= a1 or b0 >= b1:
        return coverage
    sub_mask = mask[b0 - y0:b1 - y0, a0 - x0:a1 - x0]
    region = frame[b0:b1, a0:a1]
    region *= (1 - sub_mask)[..., None]
    region += image[b0 - y0:b1 - y0, a0 - x0:a1 - x0]
    coverage[b0:b1, a0:a1] = sub_mask
    return coverage


class PhotoVideo:
    """One sequence of a photo region moving over a photo (see the module docstring).

    ``render(k)`` -> (BGR uint8 frame, the target's full box [x, y, w, h], possibly partly outside the image);
    ``labels()`` -> (per-frame GT clipped to the image with 0 rows when out of view, in-view fraction, visible
    fraction), as :class:`mimtrack.tracker.data.synthetic.SyntheticVideo`.
    """

    def __init__(self, rng, n_frames, size, bank, absence=True, occlusion=True, distractors=None,
                 target_aspect=None, distractor_reach=None):
        # target_aspect: (low, high) bounds of the target's width / height, drawn log-uniformly; None: e^-1.1 to
        # e^0.9 (0.33-2.46). People, the commonest real targets, are 0.3-0.5: a lower bound of ~0.2 gives more of them.
        # distractors, distractor_reach: see the distractors below.
        self.n, (self.width, self.height) = n_frames, size
        W, H = self.width, self.height
        # Camera: the frame is a window moving (pan) and shaking over a larger background photo.
        self.pan_margin = int(0.12 * max(W, H))
        background = bank.draw(rng)
        aspect = (W + 2 * self.pan_margin) / (H + 2 * self.pan_margin)
        region = crop_region(rng, background, aspect, 0.4, 1.0)
        self.background = cv2.resize(region, (W + 2 * self.pan_margin, H + 2 * self.pan_margin),
                                     interpolation=cv2.INTER_AREA).astype(np.float32)
        pan = self.pan_margin * rng.uniform(0, 0.9)
        shake = rng.choice([0.0, rng.uniform(0.5, 3.0)], p=[0.5, 0.5])
        self.camera = np.stack([smooth_path(rng, n_frames, pan, (40, 160)), smooth_path(rng, n_frames, pan, (40, 160))],
                               axis=1) + rng.normal(0, shake, (n_frames, 2))
        self.camera = np.clip(self.camera, -self.pan_margin, self.pan_margin)
        # Scene illumination: a slow gain drift, sometimes a ramp from dark to light (or back).
        gain = 1 + smooth_path(rng, n_frames, rng.uniform(0, 0.35), (30, 120))
        if rng.random() < 0.3:
            ramp = np.linspace(rng.uniform(0.35, 0.8), 1.0, n_frames)
            gain = gain * (ramp if rng.random() < 0.5 else ramp[::-1])
        self.scene_gain = np.clip(gain, 0.25, 1.8)

        # The target.
        side = min(W, H) * math.exp(rng.uniform(math.log(0.06), math.log(0.4)))
        log_aspect = (-1.1, 0.9) if target_aspect is None else tuple(math.log(v) for v in target_aspect)
        aspect = math.exp(rng.uniform(*log_aspect))
        base = np.array([side * math.sqrt(aspect), side / math.sqrt(aspect)])
        source = background if rng.random() < 0.15 else bank.draw(rng)   # camouflage: same photo as the scene
        patch = textured_region(rng, source, aspect)
        patch = cv2.resize(patch, (max(8, int(base[0])), max(8, int(base[1]))), interpolation=cv2.INTER_AREA)
        alpha = shape_mask(rng, *patch.shape[:2])
        log_scale = smooth_path(rng, n_frames, rng.uniform(0.05, 0.6), (40, 160))
        log_scale += np.linspace(0, rng.uniform(-0.6, 0.6), n_frames)           # approaching / receding
        stretch = smooth_path(rng, n_frames, rng.uniform(0, 0.15), (20, 80))     # aspect breathing
        scales = np.exp(log_scale[:, None] + np.stack([stretch, -stretch], axis=1))
        extent = base.max() * np.exp(log_scale.max())
        speed = side * math.exp(rng.uniform(math.log(0.01), math.log(0.12)))
        low, high = np.array([0.1 * W, 0.1 * H]), np.array([0.9 * W, 0.9 * H])
        start = rng.uniform(low + 0.1 * (high - low), high - 0.1 * (high - low))
        centres = momentum_path(rng, n_frames, start, low, high, speed)
        if absence and n_frames >= 30 and rng.random() < 0.5:
            # Leave through the nearest side and come back: a smooth push of up to the image size.
            begin, length = int(rng.integers(n_frames // 4, n_frames - 15)), int(rng.integers(8, 20))
            t = np.arange(n_frames)
            ramp = np.clip(np.minimum(t - begin, begin + length - t) / 4, 0, 1)
            axis = int(rng.integers(2))
            sign = -1 if centres[begin, axis] < (W, H)[axis] / 2 else 1
            centres[:, axis] += sign * ramp * ((W, H)[axis] / 2 + extent)
        angles = np.zeros(n_frames)
        if rng.random() < 0.4:
            angles = np.radians(smooth_path(rng, n_frames, rng.uniform(5, 40), (30, 120)))
        perspective = None
        if rng.random() < 0.3:
            perspective = np.stack([smooth_path(rng, n_frames, 0.5, (40, 120)),
                                    smooth_path(rng, n_frames, 0.5, (40, 120))], axis=1)
        deform = None
        if rng.random() < 0.3:
            deform = (rng.uniform(0.02, 0.08), rng.uniform(0.7, 2.0), rng.uniform(0.005, 0.03))
        target_gain = 1 + smooth_path(rng, n_frames, rng.uniform(0, 0.3), (20, 80))
        self.target = _Layer(patch, alpha, centres, scales, angles, rng.uniform(-0.1, 0.1), perspective, deform,
                             target_gain)

        # Look-alike distractors, drawn behind the target: a tinted, rescaled copy of the target, or another
        # region of the target's own photo (same colours and textures).
        # ``distractors``: None draws 0-3; an int is the count; (low, high) draws the count in that range.
        # ``distractor_reach``: None lets them roam the frame; R keeps their centres within R target sides of the
        # target's. Many, and near, keep the network from finding "the pasted object near the centre of the crop"
        # without looking at the template (benchmarks/template_swap.py).
        if distractors is None or not np.isscalar(distractors):
            fewest, most = (0, 3) if distractors is None else distractors
            count = int(rng.integers(fewest, most + 1))
        else:
            count = int(distractors)
        self.distractors = []
        for _ in range(count):
            if rng.random() < 0.5:
                d_patch = np.clip(patch * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)
                d_alpha = alpha
            else:
                d_patch = cv2.resize(textured_region(rng, source, aspect), patch.shape[1::-1],
                                     interpolation=cv2.INTER_AREA)
                d_alpha = shape_mask(rng, *patch.shape[:2])
            if distractor_reach is None:
                d_centres = momentum_path(rng, n_frames, rng.uniform(low, high), low, high,
                                          speed * rng.uniform(0.5, 1.5))
            else:
                # Near the target: inside its search region, where the crop alone cannot tell them apart.
                bound = np.full(2, distractor_reach * side)
                d_centres = centres + momentum_path(rng, n_frames, rng.uniform(-bound, bound), -bound, bound,
                                                    speed * rng.uniform(0.5, 1.5))
            d_scales = scales * rng.uniform(0.7, 1.2)
            self.distractors.append(_Layer(d_patch, d_alpha, d_centres, d_scales, angles * rng.uniform(-1, 1)))

        # An occluder crossing the target's path once, partly or wholly covering it.
        self.occluder = None
        if occlusion and n_frames >= 25 and rng.random() < 0.6:
            k = int(rng.integers(5, n_frames - 10))
            o_side = np.array([base[0] * rng.uniform(0.6, 2.0), base[1] * rng.uniform(0.8, 2.5)]) * scales[k]
            o_patch = cv2.resize(textured_region(rng, bank.draw(rng), o_side[0] / o_side[1]),
                                 (max(8, int(o_side[0])), max(8, int(o_side[1]))), interpolation=cv2.INTER_AREA)
            o_alpha = shape_mask(rng, *o_patch.shape[:2])
            duration = int(rng.integers(10, 40))
            sweep = np.linspace(-1, 1, duration)[np.clip(np.arange(n_frames) - k + duration // 2, 0, duration - 1)]
            direction = rng.normal(size=2)
            direction /= np.linalg.norm(direction)
            reach = (max(W, H) + o_side.max()) * 0.75
            o_centres = centres[k] + direction[None, :] * sweep[:, None] * reach
            self.occluder = _Layer(o_patch, o_alpha, o_centres, np.ones((n_frames, 2)), np.zeros(n_frames))
        self._labels = np.full((n_frames, 6), np.nan)   # full box (4), in-view fraction, visible fraction

    def render(self, k):
        W, H = self.width, self.height
        ox, oy = self.camera[k] + self.pan_margin
        frame = cv2.warpAffine(self.background, np.array([[1, 0, -ox], [0, 1, -oy]], dtype=np.float64), (W, H),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        for layer in self.distractors:
            _blend(frame, *layer.warp(k))
        image, mask, x0, y0 = self.target.warp(k)
        shown = _blend(frame, image, mask, x0, y0)
        inside = float(shown.sum())
        if self.occluder is not None:
            shown *= 1 - _blend(frame, *self.occluder.warp(k))
        frame *= np.float32(self.scene_gain[k])
        # The box is the extent of the target's drawn pixels (alpha >= 0.5), inside the image or not.
        total = float(mask.sum())
        ys, xs = np.nonzero(mask >= 0.5)
        if total <= 0 or not len(xs):
            box = np.zeros(4)
            self._labels[k] = [*box, 0.0, 0.0]
        else:
            box = np.array([x0 + xs.min(), y0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1], float)
            self._labels[k] = [*box, inside / total, float(shown.sum()) / total]
        return np.clip(frame + 0.5, 0, 255).astype(np.uint8), box   # rounded, not truncated

    def box(self, k):
        if np.isnan(self._labels[k, 0]):
            self.render(k)
        return self._labels[k, :4].copy()

    def labels(self):
        for k in np.flatnonzero(np.isnan(self._labels[:, 0])):
            self.render(int(k))
        gt = np.zeros((self.n, 4))
        for k, (x, y, w, h, in_view, _) in enumerate(self._labels):
            if in_view > 0 and w > 0 and h > 0:
                x0, y0 = max(x, 0), max(y, 0)
                x1, y1 = min(x + w, self.width), min(y + h, self.height)
                if x1 > x0 and y1 > y0:
                    gt[k] = (x0, y0, x1 - x0, y1 - y0)
        in_view = np.where(gt[:, 2] > 0, self._labels[:, 4], 0.0)
        return gt, in_view, np.where(gt[:, 2] > 0, self._labels[:, 5], 0.0)


# ---------------------------------------------------------------- still-image pairs (a training source)
def random_view(image, box, rng, strength=1.0):
    """A second view of a photo and its box for a still-image training pair: a random perspective warp about the
    box centre (rotation, scale, shear, tilt, shift), colour and brightness change, blur and noise. The box of
    the view is the bounding box of the warped box corners."""
    # A search crop (factor 4, centre jitter 3, scale jitter 0.25) stays within ~5 box sides of the box centre:
    # warp a window of 6 sides around it, not the whole (up to 1024 px) photo.
    x, y, bw, bh = box
    reach = 6 * math.sqrt(max(bw * bh, 1.0))
    wx0, wy0 = max(int(x + bw / 2 - reach), 0), max(int(y + bh / 2 - reach), 0)
    image = image[wy0:int(y + bh / 2 + reach) + 1, wx0:int(x + bw / 2 + reach) + 1]
    x, y = x - wx0, y - wy0
    h, w = image.shape[:2]
    cx, cy = x + bw / 2, y + bh / 2
    angle = math.radians(rng.normal(0, 10 * strength))
    scale = math.exp(rng.normal(0, 0.15 * strength))
    aniso = math.exp(rng.normal(0, 0.08 * strength))
    # Tilt relative to the image, not the box: a box-relative tilt puts the horizon inside a large photo.
    tilt = rng.normal(0, 0.1 * strength, 2) * np.array([bw / w, bh / h])
    H = _homography(cx, cy, angle, (scale * aniso, scale / aniso), rng.normal(0, 0.05 * strength), bw, bh, tilt)
    H = H @ np.array([[1, 0, bw / 2 - cx], [0, 1, bh / 2 - cy], [0, 0, 1]])   # about the box centre
    view = cv2.warpPerspective(image, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    corners = np.array([[x, y, 1], [x + bw, y, 1], [x, y + bh, 1], [x + bw, y + bh, 1]], dtype=np.float64) @ H.T
    corners = corners[:, :2] / corners[:, 2:]
    # The bounding box of a rotated box overstates the object; shrink halfway back to the area-preserving size.
    x0, y0 = corners.min(axis=0)
    x1, y1 = corners.max(axis=0)
    new_w, new_h = x1 - x0, y1 - y0
    keep = math.sqrt(max(bw * bh, 1e-6) * scale * scale / max(new_w * new_h, 1e-6))
    shrink = 0.5 * (1 + min(keep, 1.0))
    view_box = np.array([(x0 + x1) / 2 - new_w * shrink / 2, (y0 + y1) / 2 - new_h * shrink / 2,
                         new_w * shrink, new_h * shrink])   # in the window's pixels: the view is the window
    view = view.astype(np.float32)
    view *= rng.uniform(0.7, 1.3, 3).astype(np.float32) * np.float32(rng.uniform(0.7, 1.3))
    if rng.random() < 0.3:
        sigma = rng.uniform(0.5, 2.0)
        view = cv2.GaussianBlur(view, (0, 0), sigma)
    if rng.random() < 0.3:
        view += rng.normal(0, rng.uniform(2, 8), view.shape).astype(np.float32)
    return np.clip(view, 0, 255).astype(np.uint8), view_box


class PhotoPairSource(Source):
    """Still-image pairs from a photo folder (``--data photos=DIR``): ``regions_per_photo`` textured regions of
    each photo are the "sequences"; the template is cropped from the photo, the search region from
    :func:`random_view` of it. Regions are a pure function of (photo, region index)."""

    is_video = False

    def __init__(self, folder, regions_per_photo=64, seed=0):
        self.name = "photos"
        self.bank = PhotoBank(folder)
        self.regions_per_photo, self.seed = regions_per_photo, seed

    def __len__(self):
        return len(self.bank) * self.regions_per_photo

    @functools.lru_cache(maxsize=32)
    def _gray(self, photo_index):
        return cv2.cvtColor(self.bank.photo(photo_index), cv2.COLOR_BGR2GRAY)

    def frame(self, key):
        image = self.bank.photo(key)
        if image is None:
            raise CorruptFrame(f"{self.bank.paths[key]}: cannot decode")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def sequence(self, index):
        photo_index, region = divmod(index, self.regions_per_photo)
        image = self.bank.photo(photo_index)
        if image is None:   # an undecodable photo: the loader counts the frame as corrupt and redraws
            return TrainSequence(f"photo-{photo_index}-{region}", np.ones((1, 4)), np.ones(1, bool), [photo_index])
        rng = np.random.default_rng([self.seed, photo_index, region])
        h, w = image.shape[:2]
        gray = self._gray(photo_index)
        for _ in range(8):
            side = min(w, h) * math.exp(rng.uniform(math.log(0.05), math.log(0.5)))
            aspect = math.exp(rng.uniform(-1.0, 1.0))
            bw, bh = min(w - 1, side * math.sqrt(aspect)), min(h - 1, side / math.sqrt(aspect))
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            if gray[int(y):int(y + bh) + 1, int(x):int(x + bw) + 1].std() >= 12:
                break
        box = np.array([[x, y, bw, bh]])
        return TrainSequence(f"photo-{photo_index}-{region}", box, np.ones(1, bool), [photo_index])

    def search_view(self, frame, box, rng):
        return random_view(frame, box, rng)


# ---------------------------------------------------------------- collect-photos
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "retina", "camera", "coins", "moon", "grass", "gravel", "brick", "page", "text", "clock")
# Photographs among Debian's wallpaper packages (the rest of each package is drawn or rendered art, which is left
# out): mate-backgrounds' nature set, two of lomiri-wallpapers-20.04, twelve of lomiri-wallpapers-16.04.
SYSTEM_PHOTO_GLOBS = ("/usr/share/backgrounds/mate/nature/*.jpg", "/usr/share/backgrounds/Infinite-Sea_by_Aury88.jpg",
                      "/usr/share/backgrounds/Kleiber_by_Lukas_Baubkus.jpg") + tuple(
    f"/usr/share/backgrounds/{name}.jpg" for name in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi"))
# plasma-workspace-wallpapers: one folder per wallpaper, each image in several resolutions (the largest is read).
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                 "Kite", "OneStandsOut", "Path", "Volna", "summer_1am")
PLASMA_WALLPAPERS = "/usr/share/wallpapers"


def _sample_photos():
    """(name, RGB or gray uint8 image) of the photographs that installed packages ship."""
    try:
        import skimage.data
    except ImportError:
        skimage = None
    if skimage is not None:
        for name in SKIMAGE_PHOTOS:
            yield f"skimage-{name}", getattr(skimage.data, name)()
        left, right, _ = skimage.data.stereo_motorcycle()
        yield "skimage-motorcycle_left", left
        yield "skimage-motorcycle_right", right
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        load_sample_images = None
    if load_sample_images is not None:
        for path, image in zip(load_sample_images().filenames, load_sample_images().images):
            yield "sklearn-" + os.path.splitext(os.path.basename(path))[0], image
    try:
        import matplotlib.cbook
        with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
            data = f.read()
        yield "matplotlib-grace_hopper", cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR),
                                                      cv2.COLOR_BGR2RGB)
    except (ImportError, OSError, ValueError):
        pass
    import glob

    found = [("debian-" + os.path.splitext(os.path.basename(path))[0], path)
             for pattern in SYSTEM_PHOTO_GLOBS for path in sorted(glob.glob(pattern))]
    for name in PLASMA_PHOTOS:
        sizes = glob.glob(os.path.join(PLASMA_WALLPAPERS, name, "contents", "images", "*.jpg"))
        if sizes:
            found.append((f"debian-plasma-{name}", max(sizes, key=os.path.getsize)))
    for name, path in found:
        image = cv2.imread(path, cv2.IMREAD_COLOR)
        if image is not None:
            yield name, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def collect_photos(out, max_side=MAX_SIDE):
    """Write the shipped photographs to ``out`` as JPEGs (longest side <= ``max_side``); returns their names."""
    from mimtrack.fileio import atomic_write

    os.makedirs(out, exist_ok=True)
    names = []
    for name, image in _sample_photos():
        image = np.asarray(image)
        if image.ndim == 3 and image.shape[2] == 4:
            image = image[..., :3]
        if image.dtype != np.uint8:
            image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
        ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        photo = decode_photo(data.tobytes(), max_side) if ok else None
        if photo is None:
            continue
        ok, data = cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 95])
        with atomic_write(os.path.join(out, name + ".jpg"), "wb") as f:
            f.write(data.tobytes())
        names.append(name)
    if not names:
        raise UserError("no sample photos found: install the photo extra (pip install 'mimtrack[photos]') or "
                        "Debian's mate-backgrounds / plasma-workspace-wallpapers")
    return names


def add_arguments(parser):
    parser.add_argument("--out", required=True, help="folder to write the photos to (JPEG)")
    parser.add_argument("--max-side", type=int, default=MAX_SIDE, help=f"longest side in pixels (default {MAX_SIDE})")


def run(args):
    if args.max_side < MIN_SIDE:
        raise UserError(f"--max-side {args.max_side}: must be at least {MIN_SIDE}")
    names = collect_photos(args.out, args.max_side)
    print(f"{args.out}: {len(names)} photos")
    return 0
