"""``load_tracker``: a :class:`~mimtrack.tracker.tracking.Tracker` from a recipe and weights, on any backend.

    tracker = load_tracker("vit_tiny_256_ce", "tracker.pth", device="cpu")
    tracker.initialize(first_frame_rgb, [x, y, w, h])
    result = tracker.track(next_frame_rgb)        # {"box": [x, y, w, h], "score": 0.93}

The test-time loop itself (OSTrack's, step for step) is :mod:`mimtrack.tracker.tracking`; the networks it runs are
:mod:`mimtrack.tracker.backends` (exported graphs: :mod:`mimtrack.tracker.export`).
"""

import pathlib
import sys

import torch

from mimtrack.errors import UserError
from mimtrack.tracker.tracking import Tracker


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
    from mimtrack.tracker.checkpoints import load_network, resolve_network

    cfg, checkpoint = resolve_network(config, checkpoint, overrides)
    device = resolve_device(device or cfg.inference.device)
    check_backend(backend, device)
    if threads is not None and threads < 1:
        raise UserError(f"--threads {threads}: must be >= 1")
    check_precision(backend, precision)
    if compile and not backend.startswith("torch"):
        raise UserError(f"--backend {backend}: --compile applies to the torch backend only")
    if calibration is not None and backend != "openvino-int8":
        raise UserError(f"--calibration: applies to --backend openvino-int8 only (got {backend})")
    model = load_network(cfg, checkpoint)
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
