"""Does the tracker look at its template? Track every sequence with the template of another one.

    python benchmarks/template_swap.py [--config photos_cpu --checkpoint W.pth] --dataset otb --root val5 \
        --results results/val5/swapped
    mimtrack track --dataset otb --root val5 --results results/val5/own
    mimtrack eval --dataset otb --root val5 --results results/val5/own results/val5/swapped

Each sequence starts from its own first box, but the template the network matches is cut from the first frame
and box of the next sequence in the set (the last one takes the first's). A tracker that matches its template
loses the object at once; one whose score stays close to the normal run finds "an object near the previous box"
without the template: a salient-object detector with a motion prior. Generated training data invites that
shortcut when the pasted target is the only pasted thing in the frame. Without --config / --checkpoint it measures
the bundled tracker.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--checkpoint")
    parser.add_argument("--dataset", default="otb")
    parser.add_argument("--root", required=True)
    parser.add_argument("--split")
    parser.add_argument("--results", required=True, help="folder for the OTB result files of the swapped run")
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


if __name__ == "__main__":
    main()
