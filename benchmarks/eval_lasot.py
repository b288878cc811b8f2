"""Speed of ``mimtrack eval`` on a LaSOT-test-sized problem (a script, not a test).

Fabricates, in a temporary folder, the 280 LaSOT test sequences with realistic
lengths (685,360 frames in all, ~18k absent frames; annotation files only) and
the result files of 7 trackers (noisy copies of the ground truth) in the formats
published raw results come in (RESULT_FORMATS: integer files as pytracking /
OSTrack write them, full-precision float files as str(float) writes them, short
decimals; tab, comma and space separated). Then times, median of ``--runs``:
the whole ``mimtrack eval`` command (a new process: start-up, imports, reading,
scoring, table, JSON), the same call in process, the in-process call with
``--ci`` (its extra cost is the bootstrap), and a re-implementation of the
pytracking / OSTrack analysis loop (``pytracking_style``, below) on the same files.

    .venv/bin/python benchmarks/eval_lasot.py [--runs 5] [--trackers 7] [--workers 2] [--keep DIR] [--no-reference]

Reference: README quotes ~8 s for the pytracking / OSTrack analysis code on this
problem (measured with that code, which is not part of this repository); target:
the whole command >= 4x faster (< 2 s).
"""

import argparse
import contextlib
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

TOTAL_FRAMES = 685_360  # LaSOT test set (measured on the official LaSOT test annotations)
TOTAL_ABSENT = 18_346
# (row format, delimiter) of tracker t + 1, cycled: 3 integer files (pytracking / OSTrack save
# astype(int) with '%d', tab-separated), 2 full-precision float files (str(float): 15-17 significant
# digits, e.g. 367.0763161678982,101.76213141700188), 2 short-decimal files.
# (All readable by pytracking's loader, which tries only tab and comma: see pytracking_style.)
RESULT_FORMATS = (("%d", "\t"), ("%r", ","), ("%.4f", ","), ("%d", "\t"), ("%r", ","), ("%d", ","), ("%.2f", "\t"))


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


def write_rows(path, rows, fmt, delimiter=","):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    line = delimiter.join([fmt] * rows.shape[1]) + "\n"
    with open(path, "w") as f:
        f.write("".join(line % tuple(r) for r in rows.tolist()))


def fabricate(root, results_root, n_trackers, seed=0):
    from mimtrack.evaluation.datasets import split_names

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
            fmt, delimiter = RESULT_FORMATS[t % len(RESULT_FORMATS)]
            path = os.path.join(results_root, f"tracker{t + 1}", f"{name}.txt")
            write_rows(path, boxes.astype(int) if fmt == "%d" else boxes, fmt, delimiter)
    return names


def pytracking_style(root, results_root, n_trackers):
    """What the pytracking / OSTrack analysis (pytracking/analysis/extract_results.py and OSTrack's
    copy in lib/test/analysis/) does per sequence and tracker, re-implemented in numpy (no torch):
    np.loadtxt of groundtruth.txt, full_occlusion.txt and out_of_view.txt (delimiter ','), of each
    result file trying delimiter '\\t' then ',' (pytracking.utils.load_text.load_text_numpy), then
    IoU, centre and normalised centre errors (OSTrack's validity rule: GT w > 0 and h > 0, target
    visible) and the N x 21 / N x 51 threshold comparisons of the success and precision curves.
    Returns the AUC per tracker. A measure of that loading path and loop, not the original code.
    """
    from mimtrack.evaluation.datasets import split_names

    def load_text(path, delimiters):
        for delimiter in delimiters:
            try:
                return np.loadtxt(path, delimiter=delimiter, dtype=np.float64)
            except ValueError:
                pass
        raise ValueError(f"could not read {path}")

    names = list(split_names("lasot", "test"))
    overlap_thresholds, pixel_thresholds = np.arange(0, 1.05, 0.05), np.arange(0, 51, dtype=np.float64)
    success = np.zeros((n_trackers, len(names), len(overlap_thresholds)))
    precision, norm_precision = (np.zeros((n_trackers, len(names), len(pixel_thresholds))) for _ in range(2))
    with np.errstate(divide="ignore", invalid="ignore"):  # as torch: x / 0 = inf, no warning
        for s, name in enumerate(names):
            folder = os.path.join(root, name.rsplit("-", 1)[0], name)
            gt = load_text(os.path.join(folder, "groundtruth.txt"), ",")
            occluded = load_text(os.path.join(folder, "full_occlusion.txt"), ",")
            out_of_view = load_text(os.path.join(folder, "out_of_view.txt"), ",")
            visible = np.logical_and(occluded == 0, out_of_view == 0)
            for t in range(n_trackers):
                pred = load_text(os.path.join(results_root, f"tracker{t + 1}", f"{name}.txt"), ("\t", ","))
                pred[0] = gt[0]
                top_left = np.maximum(pred[:, :2], gt[:, :2])
                bottom_right = np.minimum(pred[:, :2] + pred[:, 2:] - 1.0, gt[:, :2] + gt[:, 2:] - 1.0)
                size = np.clip(bottom_right - top_left + 1.0, 0, None)
                intersection = size.prod(axis=1)
                iou = intersection / (pred[:, 2:].prod(axis=1) + gt[:, 2:].prod(axis=1) - intersection)
                pred_centre = pred[:, :2] + 0.5 * (pred[:, 2:] - 1.0)
                gt_centre = gt[:, :2] + 0.5 * (gt[:, 2:] - 1.0)
                error = np.sqrt(((pred_centre - gt_centre) ** 2).sum(axis=1))
                norm_error = np.sqrt(((pred_centre / gt[:, 2:] - gt_centre / gt[:, 2:]) ** 2).sum(axis=1))
                valid = (gt[:, 2:] > 0).all(axis=1) & visible
                iou[~valid], error[~valid], norm_error[~valid] = -1.0, np.inf, np.inf
                success[t, s] = (iou[:, None] > overlap_thresholds[None, :]).sum(axis=0) / len(gt)
                precision[t, s] = (error[:, None] <= pixel_thresholds[None, :]).sum(axis=0) / len(gt)
                norm_precision[t, s] = (norm_error[:, None] <= pixel_thresholds[None, :] / 100).sum(axis=0) / len(gt)
    return success.mean(axis=(1, 2))


class Clock:
    """Wall seconds and CPU seconds (user + sys of this process and of its finished children) of each run.

    CPU time is what a shared, loaded machine distorts least: on an idle machine the
    single-process reference needs at least its CPU time, and ``mimtrack eval`` (two
    worker processes) at most its CPU time.
    """

    def __init__(self):
        self.wall, self.cpu = [], []

    @staticmethod
    def _cpu():
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime

    @contextlib.contextmanager
    def run(self):
        wall, cpu = time.perf_counter(), self._cpu()
        yield
        self.wall.append(time.perf_counter() - wall)
        self.cpu.append(self._cpu() - cpu)


def time_reference(root, results_root, n_trackers, runs):
    clock = Clock()
    for _ in range(runs):
        with clock.run():
            pytracking_style(root, results_root, n_trackers)
    return clock


def time_in_process(argv, runs):
    from mimtrack.cli import main

    clock = Clock()
    for _ in range(runs):
        with clock.run(), contextlib.redirect_stdout(io.StringIO()) as out:
            status = main(argv)
        if status != 0:
            sys.exit(f"mimtrack eval failed with status {status}")
    return clock, out.getvalue()


def time_command(argv, runs):
    """The whole command in a new process, as a user runs it (the checkout first on the path).

    Python caches the byte code of the modules it imports, as it does for every user (the first run
    writes it): an environment that sets PYTHONDONTWRITEBYTECODE (this project's sandbox does) would
    otherwise have every run compile the project's modules again (~0.2 s).
    """
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([repo] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "mimtrack.cli", *argv]
    clock = Clock()
    for _ in range(runs):
        with clock.run():
            done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:
            sys.exit(f"mimtrack eval failed with status {done.returncode}: {done.stderr.strip()}")
    return clock


def _summary(label, clock):
    runs = ", ".join(f"{s:.3f}" for s in clock.wall)
    return (f"{label}: median {statistics.median(clock.wall):.3f} s (runs {runs}); "
            f"CPU median {statistics.median(clock.cpu):.3f} s")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--trackers", type=int, default=7)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", metavar="DIR", help="fabricate into (or reuse) DIR instead of a temp folder")
    parser.add_argument("--no-reference", action="store_true", help="skip the pytracking-style reference loop")
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
        command = time_command(argv, args.runs)
        in_process, output = time_in_process(argv, args.runs)
        with_ci, output_ci = time_in_process(argv + ["--ci"], args.runs)
        reference = None if args.no_reference else time_reference(root, results, args.trackers, args.runs)
    print(output_ci, end="")
    print(_summary("whole `mimtrack eval` command", command) + " (target < 2.0 s: 4x the ~8 s of pytracking)")
    print(_summary("in process", in_process))
    print(_summary("in process with --ci", with_ci)
          + f"; the bootstrap adds {statistics.median(with_ci.wall) - statistics.median(in_process.wall):.3f} s "
          f"(CPU {statistics.median(with_ci.cpu) - statistics.median(in_process.cpu):.3f} s)")
    if reference:
        wall = statistics.median(reference.wall) / statistics.median(command.wall)
        cpu = statistics.median(reference.cpu) / statistics.median(command.cpu)
        print(_summary("pytracking-style loop (numpy re-implementation, same files)", reference)
              + f": {wall:.1f}x the whole command's wall time, {cpu:.1f}x its CPU time")


if __name__ == "__main__":
    main()
