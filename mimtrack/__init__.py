"""mimtrack: lightweight one-stream ViT tracking with MIM-distilled backbones.

One import root holds everything (setup.py maps the repository's top-level folders under it):

- ``mimtrack.evaluation``: numpy-only benchmark readers and metrics that reproduce the official toolkits;
- ``mimtrack.pretrain``: ViT / Hiera backbones and their pre-training (MAE-lite, distillation, MoCo-v3);
- ``mimtrack.tracker``: the OSTrack-style tracker, its training pipeline, inference backends and demo;
- ``mimtrack.experiments``: the YAML recipes.

This folder itself holds the plumbing they share: the ``mimtrack`` command dispatcher, the user-error type,
atomic file writes, the typed YAML config loader, checkpoints and the training-loop machinery.

The everyday API has a short path: ``from mimtrack import load_tracker, build_model``. It is resolved lazily, so
``import mimtrack`` (and ``mimtrack eval``) does not import torch.
"""

__version__ = "0.1.0"

_SHORT_API = {
    "Tracker": "mimtrack.tracker.inference",
    "load_tracker": "mimtrack.tracker.inference",
    "read_image_rgb": "mimtrack.images",
    "build_model": "mimtrack.tracker.model",
    "load_tracker_config": "mimtrack.tracker.config",
}
__all__ = sorted(_SHORT_API)


def __getattr__(name):  # PEP 562: import the tracker (and torch) only when one of these is asked for
    if name in _SHORT_API:
        import importlib

        value = getattr(importlib.import_module(_SHORT_API[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mimtrack' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
