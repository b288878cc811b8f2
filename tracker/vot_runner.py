"""``mimtrack track --dataset vot --protocol vot-baseline|vot-multistart|vot-unsupervised``: run a tracker with the
VOT toolkit's rules and write a vot-toolkit workspace's results.

The rules are vot-toolkit 0.9.0's (``vot/experiment/multirun.py``, ``vot/experiment/multistart.py``):

- vot-baseline (``SupervisedExperiment``): initialise on the ground truth; a frame whose predicted region has
  overlap <= 0 with the ground truth (image-bounded, ``mimtrack.evaluation.vot.overlap``) is a failure (row ``2``), the
  tracker is re-initialised ``skip_initialize`` frames later (rows ``0`` between, ``1`` at the restart).
  Repetitions ``<seq>_001.txt`` ... up to the stack's count, stopping early once three identical ones exist
  (``MultiRunExperiment._can_stop``: a deterministic tracker).
- vot-multistart (``MultiStartExperiment``): one run per anchor frame (``anchor.value`` > 0 forwards to the end,
  < 0 backwards to frame 0) without resets, ``<seq>_<anchor:08d>.txt`` in tracking order.
- vot-unsupervised: one pass from frame 0, ``<seq>_001.txt``.

Files go to ``<results>/<experiment>/<seq>/`` (``baseline``, or ``unsupervised``), with ``<name>_time.value``
(seconds per frame) beside each; an existing file is a finished run and is skipped. Rectangle trackers get the
bounding box of polygon / mask ground truth (``Rectangle.convert``) and report rectangles.
"""

import os
import time

from mimtrack.errors import UserError
from mimtrack.fileio import write_text_atomic

EARLY_STOP_REPETITIONS = 3


def _initialize(tracker, image, region, where):
    box = region.box()
    if box is None:
        raise UserError(f"{where}: the ground truth is unknown (special row) at an initialisation frame")
    try:
        tracker.initialize(image, box)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _write_run(path, regions, times):
    from mimtrack.evaluation import vot

    # Times first: the trajectory file marks a finished run.
    write_text_atomic(path[:-4] + "_time.value", "".join(f"{t:.6f}\n" for t in times))
    write_text_atomic(path, vot.format_regions(regions))


def run_supervised(tracker, sequence, read_image, skip_initialize, where=""):
    """One baseline repetition -> (regions, seconds per frame), restarting after each failure."""
    from mimtrack.evaluation import vot

    truth, size = sequence.info["regions"], sequence.info["size"]
    n = len(truth)
    regions, times = [vot.Region.special(vot.UNKNOWN)] * n, [0.0] * n
    frame = 0
    while frame < n:
        image = read_image(sequence.frames[frame])
        start = time.perf_counter()
        _initialize(tracker, image, truth[frame], f"{where} frame {frame + 1}")
        times[frame] = time.perf_counter() - start
        regions[frame] = vot.Region.special(vot.INITIALIZATION)
        frame += 1
        while frame < n:
            image = read_image(sequence.frames[frame])
            start = time.perf_counter()
            region = vot.Region.rectangle(*tracker.track(image)["box"])
            times[frame] = time.perf_counter() - start
            if vot.overlap(region, truth[frame], size) <= 0.0:
                regions[frame] = vot.Region.special(vot.FAILURE)
                frame += skip_initialize
                break
            regions[frame] = region
            frame += 1
    return regions, times


def run_one_pass(tracker, sequence, read_image, frames, where=""):
    """Initialise at ``frames[0]`` and track the others in that order -> (regions, seconds per frame)."""
    from mimtrack.evaluation import vot

    regions, times = [vot.Region.special(vot.INITIALIZATION)], []
    for k, index in enumerate(frames):
        image = read_image(sequence.frames[index])
        start = time.perf_counter()
        if k == 0:
            _initialize(tracker, image, sequence.info["regions"][index], f"{where} frame {index + 1}")
        else:
            regions.append(vot.Region.rectangle(*tracker.track(image)["box"]))
        times.append(time.perf_counter() - start)
    return regions, times


def _same_runs(paths):
    texts = []
    for path in paths:
        with open(path) as f:
            texts.append(f.read())
    return all(t == texts[0] for t in texts[1:])


def track_sequence(tracker, sequence, folder, protocol, stack, read_image):
    """Run the protocol's missing runs of one sequence; returns the number of frames tracked."""
    from mimtrack.evaluation import vot

    name, n = sequence.name, len(sequence)
    where = f"vot sequence {name}"
    tracked = 0
    if protocol == "vot-multistart":
        forward, backward = vot.find_anchors(sequence.labels.get("anchor", ()))
        if not forward and not backward:
            raise UserError(f"{where}: no anchor frames (anchor.value) for vot-multistart")
        for anchor, reverse in [(f, False) for f in forward] + [(b, True) for b in backward]:
            path = os.path.join(folder, f"{name}_{anchor:08d}.txt")
            if os.path.isfile(path):
                continue
            frames = list(range(anchor, -1, -1)) if reverse else list(range(anchor, n))
            _write_run(path, *run_one_pass(tracker, sequence, read_image, frames, where))
            tracked += len(frames)
        return tracked
    repetitions = stack.repetitions if protocol == "vot-baseline" else 1
    done = []
    for repetition in range(1, repetitions + 1):
        path = os.path.join(folder, f"{name}_{repetition:03d}.txt")
        if not os.path.isfile(path):
            if len(done) >= EARLY_STOP_REPETITIONS and _same_runs(done):
                break
            if protocol == "vot-baseline":
                run = run_supervised(tracker, sequence, read_image, stack.skip_initialize, where)
            else:
                run = run_one_pass(tracker, sequence, read_image, list(range(n)), where)
            _write_run(path, *run)
            tracked += n
        done.append(path)
    return tracked


def track_vot(tracker, sequences, results_dir, protocol, stack, read_image=None, progress=None):
    """Run ``protocol`` over ``sequences``; returns frames tracked. ``read_image(path)`` defaults to RGB reading."""
    from mimtrack.evaluation import vot

    if read_image is None:
        from mimtrack.images import read_image_rgb as read_image
    experiment = vot.EXPERIMENT_FOLDERS[protocol]
    total = 0
    for sequence in sequences:
        if sequence.info.get("size") is None:
            raise UserError(f"vot sequence {sequence.name}: no frames found under {sequence.info['folder']}")
        folder = os.path.join(results_dir, experiment, sequence.name)
        total += track_sequence(tracker, sequence, folder, protocol, stack, read_image)
        if progress is not None:
            progress(sequence.name)
    return total


def run(args, tracker_args):
    """The ``mimtrack track --protocol vot-*`` branch of tracker.runner.run."""
    from tqdm import tqdm

    from mimtrack.evaluation import vot
    from mimtrack.evaluation.datasets import load_dataset
    from mimtrack.tracker.inference import load_tracker

    if args.dataset.lower() != "vot":
        raise UserError(f"--protocol {args.protocol}: only for --dataset vot")
    if args.workers != 1:
        raise UserError(f"--workers {args.workers}: the VOT protocols run in one process")
    stack = vot.get_stack(args.protocol, args.stack)
    sequences = load_dataset("vot", args.root, split=args.split, sequences=args.sequences)
    tracker = load_tracker(**tracker_args)
    start = time.perf_counter()
    with tqdm(total=len(sequences), unit="sequence", desc=args.protocol, disable=None) as bar:
        def advance(name):
            bar.update(1)
            bar.set_postfix_str(name)
        frames = track_vot(tracker, sequences, args.results, args.protocol, stack, progress=advance)
    seconds = time.perf_counter() - start
    experiment = os.path.join(args.results, vot.EXPERIMENT_FOLDERS[args.protocol])
    rate = f", {frames / seconds:.1f} frames/s" if frames else ""
    print(f"{args.protocol} ({stack.name} rules): tracked {frames} frames in {len(sequences)} sequences{rate}; "
          f"results in {experiment}")
    return 0
