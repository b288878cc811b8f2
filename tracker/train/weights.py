"""Ship a trained tracker: keep only the network weights of a training checkpoint, optionally stored as fp16.

    python -m mimtrack.tracker.train.weights runs/demo/last.pth tracker/weights/demo.pth

The result is ``{'net': state_dict}``: ``load_tracker_weights`` (strict) reads it, and ``load_state_dict`` casts
fp16 values back into the fp32 parameters. Integer buffers (BatchNorm's num_batches_tracked) keep their dtype.
"""

import argparse
import sys

from mimtrack.checkpoints import extract_state_dict, load_checkpoint
from mimtrack.tracker.checkpoints import save_tracker_checkpoint


def export_weights(checkpoint_path, out_path, half=True):
    """Write the network weights of ``checkpoint_path`` alone to ``out_path`` (fp16 when ``half``)."""
    state, _ = extract_state_dict(load_checkpoint(checkpoint_path), source=str(checkpoint_path))
    save_tracker_checkpoint(out_path, state, half=half)
    return out_path


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mimtrack.tracker.train.weights", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("out")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 storage (default: fp16)")
    args = parser.parse_args(argv)
    export_weights(args.checkpoint, args.out, half=not args.fp32)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
