"""OSTrack's causal pair sampling (``lib/train/data/sampler.py: TrackingSampler``): which sequence and which template / search frames.

Per sample: a source with probability proportional to its ratio, a uniformly random sequence of it, and for
videos a template and a later search frame. All randomness comes from the numpy Generator passed in, so a
sample depends only on how that Generator was seeded.
"""

import math

import numpy as np

from mimtrack.errors import UserError

GAP_GROWTH = 5   # frames added to the search window while it holds no visible frame


class PairSampler:
    """Draws ``(source index, sequence, template frame, search frame)``.

    A video sequence qualifies when it has more than 2 * (1 template + 1 search) visible frames and at least
    ``min_visible_frames`` of them; OSTrack redraws until it gets one, which is the same as drawing uniformly
    among the qualifying sequences, done here directly. Image sources (COCO) give one-frame sequences whose
    visibility is not checked: template and search are the same frame.
    """

    def __init__(self, sources, ratios, max_gap=200, min_visible_frames=20):
        if len(sources) != len(ratios) or not sources:
            raise ValueError("one ratio per source, at least one source")
        ratios = np.asarray(ratios, dtype=np.float64)
        if (ratios < 0).any() or ratios.sum() <= 0:
            raise UserError(f"dataset ratios {ratios.tolist()}: must be >= 0 with a positive sum")
        self.sources = sources
        self.probabilities = ratios / ratios.sum()
        self.max_gap = int(max_gap)
        self.eligible = []
        for source in sources:
            if source.is_video:
                counts = source.visible_counts()
                keep = np.flatnonzero((counts > 2 * (1 + 1)) & (counts >= min_visible_frames))
            else:
                keep = np.arange(len(source))
            if not len(keep):
                raise UserError(f"{source.name}: no sequence has enough visible frames to train on "
                                f"(> 4 and >= data.min_visible_frames = {min_visible_frames})")
            self.eligible.append(keep)

    def sample(self, rng):
        source_index = int(rng.choice(len(self.sources), p=self.probabilities))
        source = self.sources[source_index]
        keep = self.eligible[source_index]
        sequence = source.sequence(int(keep[rng.integers(len(keep))]))
        if not source.is_video:
            return source_index, sequence, 0, 0
        template, search = causal_pair(sequence.visible, self.max_gap, rng)
        return source_index, sequence, template, search


def causal_pair(visible, max_gap, rng):
    """Template: a random visible frame; search: a random visible frame in (template, template + gap], with
    gap = max_gap, grown by 5 frames at a time until the window holds a visible frame.

    Unlike OSTrack (which can loop forever there), the template is never the last visible frame, so a
    later visible frame always exists.
    """
    visible_ids = np.flatnonzero(visible)
    template = int(visible_ids[rng.integers(len(visible_ids) - 1)])
    later = visible_ids[visible_ids > template]
    gap = max_gap
    if later[0] - template > gap:
        gap += GAP_GROWTH * math.ceil((later[0] - template - gap) / GAP_GROWTH)
    window = later[later <= template + gap]
    return template, int(window[rng.integers(len(window))])
