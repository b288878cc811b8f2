"""``mimtrack track``: run a tracker over a benchmark and write the result files the toolkits read.

Layouts (what ``mimtrack.evaluation.results`` reads and the servers accept):
- one-pass (OPE) datasets: ``<results>/<seq>.txt`` (x,y,w,h per frame, comma, ``%.4f``) + ``<seq>_time.txt``;
- GOT-10k: ``<results>/<seq>/<seq>_001.txt`` + ``<results>/<seq>/<seq>_time.txt``.
Row 1 is the initial box. Times are the seconds the tracker spent on each frame (initialize, then track; frame
reading excluded). A sequence whose two files are complete (one parseable row per frame) is finished and skipped,
so an interrupted run resumes; a truncated or garbage file is tracked again.
"""

import concurrent.futures
import multiprocessing
import os
import time

import numpy as np

from mimtrack.errors import UserError
from mimtrack.fileio import write_text_atomic
from mimtrack.processes import start_worker, terminate_pool

# Test splits whose ground truth is withheld: after tracking them we pack the server submission zip.
SUBMISSION_PACKERS = {("got10k", "test"): "pack_got10k", ("trackingnet", "test"): "pack_trackingnet"}


def add_arguments(parser):
    parser.add_argument("--config", help="tracker recipe: a name in experiments/tracking or a YAML path "
                        "(with --checkpoint; both absent: the bundled demo tracker)")
    parser.add_argument("--checkpoint", help="tracker checkpoint (.pth); absent with --config: untrained weights")
    parser.add_argument("--dataset", required=True, help="benchmark name (otb, lasot, got10k, trackingnet, ...)")
    parser.add_argument("--root", required=True, help="the dataset's root folder")
    parser.add_argument("--split", help="dataset split (default: the dataset's evaluation split)")
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help="track only these sequences")
    parser.add_argument("--results", required=True, help="folder for the result files")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: the recipe's inference.device)")
    from mimtrack.tracker.backends import add_arguments as add_backend_arguments

    add_backend_arguments(parser, default_threads="the physical cores, split between --workers")
    parser.add_argument("--workers", type=int, default=1,
                        help="track N sequences at once in N processes (torch threads are split between them)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value, e.g. --set inference.hann_window=false (repeatable)")
    parser.add_argument("--protocol", choices=("vot-baseline", "vot-multistart", "vot-unsupervised"),
                        help="--dataset vot: run with the VOT toolkit's rules (restarts after failures, anchors) "
                        "into <results>/baseline|unsupervised/ (tracker.vot_runner)")
    parser.add_argument("--stack", help="--protocol vot-*: the VOT stack whose rules apply "
                        "(default vot2018 for vot-baseline, vot2022 else)")


def result_paths(results_dir, dataset, name):
    """(boxes file, times file) of sequence ``name``."""
    if dataset == "got10k":
        folder = os.path.join(results_dir, name)
        return os.path.join(folder, f"{name}_001.txt"), os.path.join(folder, f"{name}_time.txt")
    return os.path.join(results_dir, f"{name}.txt"), os.path.join(results_dir, f"{name}_time.txt")


def is_finished(results_dir, dataset, name, n_frames):
    """True when both result files of ``name`` are complete: parseable, one row per frame (boxes: 4 columns)."""
    from mimtrack.evaluation.textfiles import read_boxes, read_table

    boxes_path, times_path = result_paths(results_dir, dataset, name)
    if not (os.path.isfile(boxes_path) and os.path.isfile(times_path)):
        return False
    try:
        return len(read_boxes(boxes_path)) == n_frames and read_table(times_path, columns=1).shape == (n_frames, 1)
    except UserError:   # truncated, empty or not numbers: redo it
        return False


def track_frames(tracker, frames, init_box, where=""):
    """Run ``tracker`` over the image files ``frames`` from ``init_box`` -> (boxes (N, 4), seconds per frame (N,))."""
    from mimtrack.images import read_image_rgb

    boxes = np.zeros((len(frames), 4))
    times = np.zeros(len(frames))
    for i, path in enumerate(frames):
        image = read_image_rgb(path)
        start = time.perf_counter()
        if i == 0:
            try:
                tracker.initialize(image, init_box)
            except UserError as exc:
                raise UserError(f"{where}: {exc}") from None
            boxes[0] = init_box
        else:
            boxes[i] = tracker.track(image)["box"]
        times[i] = time.perf_counter() - start
    return boxes, times


def run_job(tracker, job, results_dir, dataset):
    """Track one sequence and write its files (times first: the boxes file marks a finished sequence)."""
    name, frames, init_box = job
    boxes, times = track_frames(tracker, frames, init_box, where=f"{dataset} sequence {name}")
    boxes_path, times_path = result_paths(results_dir, dataset, name)
    write_text_atomic(times_path, "".join(f"{t:.6f}\n" for t in times))
    write_text_atomic(boxes_path, "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in boxes))
    return name, len(frames), float(times.sum())


# Worker processes: each builds its own tracker once, then tracks the sequences it is sent.
_WORKER_TRACKER = None


def _init_worker(tracker_args, threads):
    import torch

    from mimtrack.tracker.inference import load_tracker

    global _WORKER_TRACKER
    torch.set_num_threads(threads)
    _WORKER_TRACKER = load_tracker(**dict(tracker_args, threads=threads))


def _run_in_worker(job, results_dir, dataset):
    return run_job(_WORKER_TRACKER, job, results_dir, dataset)


def make_jobs(sequences):
    """Picklable (name, frame paths, initial box) per sequence; UserError when frames are missing."""
    jobs = []
    for seq in sequences:
        frames = list(seq.frames)
        if not frames:
            raise UserError(f"{seq.dataset} sequence {seq.name}: no frames found")
        missing = next((p for p in (frames[0], frames[-1]) if not os.path.isfile(p)), None)
        if missing:
            raise UserError(f"{seq.dataset} sequence {seq.name}: frame {missing} not found (is --root the "
                            f"folder with the images?)")
        jobs.append((seq.name, frames, [float(v) for v in seq.ground_truth[0]]))
    return jobs


def track_dataset(tracker_args, sequences, results_dir, dataset, workers=1):
    """Track the unfinished ``sequences``; returns (tracked jobs' (name, frames, seconds), number skipped)."""
    import torch
    from tqdm import tqdm

    from mimtrack.tracker.inference import load_tracker

    todo = [s for s in sequences if not is_finished(results_dir, dataset, s.name, len(s.frames))]
    skipped = len(sequences) - len(todo)
    if not todo:
        return [], skipped
    jobs = make_jobs(todo)
    tracker = load_tracker(**tracker_args)   # also validates config/checkpoint before any worker starts
    done = []
    with tqdm(total=sum(len(j[1]) for j in jobs), unit="frame", desc="tracking", disable=None) as bar:
        if workers <= 1 or len(jobs) == 1:
            for job in jobs:
                done.append(run_job(tracker, job, results_dir, dataset))
                bar.update(len(job[1]))
                bar.set_postfix_str(job[0])
            return done, skipped
        del tracker
        threads = tracker_args["threads"] or max(1, torch.get_num_threads() // workers)
        context = multiprocessing.get_context("spawn")   # fork + torch threads can deadlock
        # start_worker: a killed `mimtrack track` takes its workers with it, even while they start
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=start_worker,
                                                    initargs=(os.getpid(), "mimtrack.tracker.runner:_init_worker",
                                                              tracker_args, threads)) as pool:
            futures = [pool.submit(_run_in_worker, job, results_dir, dataset) for job in jobs]
            try:
                for future in concurrent.futures.as_completed(futures):
                    done.append(future.result())
                    bar.update(done[-1][1])
                    bar.set_postfix_str(done[-1][0])
            except BaseException:    # Ctrl-C, SIGTERM (Stopped) or a failed sequence: end the workers now
                terminate_pool(pool)
                raise
    return done, skipped


def pack_submission(dataset, results_dir, sequences):
    """Zip a withheld-ground-truth test split for its evaluation server: ``<results>.zip``."""
    from mimtrack.evaluation import submit

    out_zip = os.path.normpath(os.path.abspath(results_dir)) + ".zip"
    getattr(submit, SUBMISSION_PACKERS[dataset, "test"])(results_dir, out_zip, sequences)
    return out_zip


def run(args):
    from mimtrack.evaluation.datasets import default_split, load_dataset

    if args.workers < 1:
        raise UserError(f"--workers {args.workers}: must be >= 1")
    if not os.path.isdir(args.root):
        raise UserError(f"--root {args.root}: folder not found")
    tracker_args = dict(config=args.config, checkpoint=args.checkpoint, device=args.device,
                        overrides=args.overrides, backend=args.backend, threads=args.threads,
                        precision=args.precision, calibration=args.calibration)
    if args.config is None and args.checkpoint is None:
        from mimtrack.tracker.checkpoints import DEMO_WEIGHTS, NO_DEMO_WEIGHTS
        if not DEMO_WEIGHTS.is_file():
            raise UserError(NO_DEMO_WEIGHTS)

    if args.protocol or args.dataset.lower() == "vot":
        from mimtrack.tracker import vot_runner

        if args.protocol is None:
            raise UserError("--dataset vot: choose --protocol vot-baseline | vot-multistart | vot-unsupervised")
        return vot_runner.run(args, tracker_args)
    sequences = load_dataset(args.dataset, args.root, split=args.split, sequences=args.sequences)
    dataset = sequences[0].dataset if sequences else args.dataset.lower()
    split = args.split or default_split(dataset)
    start = time.perf_counter()
    done, skipped = track_dataset(tracker_args, sequences, args.results, dataset, workers=args.workers)
    frames = sum(n for _, n, _ in done)
    tracker_seconds = sum(s for _, _, s in done)
    line = f"tracked {len(done)} sequences ({frames} frames"
    if frames:
        line += f", tracker {frames / max(tracker_seconds, 1e-9):.1f} frames/s per process, " \
                f"{frames / (time.perf_counter() - start):.1f} frames/s overall"
    line += f"), skipped {skipped} already finished; results in {args.results}"
    print(line)

    if (dataset, split) in SUBMISSION_PACKERS and not args.sequences:
        out_zip = pack_submission(dataset, args.results, sequences)
        print(f"submission: {out_zip}")
    return 0
