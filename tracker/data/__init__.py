"""Training data: sequence sources (LaSOT, GOT-10k, TrackingNet, COCO, custom folders, LMDB), OSTrack's pair
sampling and processing, the DataLoader, dataset locations and a synthetic dataset writer.

    locations = resolve_locations(["lasot=/data/lasot"], paths_file=None)
    loader = build_train_loader(cfg, locations, epoch=0, rank=0, world_size=1)
"""

from .loader import build_train_loader
from .locations import location_of, resolve_locations
from .registry import build_source
from .sources import CorruptFrame, TrainSequence

__all__ = ["build_train_loader", "resolve_locations", "location_of", "build_source", "TrainSequence",
           "CorruptFrame"]
