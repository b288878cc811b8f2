"""``mimtrack pack``: zip test-split results for the GOT-10k / TrackingNet evaluation servers.

- GOT-10k: ``<seq>/<seq>_001.txt`` (+ ``_002``, ``_003`` for stochastic trackers) and
  ``<seq>/<seq>_time.txt`` for each of the 180 test sequences; rows ``x,y,w,h``, row 1 = init box.
- TrackingNet: ``<seq>.txt`` for each of the 511 test sequences; one ``x,y,w,h`` row per
  frame, frame 0 included.

Results are read from the layouts ``mimtrack track`` writes (``<seq>/<seq>_NNN.txt`` for
GOT-10k, ``<seq>.txt`` for TrackingNet; ``<seq>.txt`` is accepted for GOT-10k too). Every
problem of every sequence is collected first; the zip is written only when there is none.
"""

import os
import re
import zipfile

import numpy as np

from mimtrack.errors import UserError
from mimtrack.fileio import atomic_write

from .textfiles import format_boxes, read_boxes, read_table

BOX_FORMAT = "%.4f"


def add_arguments(parser):
    parser.add_argument("--dataset", required=True, choices=("got10k", "trackingnet"))
    parser.add_argument("--root", required=True, help="dataset root (its test split is packed)")
    parser.add_argument("--results", required=True, metavar="DIR", help="the tracker's result folder")
    parser.add_argument("--out", required=True, metavar="FILE.zip", help="submission zip to write")


def run(args):
    from mimtrack.evaluation.datasets import load_dataset

    if not args.out.endswith(".zip"):
        raise UserError(f"--out {args.out}: the submission must be a .zip file")
    sequences = load_dataset(args.dataset, args.root, "test")
    packer = pack_got10k if args.dataset == "got10k" else pack_trackingnet
    packer(args.results, args.out, sequences)
    print(f"wrote {args.out} ({len(sequences)} sequences)")
    return 0


def _expected_frames(sequence):
    """The frame count when the frames are on disk (test GT has one row only), else None."""
    try:
        frames = sequence.frames
        return len(frames) if len(frames) and os.path.isfile(frames[-1]) else None
    except OSError:
        return None


def _with_init_box(boxes, sequence):
    """Row 1 is the initial box the servers expect (the test ground truth's only row)."""
    boxes = boxes.copy()
    if len(boxes) and len(sequence.ground_truth):
        boxes[0] = sequence.ground_truth[0]
    return boxes


def _check_rows(problems, path, boxes, n_frames, first_row=0):
    """Row count, and every value from ``first_row`` on finite: a NaN written as 'nan' would reach the server
    (row 0 of a box file is replaced by the initial box)."""
    if n_frames is not None and len(boxes) != n_frames:
        problems.append(f"{path}: {len(boxes)} rows for {n_frames} frames")
    bad = np.flatnonzero(~np.isfinite(boxes[first_row:]).all(axis=1)) + first_row
    if len(bad):
        problems.append(f"{path}: line {bad[0] + 1} is not finite (NaN or inf)"
                        + (f", and {len(bad) - 1} more lines" if len(bad) > 1 else ""))


def _raise_problems(results_dir, problems, n_sequences):
    if problems:
        shown = "; ".join(problems[:5]) + ("; ..." if len(problems) > 5 else "")
        raise UserError(f"{results_dir}: {len(problems)} problem(s) in the results of {n_sequences} "
                        f"test sequences: {shown}")


def _write_zip(out_zip, members):
    with atomic_write(out_zip, "wb") as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text in members.items():
                archive.writestr(name, text)


def _read(problems, path, read):
    try:
        return read(path)
    except UserError as exc:
        problems.append(str(exc))
        return None


def pack_got10k(results_dir, out_zip, sequences):
    """Zip the GOT-10k test results of ``sequences``; returns the member names."""
    if not os.path.isdir(results_dir):
        raise UserError(f"{results_dir}: results folder not found")
    members, problems = {}, []
    for sequence in sequences:
        name = sequence.name
        folder = os.path.join(results_dir, name)
        runs = sorted(f for f in os.listdir(folder) if re.fullmatch(re.escape(name) + r"_\d{3}\.txt", f)) \
            if os.path.isdir(folder) else []
        paths = [os.path.join(folder, f) for f in runs]
        if not paths and os.path.isfile(os.path.join(results_dir, name + ".txt")):
            paths = [os.path.join(results_dir, name + ".txt")]
        if not paths:
            problems.append(f"{name}: no results")
            continue
        n_frames = _expected_frames(sequence)
        for index, path in enumerate(paths[:3], start=1):
            boxes = _read(problems, path, read_boxes)
            if boxes is None:
                continue
            _check_rows(problems, path, boxes, n_frames, first_row=1)
            members[f"{name}/{name}_{index:03d}.txt"] = format_boxes(_with_init_box(boxes, sequence), BOX_FORMAT)
        time_path = next((p for p in (os.path.join(folder, name + "_time.txt"),
                                      os.path.join(results_dir, name + "_time.txt")) if os.path.isfile(p)), None)
        if time_path is None:
            problems.append(f"{name}: no {name}_time.txt")
            continue
        times = _read(problems, time_path, read_table)
        if times is not None:
            _check_rows(problems, time_path, times, n_frames)
            members[f"{name}/{name}_time.txt"] = "".join(
                ",".join("%.8f" % t for t in row) + "\n" for row in times)
    _raise_problems(results_dir, problems, len(sequences))
    _write_zip(out_zip, members)
    return list(members)


def pack_trackingnet(results_dir, out_zip, sequences):
    """Zip the TrackingNet test results of ``sequences``; returns the member names."""
    if not os.path.isdir(results_dir):
        raise UserError(f"{results_dir}: results folder not found")
    members, problems = {}, []
    for sequence in sequences:
        path = os.path.join(results_dir, sequence.name + ".txt")
        if not os.path.isfile(path):
            problems.append(f"{sequence.name}: no results")
            continue
        boxes = _read(problems, path, read_boxes)
        if boxes is not None:
            _check_rows(problems, path, boxes, _expected_frames(sequence), first_row=1)
            members[f"{sequence.name}.txt"] = format_boxes(_with_init_box(boxes, sequence), BOX_FORMAT)
    _raise_problems(results_dir, problems, len(sequences))
    _write_zip(out_zip, members)
    return list(members)
