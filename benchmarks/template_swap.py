"""Does the tracker look at its template? Track every sequence with the template of another one.

    python benchmarks/template_swap.py [--config photos_cpu --checkpoint W.pth] --dataset otb --root val5 \
        --results results/val5/swapped [--one-step]
    mimtrack track --dataset otb --root val5 --results results/val5/own
    mimtrack eval --dataset otb --root val5 --results results/val5/own results/val5/swapped

Each sequence starts from its own first box, but the template the network matches is cut from the first frame
and box of the next sequence in the set (the last one takes the first's). A tracker that matches its template
loses the object at once; one whose score stays close to the normal run finds "an object near the previous box"
without the template: a salient-object detector with a motion prior. Generated training data invites that
shortcut when the pasted target is the only pasted thing in the frame.

Tracking compounds every error, so two AUCs of a few sequences differ by chance too. ``--one-step`` also prints the
teacher-forced mean IoU with the own and with the swapped template: each frame's search region is cut around the
previous frame's true box (no size damping), so one frame's miss does not decide the next. Without --config /
--checkpoint it measures the bundled tracker.
"""

import argparse
import os

import numpy as np


def track_with_swapped_template(tracker, sequence, donor):
    """Boxes for ``sequence`` from its own first box, the template taken from ``donor``'s first frame and box."""
    from mimtrack.images import read_image_rgb

    tracker.initialize(read_image_rgb(donor.frames[0]), donor.ground_truth[0].tolist())
    tracker.state = sequence.ground_truth[0].tolist()
    boxes = [sequence.ground_truth[0]]
    for path in sequence.frames[1:]:
        boxes.append(tracker.track(read_image_rgb(path))["box"])
    return np.array(boxes, dtype=np.float64)


def one_step_ious(tracker, sequence, donor, frames):
    """Teacher-forced IoU per frame: the template from ``donor`` (the sequence itself: its own), each search region
    around the previous true box. ``frames``: the sequences' decoded images by name."""
    from mimtrack.evaluation.metrics import box_iou

    tracker.initialize(frames[donor.name][0], donor.ground_truth[0].tolist())
    gt, ious = sequence.ground_truth, []
    for i in range(1, len(gt)):
        previous, true = gt[i - 1], gt[i]
        if not (np.isfinite(previous).all() and np.isfinite(true).all() and min(previous[2:]) > 0
                and min(true[2:]) > 0):
            continue
        tracker.state = previous.tolist()
        box = tracker.track(frames[sequence.name][i])["box"]
        ious.append(float(box_iou(np.array([box]), true[None])[0]))
    return ious


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--checkpoint")
    parser.add_argument("--dataset", default="otb")
    parser.add_argument("--root", required=True)
    parser.add_argument("--split")
    parser.add_argument("--results", required=True, help="folder for the OTB result files of the swapped run")
    parser.add_argument("--one-step", action="store_true",
                        help="also print the teacher-forced mean IoU with the own and the swapped template")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from mimtrack.evaluation.datasets import load_dataset
    from mimtrack.evaluation.textfiles import format_boxes
    from mimtrack.fileio import write_text_atomic
    from mimtrack.tracker.inference import load_tracker

    sequences = list(load_dataset(args.dataset, args.root, args.split))
    if len(sequences) < 2:
        parser.error(f"--root {args.root}: needs at least 2 sequences to swap templates")
    tracker = load_tracker(args.config, args.checkpoint, threads=args.threads)
    for k, sequence in enumerate(sequences):
        donor = sequences[(k + 1) % len(sequences)]
        boxes = track_with_swapped_template(tracker, sequence, donor)
        write_text_atomic(os.path.join(args.results, f"{sequence.name}.txt"), format_boxes(boxes))
        print(f"{sequence.name}: template of {donor.name}", flush=True)
    print(f"wrote {args.results}")
    if args.one_step:
        from mimtrack.images import read_image_rgb

        tracker = load_tracker(args.config, args.checkpoint, threads=args.threads,
                               overrides=["inference.size_update=1.0"])
        frames = {seq.name: [read_image_rgb(path) for path in seq.frames] for seq in sequences}
        own, swapped = [], []
        for k, sequence in enumerate(sequences):
            own.append(np.mean(one_step_ious(tracker, sequence, sequence, frames)))
            swapped.append(np.mean(one_step_ious(tracker, sequence, sequences[(k + 1) % len(sequences)], frames)))
            print(f"{sequence.name}: one-step mean IoU {own[-1]:.3f} own template, {swapped[-1]:.3f} swapped")
        print(f"one-step mean IoU over {len(sequences)} sequences: own template {np.mean(own):.3f}, swapped "
              f"{np.mean(swapped):.3f} (a tracker that uses its template: own well above swapped)")


if __name__ == "__main__":
    main()
