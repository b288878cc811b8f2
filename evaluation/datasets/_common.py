"""Small helpers shared by the benchmark readers."""

import functools
import json
import os

import numpy as np

from evaluation import io
from mimtrack.errors import UserError

_SPLITS_DIR = os.path.join(os.path.dirname(__file__), "splits")


@functools.cache
def split_file(benchmark):
    """The packaged split membership of a benchmark (``splits/<benchmark>.json``)."""
    with open(os.path.join(_SPLITS_DIR, f"{benchmark}.json")) as f:
        return json.load(f)


def subfolders(root):
    """Names of the folders directly under ``root``, sorted."""
    return sorted(entry.name for entry in os.scandir(root) if entry.is_dir())


def read_labels(path, n_frames):
    """Per-frame integer labels, or None when the file is absent; the count must match the GT."""
    if not os.path.isfile(path):
        return None
    labels = io.read_labels(path)
    if len(labels) != n_frames:
        raise UserError(f"{path}: {len(labels)} labels for {n_frames} ground-truth rows")
    return labels


def read_flags(path, names):
    """Names of the sequence-level attributes flagged 1 in a one-line flag file (None if absent)."""
    if not os.path.isfile(path):
        return None
    flags = io.read_table(path).reshape(-1)
    if len(flags) != len(names):
        raise UserError(f"{path}: expected {len(names)} attribute flags, found {len(flags)}")
    return tuple(name for name, flag in zip(names, flags) if flag == 1)


def read_optional_text(path):
    return io.read_text(path) if os.path.isfile(path) else None


def all_visible(*conditions):
    """AND of the per-frame visibility conditions that exist (None when none does)."""
    conditions = [c for c in conditions if c is not None]
    return np.logical_and.reduce(conditions) if conditions else None
