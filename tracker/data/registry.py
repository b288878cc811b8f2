"""The training sources by name, as :mod:`mimtrack.evaluation.datasets` registers its readers: which names a recipe
or ``--data`` may use, their default splits, and :func:`build_source` for a recipe entry."""

import os

from mimtrack.errors import UserError

from .sources import Source, TrainSequence, box_visible

VIDEO_BENCHMARKS = ("lasot", "got10k", "trackingnet")
# Sources whose frames are files, which `mimtrack pack-lmdb` can pack (photo pairs are generated on the fly).
PACKABLE_NAMES = VIDEO_BENCHMARKS + ("coco", "custom")
SOURCE_NAMES = PACKABLE_NAMES + ("photos",)
KNOWN_NAMES = SOURCE_NAMES + tuple(f"{name}-lmdb" for name in PACKABLE_NAMES)
# The split a recipe gets when it names none.
DEFAULT_SPLITS = {"lasot": "train", "got10k": "train_full", "trackingnet": "train", "coco": "train2017", "custom": "",
                  "photos": ""}


def check_source_name(name, origin=None, in_recipe=False):
    """UserError unless ``name`` is a training source (``lasot``, ..., ``photos`` or ``NAME-lmdb``): the one check that
    ``--data`` / the paths file (``origin``), the recipe (``in_recipe``) and :func:`build_source` share."""
    if name not in KNOWN_NAMES:
        known = ", ".join(KNOWN_NAMES)
        if origin:
            raise UserError(f"{origin}: unknown dataset name {name!r} (known: {known})")
        raise UserError(f"unknown training dataset {name!r}{' in the recipe' if in_recipe else ''} (known: {known})")
    return name


def benchmark_source(name, root, split):
    """LaSOT / GOT-10k / TrackingNet training sequences through the evaluation readers.

    Visibility (OSTrack's ``lib/train/dataset/{lasot,got10k}.py: _read_target_visible``): LaSOT not full_occlusion and not out_of_view; GOT-10k absence == 0 and cover > 0
    (both come as ``Sequence.visible``); every dataset also needs w, h > 0.
    """
    from mimtrack.evaluation.datasets import load_dataset

    sequences = []
    for seq in load_dataset(name, root, split):
        if seq.info.get("first_frame_only"):
            raise UserError(f"{name} {split}: {seq.name} has only its first box annotated; a test split cannot train")
        visible = box_visible(seq.ground_truth)
        if seq.visible is not None:
            visible &= seq.visible
        sequences.append(TrainSequence(seq.name, seq.ground_truth, visible, seq.frames))
    return Source(name, sequences)


def is_lmdb_path(path):
    return os.fspath(path).rstrip("/").endswith(".lmdb")


def build_source(name, location, split=""):
    """The source for a recipe entry: ``name`` (lasot, got10k, trackingnet, coco, custom, photos, or NAME-lmdb),
    its location and split. A location that is a file (``X.lmdb``) is read as an LMDB made by ``mimtrack pack-lmdb``."""
    check_source_name(name)
    base = name[:-5] if name.endswith("-lmdb") else name
    split = split or DEFAULT_SPLITS[base]
    location = os.fspath(location)
    if name.endswith("-lmdb") or (base in PACKABLE_NAMES and (is_lmdb_path(location) or os.path.isfile(location))):
        from .lmdb_source import LmdbSource

        return LmdbSource(location, base, split)
    if not os.path.isdir(location):
        raise UserError(f"{location}: {name} folder not found")
    if base in VIDEO_BENCHMARKS:
        return benchmark_source(base, location, split)
    if base == "coco":
        from .coco import CocoSource

        return CocoSource(location, split)
    if base == "photos":
        from .photos import PhotoPairSource

        return PhotoPairSource(location)
    from .custom import custom_source

    return custom_source(location)
