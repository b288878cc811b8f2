"""``mimtrack eval``: score result folders of one or more trackers on a benchmark.

    mimtrack eval --dataset lasot --root data/lasot --results results/ours results/ostrack \\
        [--names Ours OSTrack] [--protocol official] [--json scores.json] [--plots plots/] [--attributes] [--ci]

Everything is computed before anything is written: on bad input (a malformed
row, a wrong row count, a missing sequence) the command fails with one line and
leaves no JSON or plot behind.
"""

import collections
import multiprocessing
import os

from mimtrack.errors import UserError

PROTOCOL_NAMES = ("official", "pytracking", "got10k", "trackingnet")
DEFAULT_RESAMPLES = 10_000  # evaluation.bootstrap.DEFAULT_RESAMPLES (not imported: --help stays light)
VOT_PROTOCOL_NAMES = ("vot-baseline", "vot-multistart", "vot-unsupervised")   # --dataset vot (evaluation.vot_cli)
# Below this many result files in all (sequences x trackers), worker processes cost more than they save.
_PARALLEL_MIN_FILES = 200
_PARTS_PER_WORKER = 4
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc malloc.h mallopt parameters


def add_arguments(parser):
    parser.add_argument("--dataset", required=True, help="benchmark name (lasot, got10k, otb, ...)")
    parser.add_argument("--root", required=True, help="dataset root folder (annotation files suffice)")
    parser.add_argument("--split", help="split to evaluate (default: the benchmark's test/val split)")
    parser.add_argument("--sequences", nargs="+", metavar="NAME", help="evaluate only these sequences")
    parser.add_argument("--results", nargs="+", required=True, metavar="DIR",
                        help="result folders, one per tracker (<seq>.txt or <seq>/<seq>_001.txt)")
    parser.add_argument("--names", nargs="+", metavar="NAME",
                        help="tracker names, one per --results folder (default: the folder names)")
    parser.add_argument("--protocol", choices=PROTOCOL_NAMES + VOT_PROTOCOL_NAMES,
                        help="scoring rules (default: got10k for GOT-10k, else official = LaSOT toolkit; "
                        "vot-* for --dataset vot)")
    parser.add_argument("--json", metavar="OUT", help="write all scores (fractions) to this JSON file")
    parser.add_argument("--plots", metavar="DIR", help="write success / precision plots (PNG) here")
    parser.add_argument("--skip-missing", action="store_true",
                        help="evaluate only the sequences every tracker has results for")
    parser.add_argument("--attributes", action="store_true", help="also print AUC per sequence attribute")
    parser.add_argument("--ci", action="store_true",
                        help="bootstrap over sequences: confidence intervals of every overall number and paired "
                             "tests of the AUC (AO) differences between trackers (evaluation/bootstrap.py)")
    parser.add_argument("--ci-resamples", type=int, default=DEFAULT_RESAMPLES, metavar="N",
                        help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--ci-seed", type=int, default=0, help="seed of the resampling (default: %(default)s)")
    parser.add_argument("--ci-level", type=float, default=0.95, help="interval level (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="processes reading and scoring trackers in parallel (default: %(default)s)")
    from mimtrack.evaluation import vot_cli

    vot_cli.add_arguments(parser)


def tracker_names(results_dirs, names=None):
    """Display names: ``names`` if given (one per folder), else the folder names."""
    if names is not None:
        if len(names) != len(results_dirs):
            raise UserError(f"--names: {len(names)} names for {len(results_dirs)} --results folders")
        chosen = list(names)
    else:
        chosen = [os.path.basename(os.path.normpath(d)) for d in results_dirs]
    duplicates = sorted({n for n in chosen if chosen.count(n) > 1})
    if duplicates:
        raise UserError(f"tracker name(s) {', '.join(duplicates)} given twice; use --names to tell them apart")
    return chosen


# What the parent keeps of a sequence a worker read (all report.attribute_scores needs).
SequenceFacts = collections.namedtuple("SequenceFacts", "name attributes")

# The evaluation, shared with forked workers (not pickled: only the names of a part go to a worker).
_JOB = {}


def _score_part(names):
    """Read the ground truth of the named sequences and every tracker's results for them, and score them.

    Returns ([SequenceFacts], [(missing names, Scores or None) per results folder]).
    """
    from mimtrack.evaluation.datasets import load_sequences
    from mimtrack.evaluation.results import load_results, load_times

    job = _JOB
    sequences = load_sequences(job["dataset"], job["root"], job["split"], names)
    scored = []
    for results_dir in job["results_dirs"]:
        results, missing = load_results(results_dir, sequences, skip_missing=True)
        present = [s for s in sequences if s.name in results]
        times = load_times(results_dir, present) if job["with_times"] and present else None
        scored.append((missing, job["protocol"].evaluate(present, results, times) if present else None))
    return [SequenceFacts(s.name, s.attributes) for s in sequences], scored


def _start_worker(parent_pid):
    """Pool initializer: tie the worker to its parent, and let glibc malloc keep the memory numpy frees.

    By default glibc serves each block over 128 KiB with a fresh mmap (and trims the heap top on free), so
    every large numpy temporary costs page faults on first touch: a third of a worker's time here. A worker
    lives for one command, so it keeps freed blocks for reuse instead (no effect on other C libraries).
    """
    from mimtrack.processes import die_with_parent

    die_with_parent(parent_pid)
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest threshold (64-bit)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def score_trackers(results_dirs, dataset, root, split, names, protocol, skip_missing=False, workers=1):
    """Score every results folder on the named sequences (datasets.present_names).

    Returns ([SequenceFacts] in the order of ``names``, [(missing names, Scores)] per folder). With
    ``workers`` > 1 the sequences are dealt into parts that forked processes read (ground truth and
    results) and score; the per-sequence states of the parts are then summarised once, in the order of
    ``names``. Every protocol scores each sequence on its own, so the numbers do not depend on the parts.
    """
    from mimtrack.evaluation.results import missing_error

    results_dirs = list(results_dirs)
    _JOB.update(dataset=dataset, root=root, split=split, results_dirs=results_dirs, protocol=protocol,
                with_times=dataset == "got10k")
    workers = min(workers, len(names))
    if workers <= 1 or len(names) * len(results_dirs) < _PARALLEL_MIN_FILES or \
            "fork" not in multiprocessing.get_all_start_methods():
        parts = [_score_part(names)]
    else:
        # fork: the workers inherit _JOB and the imports; they import nothing heavy (no torch threads to break).
        # Interleaved parts, several per worker, even out the work (sequence lengths vary 10x).
        n_parts = min(len(names), _PARTS_PER_WORKER * workers)
        with multiprocessing.get_context("fork").Pool(workers, _start_worker, (os.getpid(),)) as pool:
            parts = pool.map(_score_part, [names[i::n_parts] for i in range(n_parts)], chunksize=1)
    facts = {f.name: f for part_facts, _ in parts for f in part_facts}
    scored = []
    for index, results_dir in enumerate(results_dirs):
        per_part = [part_scored[index] for _, part_scored in parts]
        missing_names = {name for missing, _ in per_part for name in missing}
        missing = [name for name in names if name in missing_names]
        if missing and not skip_missing:
            raise missing_error(results_dir, missing, len(names))
        part_scores = [scores for _, scores in per_part if scores is not None]
        if not part_scores:
            raise UserError(f"{results_dir}: no results for any of the {len(names)} sequences")
        if len(part_scores) == 1:
            scores = part_scores[0]
        else:
            states = {}
            for part in part_scores:
                states.update(part.sequence_states)
            scores = part_scores[0].protocol.summarise({n: states[n] for n in names if n in states})
        scored.append((missing, scores))
    return [facts[n] for n in names], scored


def evaluate(args):
    """Load, score and render everything; returns (text to print, {path: bytes to write})."""
    from mimtrack.evaluation import report
    from mimtrack.evaluation.datasets import default_split, present_names, split_names
    from mimtrack.evaluation.protocols import get_protocol

    names = tracker_names(args.results, args.names)
    if args.dataset == "vot" or (args.protocol or "").startswith("vot-"):
        from mimtrack.evaluation import vot_cli

        if args.dataset != "vot":
            raise UserError(f"--protocol {args.protocol}: only for --dataset vot")
        return vot_cli.evaluate(args, names)
    split = args.split or default_split(args.dataset)
    listed = present_names(args.dataset, args.root, split, args.sequences)
    protocol = get_protocol(args.protocol or ("got10k" if args.dataset == "got10k" else "official"))
    sequences, scored = score_trackers(args.results, args.dataset, args.root, split, listed, protocol,
                                       args.skip_missing, max(1, args.workers))

    # --skip-missing: a sequence missing for one tracker is dropped for all of them.
    missing = {name for tracker_missing, _ in scored for name in tracker_missing}
    kept = [s for s in sequences if s.name not in missing]
    if not kept:
        raise UserError("no sequence has results from every tracker")
    kept_names = [s.name for s in kept]
    scores = {}
    for name, (tracker_missing, s) in zip(names, scored):
        scores[name] = s.subset(kept_names) if len(tracker_missing) < len(missing) else s

    lines = [f"{report.DATASET_TITLES.get(args.dataset, args.dataset)} {split}, protocol {protocol.name}: "
             f"{len(kept)} sequences"]
    official = set(split_names(args.dataset, split, args.root))
    unofficial = [s.name for s in kept if s.name not in official]
    if unofficial:
        # A root in the benchmark's layout holding other sequences (e.g. make-synthetic data): no subset to report.
        lines.append(f"note: {len(unofficial)} of the sequences are not in the official {args.dataset} {split} list")
    elif len(kept) < len(official):
        lines.append(f"note: evaluated {len(kept)} of {len(official)} sequences of the {args.dataset} {split} split")
    if missing:
        shown = ", ".join(sorted(missing)[:5]) + (", ..." if len(missing) > 5 else "")
        lines.append(f"note: skipped {len(missing)} sequence(s) without results from every tracker ({shown})")
    comparison = None
    if args.ci:
        from mimtrack.evaluation.bootstrap import compare

        keys = [key for key, _ in report.columns_of(scores)]
        comparison = compare(scores, keys, keys[0], args.ci_resamples, args.ci_seed, args.ci_level)
    text = "\n".join(lines) + "\n\n" + report.format_table(scores, intervals=comparison and comparison["intervals"])
    if comparison and len(scores) > 1:
        text += "\n" + report.format_differences(comparison)
    if args.attributes:
        by_attribute = report.attribute_scores(scores, kept)
        key = "ao" if report.columns_of(scores) == report.GOT10K_COLUMNS else "auc"
        text += "\n" + (report.format_attribute_table(by_attribute, key)
                        or "(no sequence attributes found for this dataset)\n")

    outputs = {}
    if args.json:
        outputs[args.json] = report.to_json(scores, comparison).encode()
    if args.plots:
        for file_name, png in report.render_plots(scores, args.dataset).items():
            outputs[os.path.join(args.plots, file_name)] = png
    return text, outputs


def run(args):
    from mimtrack.evaluation.report import write_bytes
    from mimtrack.fileio import check_output_path

    if args.json:
        check_output_path(args.json, "--json")   # before reading and scoring every result file
    if args.plots and os.path.exists(args.plots) and not os.path.isdir(args.plots):
        raise UserError(f"--plots {args.plots}: is a file; give a folder")
    text, outputs = evaluate(args)
    for path, data in outputs.items():
        write_bytes(path, data)
    print(text, end="")
    for path in outputs:
        print(f"wrote {path}")
    return 0
