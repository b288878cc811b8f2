"""Ship a trained tracker: keep only the network weights of a training checkpoint, stored as fp16 by default.

    mimtrack export-weights runs/demo/last.pth tracker/weights/demo.pth

The result is ``{'net': state_dict}`` (:func:`mimtrack.tracker.checkpoints.tracker_payload`): ``load_tracker_weights``
(strict) reads it, and ``load_state_dict`` casts fp16 values back into the fp32 parameters.
"""

from mimtrack.checkpoints import extract_state_dict, load_checkpoint
from mimtrack.tracker.checkpoints import save_tracker_checkpoint


def export_weights(checkpoint_path, out_path, half=True):
    """Write the network weights of ``checkpoint_path`` alone to ``out_path`` (fp16 when ``half``)."""
    state, _ = extract_state_dict(load_checkpoint(checkpoint_path), source=str(checkpoint_path))
    save_tracker_checkpoint(out_path, state, half=half)
    return out_path


def add_arguments(parser):
    parser.add_argument("checkpoint", help="a training checkpoint (last.pth / checkpoint_eNNNN.pth) or tracker file")
    parser.add_argument("out", help="the weights file to write (e.g. tracker/weights/demo.pth)")
    parser.add_argument("--fp32", action="store_true", help="keep fp32 storage (default: fp16, half the size)")


def run(args):
    export_weights(args.checkpoint, args.out, half=not args.fp32)
    print(args.out)
    return 0
