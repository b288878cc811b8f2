"""The "hold the first box" baseline: writes result files whose every row is the first ground-truth box.

    python benchmarks/hold_first_box.py --dataset otb --root /tmp/syn/otb_test --results results/hold
    mimtrack eval --dataset otb --root /tmp/syn/otb_test --results results/hold results/demo

A tracker that does not beat this by a wide margin has learnt nothing.
"""

import argparse
import os

import numpy as np

from mimtrack.evaluation.datasets import load_dataset
from mimtrack.evaluation.textfiles import format_boxes
from mimtrack.fileio import write_text_atomic


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--split")
    parser.add_argument("--results", required=True)
    args = parser.parse_args()
    for seq in load_dataset(args.dataset, args.root, args.split):
        boxes = np.repeat(seq.ground_truth[:1], len(seq), axis=0)
        write_text_atomic(os.path.join(args.results, f"{seq.name}.txt"), format_boxes(boxes))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
