"""OpenCV's classical trackers (CSRT, KCF) as a baseline: writes OTB-style result files for ``mimtrack eval``.

OpenCV's contrib trackers live in ``opencv-contrib-python-headless``, which conflicts with mimtrack's
``opencv-python-headless``: install it in a scratch virtual environment and run this script from there with the
repository on the path (it needs only numpy, OpenCV and mimtrack's numpy-only ``evaluation`` readers):

    python3 -m venv /tmp/venv-cv && /tmp/venv-cv/bin/pip install opencv-contrib-python-headless
    PYTHONPATH=. /tmp/venv-cv/bin/python benchmarks/opencv_trackers.py --tracker csrt \\
        --dataset otb --root ../shared/data/real --results results/real/csrt
    mimtrack eval --dataset otb --root ../shared/data/real --results results/real/csrt

Frames are read with OpenCV (BGR, as its trackers expect); each tracker starts from the first ground-truth box with
default parameters. Per-frame times (``<seq>_time.txt``, seconds) cover ``tracker.update`` only.
"""

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mimtrack.evaluation.datasets import load_dataset  # noqa: E402
from mimtrack.evaluation.textfiles import format_boxes  # noqa: E402
from mimtrack.fileio import write_text_atomic  # noqa: E402

TRACKERS = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}


def _create(cv2, name):
    factory = getattr(cv2, TRACKERS[name], None) or getattr(getattr(cv2, "legacy", None), TRACKERS[name], None)
    if factory is None:
        sys.exit(f"opencv_trackers.py: cv2.{TRACKERS[name]} not found: install opencv-contrib-python-headless "
                 "(in a scratch venv)")
    return factory()


def track_sequence(cv2, name, seq):
    """(N, 4) boxes (the first = GT; a lost target repeats the last box, as OTB toolkits expect) and times."""
    boxes, times = np.zeros((len(seq), 4)), np.zeros(len(seq))
    first = cv2.imread(seq.frames[0], cv2.IMREAD_COLOR)
    if first is None:
        sys.exit(f"opencv_trackers.py: {seq.frames[0]}: cannot read the frame")
    box = seq.ground_truth[0].astype(float)
    tracker = _create(cv2, name)
    tracker.init(first, tuple(int(round(v)) for v in box))
    boxes[0] = box
    for k in range(1, len(seq)):
        frame = cv2.imread(seq.frames[k], cv2.IMREAD_COLOR)
        start = time.perf_counter()
        ok, found = tracker.update(frame)
        times[k] = time.perf_counter() - start
        if ok:
            box = np.asarray(found, dtype=float)
        boxes[k] = box
    return boxes, times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracker", required=True, choices=sorted(TRACKERS))
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split")
    parser.add_argument("--results", required=True)
    args = parser.parse_args()
    import cv2

    cv2.setNumThreads(2)
    all_times = []
    for seq in load_dataset(args.dataset, args.root, args.split):
        boxes, times = track_sequence(cv2, args.tracker, seq)
        write_text_atomic(os.path.join(args.results, f"{seq.name}.txt"), format_boxes(boxes))
        write_text_atomic(os.path.join(args.results, f"{seq.name}_time.txt"),
                          "".join(f"{t:.6f}\n" for t in times))
        all_times.append(times[1:])
        print(f"{seq.name}: {len(seq)} frames, median {1000 * np.median(times[1:]):.1f} ms/frame")
    print(f"wrote {args.results} (cv2 {cv2.__version__}, median {1000 * np.median(np.concatenate(all_times)):.1f} "
          "ms/frame over all frames)")


if __name__ == "__main__":
    main()
