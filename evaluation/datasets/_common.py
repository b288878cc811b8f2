"""Small helpers shared by the benchmark readers."""

import functools
import json
import os
import re

import numpy as np

from mimtrack.evaluation import textfiles
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


def natural_key(name):
    """Sort key comparing the digit runs of a name as numbers: ``2.jpg`` before ``10.jpg``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_frames(folder, extensions=(".jpg", ".jpeg", ".png")):
    """The image files of ``folder`` (by extension, any case) in natural order: the one frame order for every
    reader, training source and the demo (zero-padded names sort as before; ``1.jpg .. 12.jpg`` no longer
    read 1, 10, 11, 12, 2)."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(tuple(extensions))]
    return [os.path.join(folder, n) for n in sorted(names, key=natural_key)]


def read_labels(path, n_frames):
    """Per-frame integer labels, or None when the file is absent; the count must match the GT."""
    if not os.path.isfile(path):
        return None
    labels = textfiles.read_labels(path)
    if len(labels) != n_frames:
        raise UserError(f"{path}: {len(labels)} labels for {n_frames} ground-truth rows")
    return labels


def read_flags(path, names):
    """Names of the sequence-level attributes flagged 1 in a one-line flag file (None if absent)."""
    if not os.path.isfile(path):
        return None
    flags = textfiles.read_table(path).reshape(-1)
    if len(flags) != len(names):
        raise UserError(f"{path}: expected {len(names)} attribute flags, found {len(flags)}")
    return tuple(name for name, flag in zip(names, flags) if flag == 1)


def read_optional_text(path):
    return textfiles.read_text(path) if os.path.isfile(path) else None


def all_visible(*conditions):
    """AND of the per-frame visibility conditions that exist (None when none does)."""
    conditions = [c for c in conditions if c is not None]
    return np.logical_and.reduce(conditions) if conditions else None
