"""Ship a trained tracker: keep only the network weights of a training checkpoint, optionally stored as fp16.

    python -m mimtrack.tracker.train.weights runs/demo/last.pth tracker/weights/demo.pth

The result is ``{'net': state_dict}``: ``load_tracker_weights`` (strict) reads it, and ``load_state_dict`` casts
fp16 values back into the fp32 parameters. Integer buffers (BatchNorm's num_batches_tracked) keep their dtype.
"""

import argparse
import sys

from mimtrack import trainstate


def network_weights(checkpoint_path, half=True):
    """The ``net`` state dict of a training checkpoint, floating tensors in fp16 when ``half``."""
    state = trainstate.load_checkpoint(checkpoint_path)
    state = state.get("net", state)
    return {k: (v.half() if half and v.is_floating_point() else v).contiguous() for k, v in state.items()}


def export_weights(checkpoint_path, out_path, half=True):
    trainstate.save_checkpoint(out_path, {"net": network_weights(checkpoint_path, half)})
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
