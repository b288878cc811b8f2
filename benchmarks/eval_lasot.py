"""Speed of ``mimtrack eval`` on a LaSOT-test-sized problem (a script, not a test).

Fabricates, in a temporary folder, the 280 LaSOT test sequences with realistic
lengths (685,360 frames in all, ~18k absent frames; annotation files only) and
the result files of 7 trackers (noisy copies of the ground truth written as
``%.2f`` comma-separated floats), then times the in-process ``mimtrack eval``
(result files read + scoring + table + JSON) and prints the median of a few runs.

    .venv/bin/python benchmarks/eval_lasot.py [--runs 5] [--trackers 7] [--workers 2] [--keep DIR]

Reference: the pytracking / OSTrack analysis code needs ~8 s for this; target < 2 s.
"""

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

TOTAL_FRAMES = 685_360  # LaSOT test set (measured, see reference/evaluation.md 2.)
TOTAL_ABSENT = 18_346


def sequence_lengths(names, rng):
    """Lengths between 1000 and 11397 frames (LaSOT's range) summing to TOTAL_FRAMES; monkey-17 has 2260."""
    lengths = np.clip(rng.lognormal(np.log(2100), 0.5, len(names)), 1000, 11397)
    lengths = np.round(lengths * (TOTAL_FRAMES - 2260) / (lengths.sum() - lengths[names.index("monkey-17")]))
    lengths = np.clip(lengths, 1000, 11397).astype(int)
    lengths[names.index("monkey-17")] = 2260
    lengths[np.argmax(lengths)] += TOTAL_FRAMES - lengths.sum()  # exact total
    return lengths


def track(n, rng, size=(1280, 720)):
    """An integer ground-truth track drifting inside the image."""
    wh = rng.uniform(40, 300, 2)
    centre = rng.uniform(wh, np.array(size) - wh)
    centres = np.clip(centre + np.cumsum(rng.normal(0, 3, (n, 2)), axis=0), wh / 2, np.array(size) - wh / 2)
    sizes = wh * np.exp(np.clip(np.cumsum(rng.normal(0, 0.01, (n, 1)), axis=0), -0.5, 0.5))
    return np.round(np.hstack([centres - sizes / 2, sizes]))


def write_rows(path, rows, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = ",".join([fmt] * rows.shape[1]) + "\n"
    with open(path, "w") as f:
        f.write("".join(line % tuple(r) for r in rows.tolist()))


def fabricate(root, results_root, n_trackers, seed=0):
    from evaluation.datasets import split_names

    rng = np.random.default_rng(seed)
    names = list(split_names("lasot", "test"))
    lengths = sequence_lengths(names, rng)
    absent_per_seq = rng.multinomial(TOTAL_ABSENT, np.full(len(names), 1 / len(names)))
    for name, n, n_absent in zip(names, lengths, absent_per_seq):
        gt = track(n, rng)
        absent = np.zeros(n, dtype=int)
        start = rng.integers(1, n - n_absent)
        absent[start:start + n_absent] = 1  # one occlusion episode
        gt[absent == 1] = 0  # LaSOT often writes 0,0,0,0 for absent frames
        folder = os.path.join(root, name.rsplit("-", 1)[0], name)
        write_rows(os.path.join(folder, "groundtruth.txt"), gt, "%d")
        for key, flags in (("full_occlusion", absent), ("out_of_view", np.zeros(n, dtype=int))):
            with open(os.path.join(folder, f"{key}.txt"), "w") as f:
                f.write(",".join(map(str, flags)) + "\n")
        for t in range(n_trackers):
            noise = rng.normal(0, 4 + 2 * t, (n, 4)) * np.r_[1, 1, 0.5, 0.5]
            boxes = np.where(absent[:, None] == 1, rng.uniform(0, 500, (n, 4)), gt + noise)
            boxes[:, 2:] = np.maximum(boxes[:, 2:], 1)
            write_rows(os.path.join(results_root, f"tracker{t + 1}", f"{name}.txt"), boxes, "%.2f")
    return names


def time_eval(argv, runs):
    from mimtrack.cli import main

    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()) as out:
            status = main(argv)
        seconds.append(time.perf_counter() - start)
        if status != 0:
            sys.exit(f"mimtrack eval failed with status {status}")
    return seconds, out.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trackers", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", metavar="DIR", help="fabricate into (or reuse) DIR instead of a temp folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp
        root, results = os.path.join(work, "lasot"), os.path.join(work, "results")
        if not os.path.isdir(results):
            start = time.perf_counter()
            fabricate(root, results, args.trackers)
            print(f"fabricated {TOTAL_FRAMES} frames x {args.trackers} trackers in {time.perf_counter() - start:.0f} s")
        trackers = [os.path.join(results, f"tracker{t + 1}") for t in range(args.trackers)]
        argv = ["eval", "--dataset", "lasot", "--root", root, "--results", *trackers,
                "--json", os.path.join(work, "scores.json"), "--workers", str(args.workers)]
        seconds, output = time_eval(argv, args.runs)
    print(output, end="")
    print("runs: " + ", ".join(f"{s:.3f}" for s in seconds) + " s")
    print(f"median: {statistics.median(seconds):.3f} s (target < 2.0 s)")


if __name__ == "__main__":
    main()
