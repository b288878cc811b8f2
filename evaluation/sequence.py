"""The one sequence type every benchmark reader yields."""

import dataclasses
import os
from collections.abc import Sequence as _AbcSequence

import numpy as np


class FrameList(_AbcSequence):
    """Image paths of a sequence, listed from disk only when first used.

    Evaluation never touches the frames, so a root holding only annotation
    files works; tracking lists them on first access. ``lister`` is a
    zero-argument function returning the ordered list of paths.
    """

    def __init__(self, lister):
        self._lister = lister
        self._paths = None

    def _load(self):
        if self._paths is None:
            self._paths = list(self._lister())
        return self._paths

    def __getitem__(self, index):
        return self._load()[index]

    def __len__(self):
        return len(self._load())

    def __repr__(self):
        state = f"{len(self._paths)} frames" if self._paths is not None else "not listed yet"
        return f"FrameList({state})"

    @classmethod
    def from_pattern(cls, folder, pattern, start, stop):
        """Frames ``folder/pattern % k`` for k in [start, stop] (inclusive), without listing the folder."""
        return cls(lambda: [os.path.join(folder, pattern % k) for k in range(start, stop + 1)])


@dataclasses.dataclass(eq=False)
class Sequence:
    """One annotated target in one video.

    ground_truth: (N, 4) float64 boxes x, y, w, h in pixels (1 row per frame;
        NaN rows where the annotation marks the target as absent, e.g. UAV123).
    frames: lazily listed image paths (N of them when the frames are on disk).
    visible: (N,) bool, or None when the dataset has no visibility labels.
    language: the natural-language description (LaSOT nlp.txt, TNL2K language.txt).
    attributes: names of the sequence-level attributes that apply (e.g. LaSOT 'FOC').
    labels: raw per-frame label arrays by name (full_occlusion, out_of_view,
        absence, cover, cut_by_image, absent).
    info: per-sequence facts (e.g. resolution (W, H), object_class, fps).
    """

    name: str
    ground_truth: np.ndarray
    frames: FrameList
    dataset: str = ""
    visible: np.ndarray | None = None
    language: str | None = None
    attributes: tuple = ()
    labels: dict = dataclasses.field(default_factory=dict)
    info: dict = dataclasses.field(default_factory=dict)

    def __len__(self):
        return len(self.ground_truth)

    def __repr__(self):
        return f"Sequence({self.dataset}:{self.name}, {len(self)} frames)"
