"""The OSTrack tracker network: one-stream ViT backbone with candidate elimination + CENTER head."""

from mimtrack.tracker.model.ostrack import OSTrack, build_model

__all__ = ["OSTrack", "build_model"]
