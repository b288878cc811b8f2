"""Confidence intervals and paired comparisons of trackers: a bootstrap over sequences.

The sequences of a benchmark are a sample of the videos a tracker could meet;
the question is how much an overall number would move on another sample of the
same size. Each resample draws as many sequences as the benchmark has, with
replacement, and recomputes every overall number from the drawn sequences
exactly as the protocol aggregates them (``protocol.sequence_sums``: means of
per-sequence numbers for the OPE protocols, sequences dropped by the LaSOT
toolkit's rule stay dropped; frames pooled for GOT-10k). Whole sequences are
resampled, not frames: the frames of one video are strongly correlated (one
drift fails hundreds of them), so frame resampling would give far too narrow
intervals.

- Interval: the percentile bootstrap ((1 - level) / 2 and (1 + level) / 2
  quantiles of the resampled number, numpy's linear interpolation).
- Paired comparison: the same resampled sequences for every tracker, so each
  pair's difference of the headline number (AUC, or AO on GOT-10k) is
  resampled with the pairing kept; its two-sided p-value is
  min(1, 2 (min(#diff <= 0, #diff >= 0) + 1) / (resamples + 1)), the smallest
  level at which the percentile interval excludes 0 (with the +1 that keeps a
  finite number of resamples from claiming p = 0). Identical trackers get a
  difference of exactly 0 in every resample, hence p = 1.

Seeded (``seed``) so that the same inputs give the same intervals.
"""

import numpy as np

from mimtrack.errors import UserError

DEFAULT_RESAMPLES = 10_000


def resample_counts(n_sequences, resamples=DEFAULT_RESAMPLES, seed=0):
    """(resamples, n_sequences) float64: how often each sequence is drawn in each resample."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_sequences, size=(resamples, n_sequences))
    draws += np.arange(resamples)[:, None] * n_sequences
    return np.bincount(draws.ravel(), minlength=resamples * n_sequences).reshape(resamples, n_sequences).astype(
        np.float64)


def resampled_numbers(sums, counts):
    """{key: (resamples,) values}: each overall number recomputed on each resample.

    ``sums``: {key: (numerators (S,), denominators (S,))} as protocol.sequence_sums
    gives; a resample without any denominator gives 0, as the protocols do.
    """
    keys = list(sums)
    # Identical columns (two identical trackers) must give identical results: multiply each once.
    columns, where = [], {}
    index = {}
    for key in keys:
        for part in sums[key]:
            part = np.ascontiguousarray(part, dtype=np.float64)
            where.setdefault(key, []).append(index.setdefault(part.tobytes(), len(index)))
            if len(columns) < len(index):
                columns.append(part)
    products = counts @ np.stack(columns, axis=1)
    result = {}
    for key in keys:
        numerator, denominator = (products[:, i] for i in where[key])
        with np.errstate(invalid="ignore", divide="ignore"):
            result[key] = np.where(denominator > 0, numerator / denominator, 0.0)
    return result


def compare(scores, keys, headline, resamples=DEFAULT_RESAMPLES, seed=0, level=0.95, counts=None):
    """Bootstrap every tracker's overall numbers and every pair's difference of ``headline``.

    scores: {tracker: Scores} on the same sequences. Returns
    ``{"settings": {...}, "intervals": {tracker: {key: (low, high)}},
    "differences": {(a, b): {"difference": a - b, "interval": (low, high), "p_value": p}}}``
    (fractions; pairs in the order of ``scores``). ``counts`` replaces the random draws (tests).
    """
    if not 0 < level < 1:
        raise UserError(f"--ci-level: {level} is not between 0 and 1")
    trackers = list(scores)
    names = list(next(iter(scores.values())).sequence_states)
    if counts is None:
        if resamples < 100:
            raise UserError(f"--ci-resamples: {resamples} is too few (at least 100)")
        counts = resample_counts(len(names), resamples, seed)
    sums = {}
    for tracker, s in scores.items():
        missing = [n for n in names if n not in s.sequence_states]
        if missing or len(s.sequence_states) != len(names):
            raise UserError(f"--ci: tracker {tracker} was scored on other sequences than {trackers[0]}")
        states = {n: s.sequence_states[n] for n in names}
        for key, parts in s.protocol.sequence_sums(states).items():
            if key in keys:
                sums[(tracker, key)] = parts
    resampled = resampled_numbers(sums, counts)
    quantiles = 100 * np.array([(1 - level) / 2, (1 + level) / 2])

    def interval(values):
        low, high = np.percentile(values, quantiles)
        return float(low), float(high)

    intervals = {t: {k: interval(resampled[(t, k)]) for k in keys if (t, k) in resampled} for t in trackers}
    differences = {}
    for i, a in enumerate(trackers):
        for b in trackers[i + 1:]:
            diff = resampled[(a, headline)] - resampled[(b, headline)]
            tail = min(np.count_nonzero(diff <= 0), np.count_nonzero(diff >= 0))
            differences[(a, b)] = {
                "difference": scores[a].overall[headline] - scores[b].overall[headline],
                "interval": interval(diff),
                "p_value": min(1.0, 2 * (tail + 1) / (len(diff) + 1)),
            }
    settings = {"unit": "sequence", "sequences": len(names), "resamples": len(counts), "seed": seed,
                "level": level, "method": "percentile bootstrap", "headline": headline}
    return {"settings": settings, "intervals": intervals, "differences": differences}
