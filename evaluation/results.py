"""Reading a tracker's result files for a list of sequences.

Layouts accepted in ``results_dir``:
- ``<seq>.txt``: one run (OPE benchmarks; pytracking, got10k OTB-family, LaSOT-matlab).
- ``<seq>/<seq>_NNN.txt``: one file per run (GOT-10k: _001.._003), taken in name order.
Rows are x, y, w, h separated by commas, tabs or spaces, ints or floats (evaluation.textfiles).
Row counts are checked by the protocol, whose errors name the file.
Times: ``<seq>_time.txt``, ``<seq>/<seq>_time.txt`` or ``times/<seq>_time.txt`` (seconds per
frame; GOT-10k writes one column per run).
"""

import os
import re

import numpy as np

from mimtrack.errors import UserError

from .textfiles import read_table, read_tables


class ResultBoxes(np.ndarray):
    """An (M, 4) float64 box array that remembers the file it was read from (for error messages)."""

    path = None

    def __array_finalize__(self, obj):
        self.path = getattr(obj, "path", None)


def _as_result(boxes, path):
    boxes = boxes.view(ResultBoxes)
    boxes.path = path
    return boxes


def _run_files(folder, name):
    pattern = re.compile(re.escape(name) + r"_\d+\.txt")  # got10k globs '<seq>_[0-9]*.txt'
    return sorted(f for f in os.listdir(folder) if pattern.fullmatch(f))


def _result_paths(results_dir, entries, name):
    """The run files of one sequence, or [] when it has none."""
    if entries.get(name) is True:  # a folder <seq>/
        folder = os.path.join(results_dir, name)
        runs = _run_files(folder, name)
        if runs:
            return [os.path.join(folder, f) for f in runs]
    if entries.get(name + ".txt") is False:  # a file <seq>.txt
        return [os.path.join(results_dir, name + ".txt")]
    return []


def _list_dir(results_dir):
    if not os.path.isdir(results_dir):
        raise UserError(f"{results_dir}: results folder not found")
    with os.scandir(results_dir) as it:
        return {e.name: e.is_dir() for e in it}


def load_results(results_dir, sequences, skip_missing=False):
    """Read the runs of every sequence: returns ({name: [ResultBoxes (M, 4), ...]}, [missing names]).

    Missing sequences raise a UserError listing them unless ``skip_missing``; then
    they are returned so the caller can drop them for every tracker.
    """
    sequences = list(sequences)
    entries = _list_dir(results_dir)
    paths, missing = {}, []
    for sequence in sequences:
        paths[sequence.name] = _result_paths(results_dir, entries, sequence.name)
        if not paths[sequence.name]:
            missing.append(sequence.name)
    every_path = [p for runs in paths.values() for p in runs]
    tables = iter(read_tables(every_path, 4) if every_path else ())
    results = {name: [_as_result(next(tables), p) for p in runs] for name, runs in paths.items() if runs}
    if missing and not skip_missing:
        raise missing_error(results_dir, missing, len(sequences))
    return results, missing


def missing_error(results_dir, missing, n_sequences):
    """The UserError for sequences without results (``missing``: their names, in order)."""
    shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
    return UserError(f"{results_dir}: no results for {len(missing)} of {n_sequences} sequences ({shown}); "
                     "use --skip-missing to evaluate the sequences that have results")


def load_times(results_dir, sequences):
    """Per-frame tracking times in seconds: {name: 1-D array (all runs)} for the sequences that have a time file."""
    entries = _list_dir(results_dir)
    times = {}
    for sequence in sequences:
        name = sequence.name
        candidates = [
            os.path.join(results_dir, name + "_time.txt"),
            os.path.join(results_dir, "times", name + "_time.txt"),  # got10k OTB-family layout
        ]
        if entries.get(name) is True:
            candidates.insert(0, os.path.join(results_dir, name, name + "_time.txt"))
        for path in candidates:
            if os.path.isfile(path):
                times[name] = read_table(path).reshape(-1)
                break
    return times
