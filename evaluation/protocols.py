"""Scoring protocols: each reproduces one reference toolkit rule for rule.

``get_protocol(name).evaluate(sequences, results) -> Scores`` where ``results``
maps a sequence name to a list of runs, each an (M, 4) box array as read from
the result file(s) (see evaluation.results). Protocols:

- 'official': LaSOT-matlab toolkit (also used for LaSOT-ext, TNL2K, OTB, NfS, UAV).
- 'pytracking': pytracking / OSTrack analysis (extract_results.py).
- 'got10k': got10k toolkit 0.1.3 (ExperimentOTB/UAV123/NfS, LaSOT from HEAD,
  and ExperimentGOT10k 'val' for GOT-10k: pooled AO / SR).
- 'trackingnet': TrackingNet devkit metrics.py.

Several runs of one sequence: OPE protocols average the per-sequence curves
over runs (pytracking's merge_results); GOT-10k pools the frames of all runs.
``times`` ({name: per-frame seconds}, evaluation.results.load_times) gives the
'fps' entry of GOT-10k scores; the OPE protocols report no speed.
Per-attribute scores: ``scores.subset(names)`` re-aggregates the kept
per-sequence curves exactly as the protocol aggregates the full set.
Confidence intervals: ``protocol.sequence_sums(states)`` writes every overall
number as (sum over sequences of a numerator) / (sum of a denominator), the form
evaluation.bootstrap resamples.
"""

import dataclasses

import numpy as np

from mimtrack.errors import UserError

from . import metrics

# The keys of Scores.overall / per_sequence: OPE protocols, and got10k on GOT-10k (+ 'fps' with times).
OPE_KEYS = ("auc", "precision", "norm_precision", "op50", "op75")
GOT10K_KEYS = ("ao", "sr50", "sr75")
# got10k removes NaN ground-truth rows in ExperimentUAV123 and ExperimentLaSOT; the
# base ExperimentOTB (OTB, NfS) does not. LaSOT-ext / TNL2K / TrackingNet follow LaSOT.
_GOT10K_NAN_FILTERED = {"uav123", "uav20l", "lasot", "lasot_ext", "tnl2k", "trackingnet"}
_UAV = {"uav123", "uav20l"}  # pytracking's dataset 'uav'
_GROUP_FRAMES = 30_000  # OPE protocols score runs in groups of about this many frames (cache-sized)


@dataclasses.dataclass
class Scores:
    """Scores of one tracker on a set of sequences (all values fractions in [0, 1])."""

    overall: dict
    per_sequence: dict
    curves: dict
    thresholds: dict
    protocol: "Protocol" = dataclasses.field(repr=False)
    sequence_states: dict = dataclasses.field(repr=False)  # what the protocol aggregates, per sequence

    def subset(self, names):
        """Scores of the named sequences only, aggregated as the protocol aggregates (per-attribute tables)."""
        unknown = [n for n in names if n not in self.sequence_states]
        if unknown:
            raise UserError(f"subset: sequences not evaluated: {', '.join(unknown[:5])}")
        return self.protocol.summarise({n: self.sequence_states[n] for n in names})


def get_protocol(name="official"):
    """The protocol object for a name: official (default), pytracking, got10k, trackingnet."""
    try:
        return _PROTOCOLS[name]()
    except KeyError:
        raise UserError(f"--protocol: unknown protocol {name!r} (choose from {', '.join(_PROTOCOLS)})") from None


def _describe(run, sequence, index):
    """How error messages name a results file (evaluation.results attaches the path to each run)."""
    path = getattr(run, "path", None)
    return str(path) if path else f"results of sequence {sequence.name} (run {index + 1})"


def _runs_of(sequence, results):
    runs = results.get(sequence.name)
    if not runs:
        raise UserError(f"no results for sequence {sequence.name}")
    return runs


class Protocol:
    name = ""

    def evaluate(self, sequences, results, times=None):
        """Score one tracker: ``results`` {sequence name: [run (M, 4), ...]}, ``times`` {name: seconds array}."""
        raise NotImplementedError

    def summarise(self, sequence_states):
        """Aggregate per-sequence states into :class:`Scores`."""
        raise NotImplementedError

    def sequence_sums(self, sequence_states):
        """{key: (numerators (S,), denominators (S,))} with overall[key] == sum(num) / sum(den) (0 if no den)."""
        raise NotImplementedError


def _column_major(tables):
    """The rows of (M, 4) tables, one after the other, as an (N, 4) array stored column by column (F order).

    The metrics read whole columns (x, y, w, h) and pairs of them: contiguous columns make every step a flat
    loop (a C-order (N, 2) slice costs 8x more: numpy then loops over rows of 2).
    """
    columns = np.empty((4, sum(len(t) for t in tables)))
    np.concatenate([t.T for t in tables], axis=1, out=columns)
    return columns.T


class _Frames:
    """Every run of every sequence concatenated: one row per frame, one segment per run.

    ``pred`` rows beyond ``file_rows`` of their segment are padding added by the protocol.
    """

    def __init__(self, sequences, preds, file_rows):
        self.sequences = sequences  # the sequence of each segment
        self.lengths = np.array([len(p) for p in preds], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.file_rows = np.asarray(file_rows, dtype=np.int64)
        self.pred = _column_major(preds)
        self.gt = _column_major([s.ground_truth for s in sequences])
        self.ids = np.repeat(np.arange(len(preds)), self.lengths)

    def per_frame(self, per_segment):
        """Spread one value per segment over its frames."""
        return np.repeat(np.asarray(per_segment), self.lengths)

    def padded(self):
        """True for rows the protocol added after the end of a short results file."""
        position = np.arange(len(self.ids)) - self.per_frame(self.starts)
        return position >= self.per_frame(self.file_rows)

    def visible(self, applies=lambda sequence: True):
        """Visibility of every frame (None when no sequence has visibility that ``applies``)."""
        if all(s.visible is None or not applies(s) for s in self.sequences):
            return None
        return np.concatenate(
            [s.visible if s.visible is not None and applies(s) else np.ones(len(s), bool) for s in self.sequences]
        )

    def repeat_previous(self, broken):
        """Sequential repair "row i := row i-1" for flagged rows, never across a segment start."""
        broken[self.starts] = False
        if broken.any():
            self.pred = metrics.forward_fill(self.pred, broken)


class _OPEProtocol(Protocol):
    """One-pass evaluation: per-sequence success / precision / normalised precision curves."""

    thresholds = {
        "success": metrics.IOU_THRESHOLDS,
        "precision": metrics.PIXEL_THRESHOLDS,
        "norm_precision": metrics.NORM_THRESHOLDS,
    }
    compare = {"success": ">", "precision": "<=", "norm_precision": "<="}
    curve_dtype = np.float64
    # The curve each overall number is read from (it decides which sequences the average counts).
    source_curves = {"auc": "success", "precision": "precision", "norm_precision": "norm_precision",
                     "op50": "success", "op75": "success"}

    def align(self, sequence, run, source):
        """The run's rows matched to the GT rows (the protocol's length rule)."""
        raise NotImplementedError

    def repair(self, frames):
        """Fix invalid predicted boxes in place (frames 2..N), as the reference does."""

    def frame_metrics(self, frames):
        """({curve name: per-frame values}, counted-frame mask or None, per-segment denominators)."""
        raise NotImplementedError

    def evaluate(self, sequences, results, times=None):
        sequences = list(sequences)
        if not sequences:
            raise UserError("no sequences to evaluate")
        segment_sequences, preds, file_rows = [], [], []
        for sequence in sequences:
            for index, run in enumerate(_runs_of(sequence, results)):
                source = lambda: _describe(run, sequence, index)  # noqa: E731 - formatted only on error
                preds.append(self.align(sequence, np.asarray(run, dtype=np.float64), source))
                file_rows.append(min(len(run), len(sequence)))
                segment_sequences.append(sequence)
        # Groups of whole runs, so that the per-frame arrays stay in cache (every step is per run).
        run_curves = {key: [] for key in self.thresholds}
        first = 0
        while first < len(preds):
            last, frames_in_group = first, 0
            while last < len(preds) and (last == first or frames_in_group + len(preds[last]) <= _GROUP_FRAMES):
                frames_in_group += len(preds[last])
                last += 1
            for key, curves in self.run_curves(segment_sequences[first:last], preds[first:last],
                                               file_rows[first:last]).items():
                run_curves[key].append(curves)
            first = last
        run_curves = {key: np.concatenate(curves) for key, curves in run_curves.items()}
        rows = {}
        for row, sequence in enumerate(segment_sequences):
            rows.setdefault(sequence.name, []).append(row)
        states = {
            name: {
                key: run_curves[key][r[0]] if len(r) == 1 else run_curves[key][r].mean(axis=0, dtype=self.curve_dtype)
                for key in self.thresholds
            }
            for name, r in rows.items()
        }
        return self.summarise(states)

    def run_curves(self, segment_sequences, preds, file_rows):
        """{curve name: (runs, K) curves} of runs aligned to their sequences, in one vectorised pass."""
        frames = _Frames(segment_sequences, preds, file_rows)
        self.repair(frames)
        frames.pred[frames.starts] = frames.gt[frames.starts]  # row 1 := GT row 1 in every toolkit
        values, counted, denominators = self.frame_metrics(frames)
        ids = frames.ids if counted is None else frames.ids[counted]
        denominators = np.asarray(denominators, dtype=self.curve_dtype)[:, None]
        run_curves = {}
        for key, thresholds in self.thresholds.items():
            v = values[key] if counted is None else values[key][counted]
            counts = metrics.threshold_counts(v, thresholds, self.compare[key], ids, len(preds))
            with np.errstate(invalid="ignore", divide="ignore"):
                curves = counts.astype(self.curve_dtype) / denominators
            run_curves[key] = np.nan_to_num(curves, nan=0.0)  # a sequence without any scored frame
        return run_curves

    def average(self, curves):
        """Mean over sequences of (S, K) curves."""
        return curves.mean(axis=0, dtype=self.curve_dtype)

    def counted(self, curves):
        """Which of the (S, K) curves :meth:`average` counts (all)."""
        return np.ones(len(curves), dtype=bool)

    def sequence_sums(self, sequence_states):
        # Every overall number is linear in the averaged curve: a mean of per-sequence numbers.
        stacked = {key: np.stack([state[key] for state in sequence_states.values()]) for key in self.thresholds}
        sums = {}
        for key, values in self.score(stacked).items():
            counted = self.counted(stacked[self.source_curves[key]]).astype(np.float64)
            sums[key] = (np.asarray(values, dtype=np.float64) * counted, counted)
        return sums

    def score(self, curves):
        """Headline numbers from curves (K,) or per-sequence curves (S, K): {key: value or (S,) array}."""
        success = curves["success"]
        return {
            "auc": metrics.curve_auc(success),
            "precision": curves["precision"][..., 20],
            "norm_precision": curves["norm_precision"][..., 20],
            "op50": success[..., 10],
            "op75": success[..., 15],
        }

    def summarise(self, sequence_states):
        if not sequence_states:
            raise UserError("no sequences to evaluate")
        names = list(sequence_states)
        stacked = {key: np.stack([sequence_states[n][key] for n in names]) for key in self.thresholds}
        curves = {key: self.average(stacked[key]) for key in self.thresholds}
        per_key = {key: np.asarray(v, dtype=np.float64).tolist() for key, v in self.score(stacked).items()}
        return Scores(
            overall={key: float(v) for key, v in self.score(curves).items()},
            per_sequence={name: {key: per_key[key][i] for key in per_key} for i, name in enumerate(names)},
            curves=curves,
            thresholds=dict(self.thresholds),
            protocol=self,
            sequence_states=sequence_states,
        )


def _length_error(source, run, sequence, why=""):
    return UserError(f"{source()}: {len(run)} rows but sequence {sequence.name} has {len(sequence)} frames{why}")


class OfficialProtocol(_OPEProtocol):
    """LaSOT-matlab toolkit (calc_seq_err_robust.m, eval_tracker.m, plot_draw_save.m)."""

    name = "official"

    def align(self, sequence, run, source):
        if len(run) < len(sequence):
            raise _length_error(source, run, sequence)
        return run[: len(sequence)]  # longer results are truncated (monkey-17)

    def repair(self, frames):
        # Frames 2..N: NaN / w <= 0 / h <= 0 rows take the previous row, unless the GT row has NaN.
        pred = frames.pred
        with np.errstate(invalid="ignore"):
            broken = metrics.any_nan(pred) | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)
        frames.repeat_previous(broken & ~metrics.any_nan(frames.gt))

    def frame_metrics(self, frames):
        pred, gt = frames.pred, frames.gt
        # GT valid iff all four values > 0 (x = 0 or y = 0 too!). A NaN GT row (UAV
        # absent target) compares False, so it is invalid like MATLAB's `rect_anno > 0`:
        # IoU -1 (fails) and centre errors -1 (pass every precision threshold - the quirk).
        valid = metrics.all_positive(gt)
        error, norm_error = metrics.center_errors(pred, gt)
        values = {
            "success": np.where(valid, metrics.box_iou(pred, gt, pixel=True), -1.0),
            "precision": np.where(valid, error, -1.0),
            "norm_precision": np.where(valid, norm_error, -1.0),
        }
        # Absent frames are deleted, but the denominator stays the full length (+ eps as in MATLAB).
        return values, frames.visible(), frames.lengths + np.finfo(float).eps

    def counted(self, curves):
        # plot_draw_save.m drops sequences whose whole curve sums to <= eps before averaging.
        return curves.sum(axis=1) > np.finfo(float).eps

    def average(self, curves):
        kept = curves[self.counted(curves)]
        if len(kept) == 0:
            return np.zeros(curves.shape[1])  # MATLAB would give NaN; a tracker that never scores gets 0
        return kept.mean(axis=0)


class PytrackingProtocol(_OPEProtocol):
    """pytracking / OSTrack analysis (extract_results.py, plot_results.py), exclude_invalid_frames=False."""

    name = "pytracking"
    thresholds = dict(_OPEProtocol.thresholds, norm_precision=metrics.PYTRACKING_NORM_THRESHOLDS)
    curve_dtype = np.float32

    def align(self, sequence, run, source):
        n = len(sequence)
        if np.isnan(run).any() or (run[:, 2:] < 0).any():
            raise UserError(f"{source()}: Invalid results for sequence {sequence.name}: NaN or negative width/height")
        if sequence.dataset not in _UAV and np.isnan(sequence.ground_truth).any():
            raise UserError(f"sequence {sequence.name}: NaN in the ground truth (pytracking allows it only for UAV)")
        if len(run) >= n:
            return run[:n]
        if sequence.dataset == "lasot":
            raise _length_error(source, run, sequence)
        return np.concatenate([run, np.zeros((n - len(run), 4))])  # silently zero-padded (fails)

    def repair(self, frames):
        # Zero-size rows take the previous row (if the GT row is finite); pytracking does
        # this before padding, so the zero rows it pads stay as they are.
        zero = (frames.pred[:, 2] == 0) | (frames.pred[:, 3] == 0)
        zero &= ~metrics.any_nan(frames.gt)
        if (frames.file_rows < frames.lengths).any():
            zero &= ~frames.padded()
        frames.repeat_previous(zero)

    def frame_metrics(self, frames):
        pred, gt = frames.pred, frames.gt
        # Only the LaSOT readers of pytracking give target_visible.
        visible = frames.visible(lambda s: s.dataset in ("lasot", "lasot_ext"))
        valid = metrics.all_positive(gt)
        if visible is not None:
            valid &= visible
        invalid_error = frames.per_frame([-1.0 if s.dataset in _UAV else np.inf for s in frames.sequences])
        error, norm_error = metrics.center_errors(pred, gt)
        values = {
            "success": np.where(valid, metrics.box_iou(pred, gt, pixel=True), -1.0),
            "precision": np.where(valid, error, invalid_error),
            # -1 (pass) for invalid frames on every dataset: the LaSOT-ext / TNL2K / UAV quirk ...
            "norm_precision": np.where(valid, norm_error, -1.0),
        }
        if visible is not None:
            # ... that only dataset 'lasot' undoes for its invisible frames.
            hidden = ~visible & frames.per_frame([s.dataset == "lasot" for s in frames.sequences])
            values["norm_precision"][hidden] = np.inf
            values["precision"][hidden] = np.inf
        return values, None, frames.lengths


class Got10kOPEProtocol(_OPEProtocol):
    """got10k ExperimentOTB / UAV123 / NfS (PyPI 0.1.3) and ExperimentLaSOT (HEAD)."""

    name = "got10k-ope"   # a part of Got10kProtocol ("got10k"), for OPE datasets

    def align(self, sequence, run, source):
        if len(run) != len(sequence):
            raise _length_error(source, run, sequence, " (the got10k protocol requires equal lengths)")
        return run

    def frame_metrics(self, frames):
        pred, gt = frames.pred, frames.gt
        # Unannotated (NaN) frames leave numerator AND denominator on the filtering experiments.
        filtered = frames.per_frame([s.dataset in _GOT10K_NAN_FILTERED for s in frames.sequences])
        counted = ~(filtered & metrics.any_nan(gt))
        # No repair of NaN / zero predictions: NaN compares False, i.e. fails.
        error, norm_error = metrics.center_errors(pred, gt, style="got10k")
        values = {
            "success": metrics.box_iou(pred, gt, eps=np.finfo(float).eps, clip=True),
            "precision": error,
            "norm_precision": norm_error,
        }
        return values, counted, np.bincount(frames.ids[counted], minlength=len(frames.lengths))

    def score(self, curves):
        scores = super().score(curves)
        # ExperimentLaSOT reports the MEAN of the normalised curve over [0, 0.5]; it is
        # got10k's only definition of normalised precision, so it is used for every dataset.
        scores["norm_precision"] = curves["norm_precision"].mean(axis=-1)
        return scores


class TrackingNetProtocol(_OPEProtocol):
    """TrackingNet devkit metrics.py: rounded boxes, IoU >= t, trapezoid areas."""

    name = "trackingnet"
    thresholds = {
        "success": metrics.TRACKINGNET_IOU_THRESHOLDS,
        "precision": metrics.TRACKINGNET_PIXEL_THRESHOLDS,
        "norm_precision": metrics.TRACKINGNET_NORM_THRESHOLDS,
    }
    compare = {"success": ">=", "precision": "<=", "norm_precision": "<="}

    def align(self, sequence, run, source):
        n = len(sequence)
        if len(run) >= n:
            return run[:n]
        # pandas aligns a short submission on the GT index: missing rows are NaN (failures).
        return np.concatenate([run, np.full((n - len(run), 4), np.nan)])

    def frame_metrics(self, frames):
        # Every coordinate of both (row 0 of the submission being the GT) is rounded first.
        iou, distance, norm_distance = metrics.trackingnet_errors(np.round(frames.pred), np.round(frames.gt))
        return {"success": iou, "precision": distance, "norm_precision": norm_distance}, None, frames.lengths

    def score(self, curves):
        success = curves["success"]
        return {
            "auc": metrics.trapezoid_area(success),
            "precision": metrics.trapezoid_area(curves["precision"]),
            "norm_precision": metrics.trapezoid_area(curves["norm_precision"]),
            "op50": success[..., 10],
            "op75": success[..., 15],
        }


class Got10kValProtocol(Protocol):
    """got10k ExperimentGOT10k.report on 'val': frame-pooled AO / SR over cover > 0 frames."""

    name = "got10k-val"   # a part of Got10kProtocol ("got10k"), for GOT-10k itself
    thresholds = {"success": metrics.GOT10K_THRESHOLDS}

    def sequence_ious(self, sequence, runs):
        gt = sequence.ground_truth
        cover = sequence.labels.get("cover")
        resolution = sequence.info.get("resolution")
        if cover is None or resolution is None:
            raise UserError(f"sequence {sequence.name}: GOT-10k scoring needs cover.label and meta_info resolution")
        width, height = resolution
        kept = np.asarray(cover)[1:] > 0  # absence.label is not used by the toolkit
        gt_clipped = metrics.clip_to_image(gt[1:], width, height)
        ious = []
        for index, run in enumerate(runs):
            boxes = np.asarray(run, dtype=np.float64)
            if boxes.shape != gt.shape:
                raise UserError(
                    f"{_describe(run, sequence, index)}: {len(boxes)} rows but sequence {sequence.name} has "
                    f"{len(gt)} frames (GOT-10k requires one row per frame)"
                )
            pred = metrics.clip_to_image(boxes[1:], width, height)  # frame 0 (the init box) is dropped
            ious.append(metrics.box_iou(pred, gt_clipped, eps=np.finfo(float).eps, clip=True)[kept])
        return np.concatenate(ious)

    def evaluate(self, sequences, results, times=None):
        states = {}
        for sequence in sequences:
            seconds = np.asarray(times.get(sequence.name, ()), dtype=np.float64).reshape(-1) if times else None
            if seconds is not None:
                seconds = seconds[~np.isnan(seconds)]
                seconds = seconds[seconds > 0]
            ious = self.sequence_ious(sequence, _runs_of(sequence, results))
            states[sequence.name] = {"ious": ious, "times": seconds}
        return self.summarise(states)

    def score(self, ious, seconds):
        if len(ious) == 0:  # no visible frame: got10k would report NaN
            curve = np.zeros(len(metrics.GOT10K_THRESHOLDS))
            scores = {"ao": 0.0, "sr50": 0.0, "sr75": 0.0}
        else:
            curve = metrics.threshold_counts(ious, metrics.GOT10K_THRESHOLDS, ">")[0] / len(ious)
            scores = {"ao": float(np.mean(ious)), "sr50": float(np.mean(ious > 0.5)), "sr75": float(curve[75])}
        if seconds is not None and len(seconds):
            scores["fps"] = float(np.mean(1.0 / seconds))
        return scores, curve

    def sequence_sums(self, sequence_states):
        # Frames are pooled: each number is (frames passing, or IoU summed) / frames, over all sequences.
        # (As score(): SR0.5 counts IoU > 0.5, SR0.75 reads the success curve at its threshold 0.75.)
        ious = [state["ious"] for state in sequence_states.values()]
        frames = np.array([len(i) for i in ious], dtype=np.float64)
        def passing(threshold):
            return np.array([np.count_nonzero(i > threshold) for i in ious], dtype=np.float64)

        return {"ao": (np.array([i.sum() for i in ious], dtype=np.float64), frames),
                "sr50": (passing(0.5), frames), "sr75": (passing(metrics.GOT10K_THRESHOLDS[75]), frames)}

    def summarise(self, sequence_states):
        if not sequence_states:
            raise UserError("no sequences to evaluate")
        states = sequence_states.values()
        ious = np.concatenate([s["ious"] for s in states])
        timed = [s["times"] for s in states if s["times"] is not None]
        overall, curve = self.score(ious, np.concatenate(timed) if timed else None)
        return Scores(
            overall=overall,
            per_sequence={name: self.score(s["ious"], s["times"])[0] for name, s in sequence_states.items()},
            curves={"success": curve},
            thresholds=dict(self.thresholds),
            protocol=self,
            sequence_states=sequence_states,
        )


class Got10kProtocol(Protocol):
    """The got10k toolkit: GOT-10k sequences use the val experiment, others the OTB-family experiments."""

    name = "got10k"

    def evaluate(self, sequences, results, times=None):
        sequences = list(sequences)
        datasets = {s.dataset == "got10k" for s in sequences}
        if len(datasets) > 1:
            raise UserError("the got10k protocol cannot score GOT-10k and other sequences together")
        protocol = Got10kValProtocol() if datasets == {True} else Got10kOPEProtocol()
        return protocol.evaluate(sequences, results, times)


_PROTOCOLS = {
    "official": OfficialProtocol,
    "pytracking": PytrackingProtocol,
    "got10k": Got10kProtocol,
    "trackingnet": TrackingNetProtocol,
}
