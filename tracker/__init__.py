"""The one-stream ViT tracker (OSTrack-style): model, inference, training."""

from mimtrack.images import read_image_rgb
from mimtrack.tracker.inference import load_tracker
from mimtrack.tracker.tracking import Tracker
from mimtrack.tracker.model import build_model

__all__ = ["Tracker", "build_model", "load_tracker", "read_image_rgb"]
