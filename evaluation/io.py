"""Reading the numeric text files of benchmarks and trackers (boxes, labels, times).

One reader for every delimiter the toolkits write: comma, tab, space, semicolon,
mixed within a file, ints or floats, ``NaN`` allowed. Malformed input raises a
one-line :class:`UserError` naming the file and line.
"""

import os
import re

import numpy as np

from mimtrack.errors import UserError

_SEPARATORS = bytes.maketrans(b",\t;\r", b"    ")


def read_table(path, columns=None, allow_empty=False):
    """Read a whitespace/comma/tab separated numeric table as float64 of shape (N, columns).

    ``columns=None`` takes the column count from the first row; every row must
    have the same count. Blank lines are ignored.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a text file") from None
    return parse_table(data, path, columns, allow_empty)


def parse_table(data, path="<bytes>", columns=None, allow_empty=False):
    """Parse the bytes of a numeric text table (see :func:`read_table`)."""
    text = data.translate(_SEPARATORS).strip()
    if _BLANK_LINE.search(text):
        text = _BLANK_LINE.sub(b"", text)
    if not text:
        if allow_empty:
            return np.zeros((0, columns or 0), dtype=np.float64)
        raise UserError(f"{path}: file is empty")
    first_end = text.find(b"\n")
    if columns is None:
        columns = len(text[: first_end if first_end >= 0 else None].split())
    n_rows = text.count(b"\n") + 1
    if b"inf" not in text.lower():
        # Each newline becomes an 'inf' sentinel so that one C-level parse also
        # proves every row has exactly `columns` values.
        try:
            values = np.fromstring(text.replace(b"\n", b" inf "), dtype=np.float64, sep=" ")
        except ValueError:
            values = None
        if values is not None and values.size == n_rows * (columns + 1) - 1:
            table = np.append(values, np.inf).reshape(n_rows, columns + 1)
            if np.isposinf(table[:, -1]).all() and not np.isinf(table[:, :-1]).any():
                return np.ascontiguousarray(table[:, :-1])
    _raise_first_bad_row(data, path, columns)
    # Only 'inf' values can reach here: parse row by row.
    return np.array([[float(t) for t in line.split()] for line in text.split(b"\n")], dtype=np.float64)


_BLANK_LINE = re.compile(rb"\n[ ]*(?=\n)")


def _raise_first_bad_row(data, path, columns):
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
        tokens = raw.translate(_SEPARATORS).split()
        if not tokens:
            continue
        if len(tokens) != columns:
            raise UserError(f"{path}: line {lineno}: expected {columns} numbers, found {len(tokens)}")
        for token in tokens:
            try:
                float(token)
            except ValueError:
                shown = token.decode("ascii", "replace")
                raise UserError(f"{path}: line {lineno}: {shown!r} is not a number") from None


def read_boxes(path, allow_empty=False):
    """Read an (N, 4) table of x, y, w, h boxes."""
    return read_table(path, columns=4, allow_empty=allow_empty)


def read_labels(path):
    """Read per-frame integer labels: one per line, or one line separated by commas (LaSOT)."""
    table = read_table(path)
    if np.isnan(table).any():
        raise UserError(f"{path}: labels must be integers, found NaN")
    return table.reshape(-1).astype(np.int64)


def read_text(path):
    """Read a small text file (language descriptions), stripped."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None


def format_boxes(boxes, fmt="%.4f", delimiter=","):
    """Boxes -> text, one row per line, as result files are written."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return "".join(delimiter.join(fmt % v for v in row) + "\n" for row in boxes)


def exists(path):
    return os.path.isfile(path)
