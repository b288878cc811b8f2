"""Single-object tracking: OSTrack's test-time loop, on any device.

    tracker = load_tracker("vit_tiny_256_ce", "tracker.pth", device="cpu")
    tracker.initialize(first_frame_rgb, [x, y, w, h])
    result = tracker.track(next_frame_rgb)        # {"box": [x, y, w, h], "score": 0.93}

Pre/post-processing is OSTrack's, step for step, so its checkpoints give its numbers: the template is cropped once
(no template update), the search region is cropped around the previous box, the score map is multiplied by a Hann
window and the box is decoded at the windowed peak, mapped back to the image and clipped with a 10 px margin.
"""

import math
import os
import pathlib
import sys

import cv2
import numpy as np
import torch

from mimtrack.errors import UserError
from tracker.config import load_tracker_config
from tracker.geometry import clip_box, crop_square, hann2d, map_box_back

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# The bundled demo tracker: package weights and the recipe they were trained with.
DEMO_WEIGHTS = pathlib.Path(__file__).resolve().parent / "weights" / "demo.pth"
DEMO_RECIPE = "vit_tiny_256_ce"
NO_DEMO_WEIGHTS = "no bundled demo weights in this version: pass --config C --checkpoint W"


def read_image_rgb(path):
    """Read an image file as an RGB uint8 array (frames are BGR on disk for OpenCV; the networks see RGB)."""
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: cannot read the image (missing, unreadable or not an image format OpenCV decodes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
    """Tracks one object; ``model`` is an OSTrack-style network (``tracker.model.build_model``)."""

    def __init__(self, model, cfg, device="cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)
        feat_size = cfg.crop.search_size // cfg.model.backbone.patch_size
        self.window = hann2d(feat_size).to(self.device) if cfg.inference.hann_window else None
        self.template = None
        self.state = None   # the last box [x, y, w, h]; the next search region is centred on it

    def _normalise(self, crop):
        """uint8 HxWx3 crop -> ImageNet-normalised 1x3xHxW float32 on the device (OSTrack's order of operations)."""
        pixels = torch.from_numpy(np.ascontiguousarray(crop)).to(self.device)
        pixels = pixels.float().permute(2, 0, 1).unsqueeze(0)
        return (pixels / 255.0 - self.mean) / self.std

    @torch.inference_mode()
    def initialize(self, image, box):
        """Start tracking ``box`` ([x, y, w, h] pixels) in ``image``; the template is cropped once and kept."""
        image = as_rgb(image)
        box = check_init_box(box, *image.shape[:2])
        crop, _, _ = crop_square(image, box, self.cfg.crop.template_factor, self.cfg.crop.template_size)
        self.template = self._normalise(crop)
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
        crop, resize_factor, _ = crop_square(image, self.state, self.cfg.crop.search_factor, search_size)
        out = self.model(self.template, self._normalise(crop))

        score_map = out["score_map"]
        response = score_map * self.window if self.window is not None else score_map
        box_norm = self.model.box_head.decode(response, out["size_map"], out["offset_map"])[0]
        peak = int(response.flatten(1)[0].argmax())
        score = float(score_map.flatten(1)[0, peak])

        box_crop = (box_norm * search_size / resize_factor).tolist()   # cx, cy, w, h at image scale
        box = map_box_back(box_crop, self.state, resize_factor, search_size)
        self.state = clip_box(box, height, width, margin=10)
        return {"box": list(self.state), "score": score}


def resolve_device(name):
    """A torch device from a user string; UserError for an unknown or unavailable one."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {name!r}: not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def load_tracker(config=None, checkpoint=None, device=None, overrides=None):
    """Build a :class:`Tracker` from a recipe (name or path) and a tracker checkpoint.

    Both None: the bundled demo tracker. A config without a checkpoint: untrained weights (a warning says so).
    ``device`` None uses the recipe's ``inference.device``; ``overrides`` are ``--set key=value`` strings.
    """
    from tracker.checkpoints import load_tracker_weights
    from tracker.model import build_model

    if config is None and checkpoint is None:
        if not DEMO_WEIGHTS.is_file():
            raise UserError(NO_DEMO_WEIGHTS)
        config, checkpoint = DEMO_RECIPE, DEMO_WEIGHTS
    if config is None:
        raise UserError(f"--checkpoint {checkpoint}: also pass --config, the recipe the checkpoint was trained with")
    cfg = load_tracker_config(config, overrides)
    device = resolve_device(device or cfg.inference.device)
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise UserError(f"--checkpoint {checkpoint}: file not found")
    model = build_model(cfg)
    if checkpoint is None:
        print(f"warning: no checkpoint given: tracking with the untrained weights of {cfg.name}", file=sys.stderr)
    else:
        load_tracker_weights(model, checkpoint)
    return Tracker(model, cfg, device)
