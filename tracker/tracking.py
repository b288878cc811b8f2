"""The tracker's test-time policy: OSTrack's tracking loop around any network backend.

Pre/post-processing is OSTrack's, step for step (``lib/test/tracker/ostrack.py``, ``OSTrack.initialize`` and
``OSTrack.track``), so its checkpoints give its numbers: the template is cropped once (no template update), the
search region is cropped around the previous box, the score map is multiplied by a Hann window and the box is
decoded at the windowed peak, mapped back to the image and clipped with a 10 px margin. The one addition,
``inference.size_update``, is off (1.0) in OSTrack's recipes.

:func:`mimtrack.tracker.inference.load_tracker` builds a :class:`Tracker` from a recipe and weights; this module
knows nothing of checkpoints or exported graphs, so the exporters can run a tracker (int8 calibration) without
importing the loader that imports them.
"""

import math

import cv2
import numpy as np
import torch

from mimtrack.errors import UserError
from mimtrack.images import IMAGENET_MEAN, IMAGENET_STD
from mimtrack.tracker.geometry import clip_box, crop_resize, hann2d, map_box_back


def as_rgb(image):
    """HxWx3 RGB uint8 from an RGB, grayscale (HxW or HxWx1) or RGBA uint8 array."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UserError(f"image: expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(np.ascontiguousarray(image.reshape(image.shape[:2])), cv2.COLOR_GRAY2RGB)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2RGB)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise UserError(f"image: expected HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}")


def check_init_box(box, height, width):
    """``box`` as 4 floats; UserError unless it has a positive size and overlaps the ``width`` x ``height`` frame."""
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise UserError(f"init box {box!r}: expected 4 numbers x, y, w, h") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise UserError(f"init box {[x, y, w, h]}: values must be finite")
    if w <= 0 or h <= 0:
        raise UserError(f"init box {[x, y, w, h]}: width and height must be > 0")
    if x + w <= 0 or y + h <= 0 or x >= width or y >= height:
        raise UserError(f"init box {[x, y, w, h]} lies entirely outside the {width}x{height} frame")
    return [x, y, w, h]


class Tracker:
    """Tracks one object; ``model`` is an OSTrack-style network (``mimtrack.tracker.model.build_model``).

    ``network`` runs the model each frame (:mod:`mimtrack.tracker.backends`; default: ``TorchNetwork(model)``, which embeds
    the template once). The crop and normalisation buffers are allocated once and reused every frame.
    """

    def __init__(self, model, cfg, device="cpu", network=None):
        from mimtrack.tracker.backends import TorchNetwork

        self.cfg = cfg
        self.device = torch.device(device)
        self.network = network if network is not None else TorchNetwork(model, self.device)
        self.model = self.network.model if isinstance(self.network, TorchNetwork) else model
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        self.mean_np = np.array(IMAGENET_MEAN, dtype=np.float32).reshape(3, 1, 1)
        self.std_np = np.array(IMAGENET_STD, dtype=np.float32).reshape(3, 1, 1)
        feat_size = cfg.crop.search_size // cfg.model.backbone.patch_size
        window = hann2d(feat_size) if cfg.inference.hann_window else torch.ones(feat_size, feat_size)
        self.window = window.to(self.device, torch.float32).view(1, 1, feat_size, feat_size)
        test_factor = cfg.inference.search_factor
        self.search_factor = test_factor if test_factor is not None else cfg.crop.search_factor
        self.size_update = cfg.inference.size_update
        size = cfg.crop.search_size
        self.search_pixels = np.empty((size, size, 3), dtype=np.uint8)
        self.search_input = torch.empty(1, 3, size, size, device=self.device)
        self.template = None
        self.state = None   # the last box [x, y, w, h]; the next search region is centred on it

    def _normalise(self, crop, out=None):
        """uint8 HxWx3 crop -> ImageNet-normalised 1x3xHxW float32 on the device, into ``out`` if given.

        OSTrack's operations in its order ((x / 255 - mean) / std) in float32, done in place: bit-identical to it.
        On the CPU numpy does it (one thread, in ``out``'s memory): torch's thread pool would otherwise spin
        beside ONNX Runtime's and slow its next forward down.
        """
        if out is None:
            out = torch.empty((1, 3) + crop.shape[:2], device=self.device)
        if self.device.type == "cpu":
            pixels = out.numpy()[0]
            np.copyto(pixels, crop.transpose(2, 0, 1), casting="unsafe")   # uint8 -> float32 is exact
            np.divide(pixels, np.float32(255.0), out=pixels)
            np.subtract(pixels, self.mean_np, out=pixels)
            np.divide(pixels, self.std_np, out=pixels)
            return out
        out.copy_(torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).unsqueeze(0))
        return out.div_(255.0).sub_(self.mean).div_(self.std)

    @torch.inference_mode()
    def initialize(self, image, box):
        """Start tracking ``box`` ([x, y, w, h] pixels) in ``image``; the template is cropped once and kept."""
        image = as_rgb(image)
        box = check_init_box(box, *image.shape[:2])
        crop, _ = crop_resize(image, box, self.cfg.crop.template_factor, self.cfg.crop.template_size)
        self.template = self._normalise(crop)
        self.network.set_template(self.template)
        self.state = box

    @torch.inference_mode()
    def track(self, image):
        """The object's box in ``image``: ``{"box": [x, y, w, h], "score": peak score in [0, 1]}``.

        "score" is the network's unwindowed score-map value at the chosen cell: low values suggest the target is
        occluded or gone (OSTrack itself has no such output; its maintainer suggests thresholding this).
        """
        if self.template is None:
            raise RuntimeError("Tracker.track() called before Tracker.initialize()")
        image = as_rgb(image)
        height, width = image.shape[:2]
        search_size = self.cfg.crop.search_size
        crop, resize_factor = crop_resize(image, self.state, self.search_factor, search_size,
                                          out=self.search_pixels)
        score_map, box_norm, peak = self.network(self._normalise(crop, self.search_input), self.window)
        score = float(score_map.flatten()[int(peak[0])])

        box_crop = (box_norm[0] * search_size / resize_factor).tolist()   # cx, cy, w, h at image scale
        if self.size_update != 1.0:   # damp the size change, keep the predicted centre
            rate = self.size_update
            box_crop[2] = self.state[2] * (1.0 - rate) + box_crop[2] * rate
            box_crop[3] = self.state[3] * (1.0 - rate) + box_crop[3] * rate
        box = map_box_back(box_crop, self.state, resize_factor, search_size)
        self.state = clip_box(box, height, width, margin=10)
        return {"box": list(self.state), "score": score}
