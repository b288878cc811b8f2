"""Training sequence sources, the base: the sequences of one dataset, their boxes, visibility and frame bytes.
Which sources exist and how one is built from a recipe entry: :mod:`.registry`.

A source exposes ``len(source)`` sequences; ``source.sequence(i)`` is a :class:`TrainSequence` whose ``frames``
are keys that ``source.read(key)`` turns into the encoded image bytes (file paths for folders, record keys for
LMDB). Decoding happens in one place (:func:`decode_frame`), so a folder and its LMDB give identical pixels.

Video benchmarks are read with :mod:`mimtrack.evaluation.datasets`: training and testing share one dataset code.
"""

import dataclasses

import numpy as np

from mimtrack.images import decode_rgb


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
