"""``mimtrack eval --dataset vot --protocol vot-baseline|vot-multistart|vot-unsupervised``.

    mimtrack eval --dataset vot --root WS/sequences --results WS/results/MyTracker WS/results/Other \\
        --protocol vot-baseline [--stack vot2018] [--eao-interval 100 356] [--json s.json] [--plots plots/]

A results folder is one tracker's folder of a vot-toolkit workspace: ``<experiment>/<seq>/<seq>_001.txt`` ...
(baseline and unsupervised repetitions) or ``<experiment>/<seq>/<seq>_<anchor:08d>.txt`` (multistart), where
``<experiment>`` is the stack's experiment name: ``baseline`` (vot-baseline, vot-multistart) or ``unsupervised``.
"""

import io
import json
import math
import os

from mimtrack.evaluation import vot
from mimtrack.evaluation.report import _layout
from mimtrack.errors import UserError

# (key, header, format) per protocol; fractions except the failure count.
COLUMNS = {
    "vot-baseline": (("eao", "EAO", "{:.4f}"), ("accuracy", "A", "{:.4f}"), ("failures", "Failures", "{:.3f}"),
                     ("ar_robustness", "R (AR)", "{:.4f}")),
    "vot-multistart": (("eao", "EAO", "{:.4f}"), ("accuracy", "A", "{:.4f}"), ("robustness", "R", "{:.4f}")),
    "vot-unsupervised": (("average_accuracy", "Average accuracy", "{:.4f}"),),
}


def add_arguments(parser):
    """The VOT options of ``mimtrack eval`` (used with ``--protocol vot-...``)."""
    parser.add_argument("--stack", choices=list(vot.STACKS),
                        help="VOT stack whose parameters apply (default: vot2018 for vot-baseline, vot2022 else)")
    parser.add_argument("--eao-interval", nargs=2, type=int, metavar=("LOW", "HIGH"),
                        help="EAO sequence-length interval (default: the stack's, e.g. 100 356 for vot2018)")
    parser.add_argument("--experiment", help="experiment folder in each results folder "
                        "(default: baseline, or unsupervised for vot-unsupervised)")


def _trajectory_files(results_dir, experiment, sequence, protocol, stack):
    """[(key, path)] of one sequence's result files: repetition numbers, or anchor frames for multistart."""
    folder = os.path.join(results_dir, experiment, sequence.name)
    if protocol == "vot-multistart":
        forward, backward = vot.find_anchors(sequence.labels.get("anchor", ()))
        return [(k, os.path.join(folder, f"{sequence.name}_{k:08d}.txt")) for k in forward + backward]
    repetitions = stack.repetitions if protocol == "vot-baseline" else 1
    return [(i, os.path.join(folder, f"{sequence.name}_{i:03d}.txt")) for i in range(1, repetitions + 1)]


def load_trajectories(results_dir, experiment, sequences, protocol, stack, skip_missing=False):
    """(trajectories in the shape vot.score_* takes, names of sequences without results).

    Like the toolkit, every existing repetition counts (at least one is needed) and multistart needs every anchor.
    """
    trajectories, missing = {}, []
    for sequence in sequences:
        files = _trajectory_files(results_dir, experiment, sequence, protocol, stack)
        present = [(k, p) for k, p in files if os.path.isfile(p)]
        complete = len(present) == len(files) if protocol == "vot-multistart" else bool(present)
        if not complete:
            if skip_missing:
                missing.append(sequence.name)
                continue
            absent = next(p for k, p in files if not os.path.isfile(p))
            raise UserError(f"{absent}: file not found (results of sequence {sequence.name})")
        runs = [(p, vot.read_regions(p)) for _, p in present]
        if protocol == "vot-multistart":
            trajectories[sequence.name] = {k: run for (k, _), run in zip(present, runs)}
        else:
            trajectories[sequence.name] = runs
    return trajectories, missing


SCORERS = {"vot-baseline": vot.score_baseline, "vot-multistart": vot.score_multistart,
           "vot-unsupervised": vot.score_unsupervised}


def score(results_dirs, sequences, protocol, stack, experiment=None, skip_missing=False):
    """[(missing sequence names, VOTScores)] per results folder."""
    experiment = experiment or vot.EXPERIMENT_FOLDERS[protocol]
    loaded = [load_trajectories(d, experiment, sequences, protocol, stack, skip_missing) for d in results_dirs]
    missing = {name for _, m in loaded for name in m}
    kept = [s for s in sequences if s.name not in missing]
    if not kept:
        raise UserError("no sequence has results from every tracker")
    return [SCORERS[protocol](kept, trajectories, stack) for trajectories, _ in loaded], sorted(missing), kept


def format_table(protocol, scores):
    columns = COLUMNS[protocol]
    rows = [[name] + [fmt.format(s.overall[key]) for key, _, fmt in columns] for name, s in scores.items()]
    return _layout(["Tracker"] + [header for _, header, _ in columns], rows)


def _finite_or_none(values):
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}


def to_json(scores):
    """``{tracker: {"overall", "per_sequence", "eao_curve"}}``; an undefined EAO is null."""
    data = {name: {"overall": _finite_or_none(s.overall), "per_sequence": s.per_sequence,
                   **({"eao_curve": [float(v) for v in s.eao_curve]} if s.eao_curve is not None else {})}
            for name, s in scores.items()}
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def render_plots(protocol, scores, stack):
    """{file name: PNG}: the EAO curve with the interval shaded, and the AR plot (robustness, accuracy)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    images = {}
    if protocol == "vot-unsupervised":
        return images

    def save(figure, name):
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        images[name] = buffer.getvalue()

    ranked = sorted(scores.items(), key=lambda item: -item[1].overall["eao"])
    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, s in ranked:
        axes.plot(range(len(s.eao_curve)), s.eao_curve, linewidth=2, label=f"[{s.overall['eao']:.3f}] {name}")
    axes.axvspan(stack.eao_low, stack.eao_high, color="0.9", zorder=0)
    axes.set_ylim(0, 1)
    axes.grid(True, linestyle=":")
    axes.set_title(f"Expected average overlap ({stack.name}, {protocol})")
    axes.set_xlabel("Sequence length")
    axes.set_ylabel("Expected average overlap")
    axes.legend(loc="upper right", fontsize="small")
    save(figure, "eao_curve.png")

    figure = Figure(figsize=(4.8, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    robustness_key = "ar_robustness" if protocol == "vot-baseline" else "robustness"
    for name, s in ranked:
        axes.plot(s.overall[robustness_key], s.overall["accuracy"], "o", markersize=8, label=name)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.grid(True, linestyle=":")
    axes.set_title(f"AR plot ({stack.name}, {protocol})")
    axes.set_xlabel("Robustness" + (" exp(-S F / L)" if protocol == "vot-baseline" else ""))
    axes.set_ylabel("Accuracy")
    axes.legend(loc="lower left", fontsize="small")
    save(figure, "ar_plot.png")
    return images


def evaluate(args, names):
    """(text, {path: bytes}) for ``mimtrack eval --dataset vot``."""
    from mimtrack.evaluation.datasets import load_dataset

    if args.protocol not in vot.PROTOCOLS:
        raise UserError(f"--dataset vot: choose --protocol {' | '.join(vot.PROTOCOLS)}")
    stack = vot.get_stack(args.protocol, args.stack, args.eao_interval)
    sequences = load_dataset("vot", args.root, args.split, args.sequences)
    scored, missing, kept = score(args.results, sequences, args.protocol, stack, args.experiment,
                                  args.skip_missing)
    scores = dict(zip(names, scored))
    interval = f", EAO interval {stack.eao_low}..{stack.eao_high}" if args.protocol != "vot-unsupervised" else ""
    lines = [f"VOT {args.protocol} ({stack.name} parameters{interval}): {len(kept)} sequences"]
    for name, s in scores.items():
        if math.isnan(s.overall.get("eao", 0.0)):
            lines.append(f"note: {name}: EAO undefined, its EAO curve ({len(s.eao_curve)} frames) ends before "
                         f"the interval's low end {stack.eao_low}")
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        lines.append(f"note: skipped {len(missing)} sequence(s) without results from every tracker ({shown})")
    text = "\n".join(lines) + "\n\n" + format_table(args.protocol, scores)
    outputs = {}
    if args.json:
        outputs[args.json] = to_json(scores).encode()
    if args.plots:
        for file_name, png in render_plots(args.protocol, scores, stack).items():
            outputs[os.path.join(args.plots, file_name)] = png
    return text, outputs
