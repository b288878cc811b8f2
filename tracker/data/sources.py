"""Training sequence sources: the sequences of one dataset, their boxes, visibility and frame bytes.

A source exposes ``len(source)`` sequences; ``source.sequence(i)`` is a :class:`TrainSequence` whose ``frames``
are keys that ``source.read(key)`` turns into the encoded image bytes (file paths for folders, record keys for
LMDB). Decoding happens in one place (:func:`decode_frame`), so a folder and its LMDB give identical pixels.

Video benchmarks are read with :mod:`mimtrack.evaluation.datasets`: training and testing share one dataset code.
"""

import dataclasses
import os

import numpy as np

from mimtrack.errors import UserError
from mimtrack.images import decode_rgb

VIDEO_BENCHMARKS = ("lasot", "got10k", "trackingnet")
# Sources whose frames are files, which `mimtrack pack-lmdb` can pack (photo pairs are generated on the fly).
PACKABLE_NAMES = VIDEO_BENCHMARKS + ("coco", "custom")
SOURCE_NAMES = PACKABLE_NAMES + ("photos",)
# The split a recipe gets when it names none.
DEFAULT_SPLITS = {"lasot": "train", "got10k": "train_full", "trackingnet": "train", "coco": "train2017", "custom": "",
                  "photos": ""}


class CorruptFrame(Exception):
    """A frame that is missing or cannot be decoded: the sample is redrawn and the frame counted, never fatal."""


@dataclasses.dataclass(eq=False)
class TrainSequence:
    """One target track: ``boxes`` (N, 4) float64 x, y, w, h in pixels, ``visible`` (N,) bool, N frame keys."""

    name: str
    boxes: np.ndarray
    visible: np.ndarray
    frames: object


def box_visible(boxes):
    """w > 0 and h > 0 (False for NaN rows): the visibility every dataset shares."""
    boxes = np.asarray(boxes, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return (boxes[:, 2] > 0) & (boxes[:, 3] > 0)


def decode_frame(data, key):
    """Encoded image bytes -> RGB uint8 (frames are BGR for OpenCV; the networks see RGB, as OSTrack's ``opencv_loader``)."""
    if data is None:
        raise CorruptFrame(f"{key}: missing")
    image = decode_rgb(data)
    if image is None:
        raise CorruptFrame(f"{key}: cannot decode")
    return image


class Source:
    """Base: sequences held in a list, frames read from files."""

    is_video = True

    def __init__(self, name, sequences):
        self.name = name
        self.sequences = sequences

    def __len__(self):
        return len(self.sequences)

    def sequence(self, index):
        return self.sequences[index]

    def visible_counts(self):
        """(len,) number of visible frames of every sequence (the sampler's eligibility test)."""
        return np.array([int(self.sequence(i).visible.sum()) for i in range(len(self))], dtype=np.int64)

    def frame(self, key):
        """Frame ``key`` as RGB uint8; CorruptFrame when it is missing or cannot be decoded."""
        return decode_frame(self.read(key), key)

    def search_view(self, frame, box, rng):
        """The search frame and box of a one-frame (image) pair: the template's frame itself, as OSTrack does
        for COCO. Sources of still photos override it with a second, augmented view."""
        return frame, box

    def read(self, key):
        """The encoded bytes of a frame, or None when the file is missing or unreadable."""
        try:
            with open(key, "rb") as f:
                return f.read()
        except OSError:
            return None

    def __repr__(self):
        return f"{type(self).__name__}({self.name}, {len(self)} sequences)"


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
    base = name[:-5] if name.endswith("-lmdb") else name
    if base not in (PACKABLE_NAMES if name.endswith("-lmdb") else SOURCE_NAMES):
        known = ", ".join(SOURCE_NAMES + tuple(f"{n}-lmdb" for n in PACKABLE_NAMES))
        raise UserError(f"unknown training dataset {name!r} (known: {known})")
    split = split or DEFAULT_SPLITS[base]
    location = os.fspath(location)
    if name.endswith("-lmdb") or (base in PACKABLE_NAMES and (is_lmdb_path(location) or os.path.isfile(location))):
        from .lmdb_pack import LmdbSource

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
