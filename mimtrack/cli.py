"""The ``mimtrack`` command: one dispatcher, each subcommand's code in its package.

A subcommand module provides ``add_arguments(parser)`` and ``run(args)``. Only
the chosen module is imported, so ``mimtrack eval`` never imports torch.
"""

import argparse
import contextlib
import importlib
import signal
import sys
import threading
import traceback

from mimtrack.errors import Stopped, UserError

# name -> (module, one-line help). Kept here so `mimtrack --help` imports nothing heavy.
SUBCOMMANDS = {
    "eval": ("mimtrack.evaluation.cli", "score tracking results on a benchmark (AUC, precision, AO/SR)"),
    "pack": ("mimtrack.evaluation.submit", "pack GOT-10k / TrackingNet test results into a server submission zip"),
    "track": ("mimtrack.tracker.runner", "run a tracker over a benchmark and write result files"),
    "vot-server": ("mimtrack.tracker.vot_server", "TraX server: let vot-toolkit run a mimtrack tracker (vot evaluate)"),
    "demo": ("mimtrack.tracker.demo", "track one object in a video file or image folder"),
    "train": ("mimtrack.tracker.train.cli", "train a tracker from a recipe (one process, or torchrun for DDP)"),
    "make-synthetic": ("mimtrack.tracker.data.synthetic", "write a synthetic tracking dataset in an official layout"),
    "collect-photos": ("mimtrack.tracker.data.photos", "write the real photographs installed packages ship into a folder"),
    "pack-lmdb": ("mimtrack.tracker.data.lmdb_pack", "convert a training dataset into an LMDB"),
    "export": ("mimtrack.tracker.export", "export a tracker network to ONNX"),
    "export-weights": ("mimtrack.tracker.train.weights", "keep a training checkpoint's network weights (fp16) to ship"),
    "bench": ("mimtrack.tracker.bench", "measure tracker speed: network-only and end-to-end frames per second"),
    "pretrain": ("mimtrack.pretrain.main", "pre-train a ViT backbone (MAE-lite, distillation, D2, MoCo-v3)"),
    "finetune": ("mimtrack.pretrain.transfer.finetune", "fine-tune a ViT classifier on an ImageNet-layout folder"),
    "linprobe": ("mimtrack.pretrain.transfer.linprobe", "linear probing of a frozen ViT on an ImageNet-layout folder"),
    "segment": ("mimtrack.pretrain.transfer.segment", "semantic segmentation transfer (ViT + Semantic FPN, ADE20K layout)"),
    "analyze": ("mimtrack.pretrain.analysis.cli", "representation analysis: layer probing, CKA, attention distance / entropy"),
}


def add_training_arguments(parser, output_help, length="epochs"):
    """The options every training command shares, with one meaning: ``--output`` (run folder), ``--epochs`` /
    ``--iters`` (``train.<length>``), ``--set KEY=VALUE``, ``--resume`` and ``--device`` (``train.device``)."""
    parser.add_argument("--output", required=True, metavar="DIR", help=output_help)
    parser.add_argument(f"--{length}", type=int, metavar="N", help=f"train.{length} (the schedule length)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set train.batch_size=16 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --output")
    parser.add_argument("--device", choices=("cpu", "cuda"),
                        help="train.device: cpu (gloo under torchrun) or cuda (one GPU per process, NCCL); "
                        "default: the recipe's (cpu)")


def training_overrides(args, length="epochs"):
    """``--set`` values plus what ``--epochs`` / ``--iters`` and ``--device`` stand for, in that order (the flags win)."""
    overrides = list(args.overrides)
    value = getattr(args, length)
    if value is not None:
        if value <= 0:
            raise UserError(f"--{length} {value}: must be > 0")
        overrides.append(f"train.{length}={value}")
    if args.device is not None:
        overrides.append(f"train.device={args.device}")
    return overrides


def _top_parser():
    parser = argparse.ArgumentParser(
        prog="mimtrack",
        description="Lightweight visual object tracking: pre-training, tracking, evaluation.",
        epilog="Run 'mimtrack COMMAND --help' for the options of a command. "
        "'--debug' anywhere shows full tracebacks.",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=_version())
    lines = [f"  {name:<14} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    parser.add_argument("command", metavar="COMMAND", choices=list(SUBCOMMANDS),
                        help="one of:\n" + "\n".join(lines))
    return parser


def _version():
    from mimtrack import __version__
    return f"mimtrack {__version__}"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    top = _top_parser()
    if not argv or argv[0] in ("-h", "--help", "--version"):
        top.parse_args(argv or ["--help"])
    name = argv[0]
    if name not in SUBCOMMANDS:
        top.error(f"unknown command {name!r} (choose from {', '.join(SUBCOMMANDS)})")
    module_name, help_ = SUBCOMMANDS[name]
    module = importlib.import_module(module_name)
    parser = argparse.ArgumentParser(prog=f"mimtrack {name}", description=help_)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    args.debug = debug
    try:
        with _sigterm_stops():
            status = module.run(args)
    except UserError as exc:
        if debug:
            traceback.print_exc()
        print(f"mimtrack {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:   # Ctrl-C, or Stopped (SIGTERM; the trainers after their checkpoint)
        if debug:
            traceback.print_exc()
        print(f"mimtrack {name}: {exc if isinstance(exc, Stopped) else 'interrupted'}", file=sys.stderr)
        return exc.exit_status if isinstance(exc, Stopped) else 130
    except OSError as exc:
        # Files the user named: missing, unreadable, disk full.
        if debug:
            traceback.print_exc()
        print(f"mimtrack {name}: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "),
              file=sys.stderr)
        return 2
    return int(status or 0)


def _raise_stopped(signum, frame):
    raise Stopped(signum)


@contextlib.contextmanager
def _sigterm_stops():
    """SIGTERM raises :class:`Stopped` (a KeyboardInterrupt) like Ctrl-C does, so every command cleans up the same
    way (temporary files removed, worker processes ended) and exits 143 instead of dying mid-write."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
