"""What ``mimtrack eval`` shows and writes: score tables, per-attribute tables, plots, JSON.

Every function here takes ``scores``: an ordered dict tracker name -> Scores
(evaluation.protocols). Tables print percent with 2 decimals; JSON keeps
fractions. Plots follow the LaSOT-matlab toolkit: legend "[0.xxx] Name"
sorted by score, "Success plots of OPE on LaSOT" titles. Rendering is kept
apart from writing so that a caller can build every output before writing any.
"""

import io
import json

import numpy as np

from mimtrack.fileio import atomic_write

DATASET_TITLES = {"lasot": "LaSOT", "lasot_ext": "LaSOT-ext", "got10k": "GOT-10k", "trackingnet": "TrackingNet",
                  "otb": "OTB100", "uav123": "UAV123", "uav20l": "UAV20L", "nfs": "NfS", "tnl2k": "TNL2K"}

# (key in Scores.overall, column header): OPE benchmarks, and GOT-10k under its own protocol.
OPE_COLUMNS = (("auc", "AUC"), ("op50", "OP50"), ("op75", "OP75"), ("precision", "P@20"),
               ("norm_precision", "NP@0.20"))
GOT10K_COLUMNS = (("ao", "AO"), ("sr50", "SR0.5"), ("sr75", "SR0.75"))

# curve name -> (title prefix, x label, y label, overall key ranking the legend)
PLOTS = {
    "success": ("Success plots", "Overlap threshold", "Success rate", "auc"),
    "precision": ("Precision plots", "Location error threshold", "Precision", "precision"),
    "norm_precision": ("Normalized Precision plots", "Normalized location error threshold",
                       "Normalized precision", "norm_precision"),
}


def columns_of(scores):
    """The table columns for these scores (AO/SR when they hold GOT-10k numbers)."""
    overall = next(iter(scores.values())).overall
    return GOT10K_COLUMNS if "ao" in overall else OPE_COLUMNS


def format_table(scores, first_header="Tracker", intervals=None):
    """One row per tracker, scores in percent with 2 decimals.

    intervals ({tracker: {key: (low, high)}}, evaluation.bootstrap): cells become
    ``57.1 [55.2, 59.0]`` (1 decimal).
    """
    columns = columns_of(scores)

    def cell(name, key):
        value = 100 * scores[name].overall[key]
        if intervals is None:
            return f"{value:.2f}"
        low, high = (100 * v for v in intervals[name][key])
        return f"{value:.1f} [{low:.1f}, {high:.1f}]"

    rows = [[name] + [cell(name, key) for key, _ in columns] for name in scores]
    return _layout([first_header] + [header for _, header in columns], rows)


def format_differences(comparison):
    """The paired bootstrap of evaluation.bootstrap.compare as two matrices (row minus column)."""
    settings, differences = comparison["settings"], comparison["differences"]
    trackers = list(comparison["intervals"])
    headline = dict(OPE_COLUMNS + GOT10K_COLUMNS)[settings["headline"]]
    rows, p_rows = [], []
    for i, a in enumerate(trackers[:-1]):
        row, p_row = [a], [a]
        for j, b in enumerate(trackers[1:], start=1):
            if j <= i:
                row.append("")
                p_row.append("")
                continue
            d = differences[(a, b)]
            low, high = (100 * v for v in d["interval"])
            row.append(f"{100 * d['difference']:+.1f} [{low:.1f}, {high:.1f}]")
            p_row.append("<0.001" if d["p_value"] < 0.001 else f"{d['p_value']:.3f}")
        rows.append(row)
        p_rows.append(p_row)
    level = f"{100 * settings['level']:g}%"
    header = [f"{headline} row - column"] + trackers[1:]
    return (f"{headline} difference, paired bootstrap over {settings['sequences']} sequences "
            f"({settings['resamples']} resamples, seed {settings['seed']}), {level} interval:\n"
            + _layout(header, rows) + "\nTwo-sided p-value of each difference:\n"
            + _layout([f"{headline} p-value"] + trackers[1:], p_rows))


def attribute_names(sequences):
    """The attributes of any sequence, in the dataset's order (each tuple follows it)."""
    names = []
    for sequence in sorted(sequences, key=lambda s: -len(s.attributes)):  # longest tuple first
        names.extend(a for a in sequence.attributes if a not in names)
    return names


def attribute_scores(scores, sequences):
    """{attribute: (number of sequences, {tracker: Scores of those sequences})}; {} without attributes."""
    table = {}
    for attribute in attribute_names(sequences):
        names = [s.name for s in sequences if attribute in s.attributes]
        table[attribute] = (len(names), {tracker: s.subset(names) for tracker, s in scores.items()})
    return table


def format_attribute_table(by_attribute, key="auc"):
    """AUC (or AO) per attribute (rows) and tracker (columns), percent."""
    if not by_attribute:
        return ""
    trackers = list(next(iter(by_attribute.values()))[1])
    rows = [[f"{attribute} ({count})"] + [f"{100 * per_tracker[t].overall[key]:.2f}" for t in trackers]
            for attribute, (count, per_tracker) in by_attribute.items()]
    return _layout([f"{key.upper()} by attribute"] + trackers, rows)


def _layout(header, rows):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    lines = []
    for row in [header] + rows:
        cells = [str(row[0]).ljust(widths[0])] + [str(c).rjust(w) for c, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines) + "\n"


def to_json(scores, comparison=None):
    """``{tracker: {"overall": {...}, "per_sequence": {seq: {...}}}}`` (fractions) as text.

    With ``comparison`` (evaluation.bootstrap.compare) each tracker also gets
    ``"ci": {"settings": {...}, "intervals": {key: [low, high]},
    "differences": {other tracker: {"difference", "interval", "p_value"}}}``
    (this tracker minus the other, for every other tracker).
    """
    data = {name: {"overall": s.overall, "per_sequence": s.per_sequence} for name, s in scores.items()}
    if comparison is not None:
        for name in scores:
            differences = {}
            for (a, b), d in comparison["differences"].items():
                if name in (a, b):
                    sign = 1 if name == a else -1
                    low, high = (sign * v for v in d["interval"])
                    differences[b if name == a else a] = {
                        "difference": sign * d["difference"], "interval": sorted([low, high]), "p_value": d["p_value"]}
            data[name]["ci"] = {"settings": comparison["settings"],
                                "intervals": {k: list(v) for k, v in comparison["intervals"][name].items()},
                                "differences": differences}
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def render_plots(scores, dataset):
    """{file name: PNG bytes} of the success / precision / normalized-precision plots."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    title_name = DATASET_TITLES.get(dataset, dataset)
    first = next(iter(scores.values()))
    images = {}
    for curve, (title, x_label, y_label, key) in PLOTS.items():
        if curve not in first.curves:
            continue
        if key not in first.overall:  # GOT-10k: the success curve is ranked by AO
            key = "ao"
        ranked = sorted(scores.items(), key=lambda item: -item[1].overall[key])
        figure = Figure(figsize=(6.4, 4.8), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        for name, s in ranked:
            axes.plot(s.thresholds[curve], s.curves[curve], linewidth=2,
                      label=f"[{s.overall[key]:.3f}] {name}")
        thresholds = np.asarray(first.thresholds[curve])
        axes.set_xlim(thresholds.min(), thresholds.max())
        axes.set_ylim(0, 1)
        axes.grid(True, linestyle=":")
        axes.set_title(f"{title} of OPE on {title_name}")
        axes.set_xlabel(x_label)
        axes.set_ylabel(y_label)
        axes.legend(loc="lower left" if curve == "success" else "lower right", fontsize="small")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        images[f"{curve}_plot.png"] = buffer.getvalue()
    return images


def write_bytes(path, data):
    """Write one output file atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)
