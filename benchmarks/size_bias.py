"""How much of a tracker's predicted box size comes from the object, and how much from the search crop.

    python benchmarks/size_bias.py [--config photos_cpu --checkpoint W.pth] --dataset otb --root val5 \
        [--factors 2.5 3.0 3.5 4.0] [--stride 3]

Teacher-forced: for every ``--stride``-th frame the search region is cropped around the previous frame's true box
(at each test-time search factor in turn) and the network's box is compared with the true one (no size damping).
Printed per factor: the median of predicted / true size (geometric mean of width and height), per sequence and
over all frames; last, the elasticity d log(predicted size) / d log(search factor) between the smallest and the
largest factor. An elasticity of 0 means the size comes from the object alone; 1, from the crop alone. Above 0 the
tracker's own box feeds back into its next crop: with damping rate r the size settles where the ratio's compounding
stops, at about ratio ** (1 / (1 - elasticity)) times the true size, hence drifting boxes on real video.
Without --config / --checkpoint it measures the bundled tracker.
"""

import argparse
import math

import numpy as np


def size_ratios(trackers, sequence, stride):
    """log(predicted / true size) of each tracker for the teacher-forced frames of ``sequence`` (each frame read
    once for all trackers)."""
    from mimtrack.images import read_image_rgb

    gt, frames = sequence.ground_truth, sequence.frames
    first = read_image_rgb(frames[0])
    for tracker in trackers:
        tracker.initialize(first, gt[0].tolist())
    logs = [[] for _ in trackers]
    for i in range(1, len(gt), stride):
        previous, true = gt[i - 1], gt[i]
        if not (np.isfinite(previous).all() and np.isfinite(true).all() and previous[2:].min() > 0
                and true[2:].min() > 0):
            continue
        image = read_image_rgb(frames[i])
        for tracker, out in zip(trackers, logs):
            tracker.state = previous.tolist()
            w, h = tracker.track(image)["box"][2:]
            out.append(0.5 * math.log(w * h / (true[2] * true[3])))
    return logs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--checkpoint")
    parser.add_argument("--dataset", default="otb")
    parser.add_argument("--root", required=True)
    parser.add_argument("--split")
    parser.add_argument("--factors", type=float, nargs="+", default=[2.5, 3.0, 3.5, 4.0])
    parser.add_argument("--stride", type=int, default=3, help="every N-th frame (default 3)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from mimtrack.evaluation.datasets import load_dataset
    from mimtrack.tracker.inference import load_tracker

    sequences = list(load_dataset(args.dataset, args.root, args.split))
    trackers = [load_tracker(args.config, args.checkpoint, threads=args.threads,
                             overrides=[f"inference.search_factor={factor}", "inference.size_update=1.0"])
                for factor in args.factors]
    by_sequence = {seq.name: size_ratios(trackers, seq, args.stride) for seq in sequences}
    medians = []
    for k, factor in enumerate(args.factors):
        per_sequence = {name: logs[k] for name, logs in by_sequence.items()}
        every = [v for logs in per_sequence.values() for v in logs]
        medians.append(float(np.median(every)))
        print(f"search factor {factor}: predicted / true size, median {math.exp(medians[-1]):.3f} over "
              f"{len(every)} frames | " + " ".join(f"{name} {math.exp(np.median(logs)):.2f}"
                                                   for name, logs in per_sequence.items() if logs))
    if len(args.factors) > 1:
        lo, hi = int(np.argmin(args.factors)), int(np.argmax(args.factors))
        slope = (medians[hi] - medians[lo]) / math.log(args.factors[hi] / args.factors[lo])
        print(f"elasticity of the predicted size to the search factor: {slope:.2f} "
              "(0: from the object only, 1: from the crop only)")


if __name__ == "__main__":
    main()
