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
from mimtrack.images import IMAGENET_MEAN, IMAGENET_STD
from mimtrack.tracker.config import load_tracker_config
from mimtrack.tracker.geometry import clip_box, crop_resize, hann2d, map_box_back


# The bundled demo tracker: package weights and the recipe they were trained with.
DEMO_WEIGHTS = pathlib.Path(__file__).resolve().parent / "weights" / "demo.pth"
DEMO_RECIPE = "photos_cpu"   # experiments/tracking/photos_cpu.yaml: the recipe demo.pth was trained with
NO_DEMO_WEIGHTS = "no bundled demo weights in this version: pass --config C --checkpoint W"


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


def resolve_device(name):
    """A torch device from a user string; UserError for an unknown or unavailable one."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"--device {name!r}: not a device (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine")
    return device


def load_tracker(config=None, checkpoint=None, device=None, overrides=None, backend="torch", threads=None,
                 precision="fp32", compile=False, cache_dir=None, calibration=None):
    """Build a :class:`Tracker` from a recipe (name or path) and a tracker checkpoint.

    Both None: the bundled demo tracker. A config without a checkpoint: untrained weights (a warning says so).
    ``device`` None uses the recipe's ``inference.device``; ``overrides`` are ``--set key=value`` strings.
    ``backend``: ``torch`` (the reference), ``torch-int8`` (dynamic int8 Linear layers), ``onnxruntime`` or
    ``onnxruntime-int8`` (the graph is exported on first use and cached in ``cache_dir``, see
    :func:`mimtrack.tracker.export.cached_onnx`), ``openvino`` (the same graph compiled by OpenVINO, compiled model cached
    too) or ``openvino-int8`` (that graph with static int8 calibrated on the frames under ``calibration``:
    :func:`mimtrack.tracker.export.cached_openvino_int8`). ``threads``: intra-op threads (None: torch's default, ONNX
    Runtime and OpenVINO the physical cores). ``precision``: fp16/bf16 autocast on the torch backends, bf16
    inference precision on the OpenVINO ones (for int8: of the layers left unquantised); ``compile``: torch only.
    """
    from mimtrack.tracker.backends import (OnnxNetwork, OpenVinoNetwork, TorchNetwork, check_backend, check_precision,
                                  quantize_torch_int8)
    from mimtrack.tracker.checkpoints import load_tracker_weights
    from mimtrack.tracker.model import build_model

    if config is None and checkpoint is None:
        if not DEMO_WEIGHTS.is_file():
            raise UserError(NO_DEMO_WEIGHTS)
        config, checkpoint = DEMO_RECIPE, DEMO_WEIGHTS
    if config is None:
        raise UserError(f"--checkpoint {checkpoint}: also pass --config, the recipe the checkpoint was trained with")
    cfg = load_tracker_config(config, overrides)
    device = resolve_device(device or cfg.inference.device)
    check_backend(backend, device)
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: must be >= 1")
    check_precision(backend, precision)
    if compile and not backend.startswith("torch"):
        raise UserError(f"--backend {backend}: --compile applies to the torch backend only")
    if calibration is not None and backend != "openvino-int8":
        raise UserError(f"--calibration: applies to --backend openvino-int8 only (got {backend})")
    if checkpoint is not None and not os.path.isfile(checkpoint):
        raise UserError(f"--checkpoint {checkpoint}: file not found")
    model = build_model(cfg)
    if checkpoint is None:
        print(f"warning: no checkpoint given: tracking with the untrained weights of {cfg.name}", file=sys.stderr)
    else:
        load_tracker_weights(model, checkpoint)
    model.eval()
    if threads is not None and backend.startswith("torch"):
        torch.set_num_threads(threads)
    if backend == "torch":
        network = TorchNetwork(model, device, precision, compile)
    elif backend == "torch-int8":
        network = TorchNetwork(quantize_torch_int8(model), device, precision, compile)
    else:
        from mimtrack.fileio import cache_dir as default_cache_dir
        from mimtrack.tracker.export import cached_onnx, cached_openvino_int8

        if backend == "openvino-int8":
            cached = lambda refresh: cached_openvino_int8(model, cfg, calibration, cache_dir, refresh)
        else:
            cached = lambda refresh: cached_onnx(model, cfg, int8=backend == "onnxruntime-int8", cache_dir=cache_dir,
                                                 refresh=refresh)
        if backend.startswith("openvino"):
            compiled_cache = pathlib.Path(cache_dir) / "openvino-compiled" if cache_dir else \
                default_cache_dir("onnx", "openvino-compiled")
            open_network = lambda path: OpenVinoNetwork(path, threads, precision, compiled_cache)
        else:
            open_network = lambda path: OnnxNetwork(path, device, threads)
        path = cached(False)
        try:
            network = open_network(path)
        except UserError:
            raise
        except Exception as exc:   # a damaged cached graph (a disk error, an edit): it would fail on every run
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            print(f"warning: {path}: the cached graph does not load ({reason}); deleted, exporting it again",
                  file=sys.stderr)
            network = open_network(cached(True))
    return Tracker(model, cfg, device, network)
