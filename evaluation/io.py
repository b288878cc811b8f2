"""Reading the numeric text files of benchmarks and trackers (boxes, labels, times).

One reader for every delimiter the toolkits write: comma, tab, space, semicolon,
mixed within a file, ints or floats, ``NaN`` allowed. Malformed input raises a
one-line :class:`UserError` naming the file and line.
"""

import os
import re
import stat

import numpy as np

from mimtrack.errors import UserError

_SEPARATORS = bytes.maketrans(b",\t;\r", b"    ")


def read_table(path, columns=None, allow_empty=False):
    """Read a whitespace/comma/tab separated numeric table as float64 of shape (N, columns).

    ``columns=None`` takes the column count from the first row; every row must
    have the same count. Blank lines are ignored.
    """
    require_regular_file(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a text file") from None
    return parse_table(data, path, columns, allow_empty)


def require_regular_file(path):
    """UserError unless ``path`` is a regular file: opening a FIFO (or a device) would block or never end."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except OSError:
        return   # unreadable for another reason: open() reports it
    if stat.S_ISDIR(mode):
        raise UserError(f"{path}: is a directory, expected a text file")
    if not stat.S_ISREG(mode):
        raise UserError(f"{path}: not a regular file (a FIFO, socket or device), expected a text file")


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
    table = _parse_plain_decimals(text, columns)
    if table is not None:
        return table
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


# --- Fast path: plain decimal tokens ------------------------------------------------
# Result files hold millions of tokens like "123.45" or "-7"; np.fromstring needs
# ~0.2 us per value. The parser below handles tokens of up to 16 characters made of
# an optional leading '-', digits and at most one '.', all at once with array
# operations, and returns None for anything else (exponents, NaN, '+', long
# tokens, wrong column counts), which then takes the general path. It is exact:
# the digits form an integer mantissa m < 2**53 and 10**k is exact for k <= 16,
# so m / 10**k is the correctly rounded double that strtod also returns.

_ZERO_CHARS = np.uint64(0x3030303030303030)  # eight ASCII '0'
_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)
_INT_POW10 = 10 ** np.arange(18, dtype=np.int64)
_FLOAT_POW10 = 10.0 ** np.arange(18)


def _eight_digits(words):
    """uint64 words holding 8 ASCII digits (first digit in the lowest byte) -> their value.

    Each step merges neighbouring groups: 8 one-digit bytes -> 4 two-digit
    16-bit lanes -> 2 four-digit 32-bit lanes -> 1 eight-digit number.
    """
    x = words - _ZERO_CHARS
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    x = (x * np.uint64(10000) + (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)
    return x.astype(np.int64)


def _parse_plain_decimals(text, columns):
    """Parse separator-normalised text (space / newline only) or return None."""
    data = np.frombuffer(text + b"\n", dtype=np.uint8)
    in_token = data > 32
    newlines = np.flatnonzero(data == 10)
    if len(newlines) + np.count_nonzero(data == 32) + np.count_nonzero(in_token) != len(data):
        return None  # other control characters
    edges = np.flatnonzero(in_token[1:] != in_token[:-1]) + 1  # text starts in a token, ends with \n
    starts = np.concatenate(([0], edges[1::2]))
    ends = edges[0::2]
    n_rows = len(newlines)
    if len(starts) != n_rows * columns:
        return None
    row_starts = starts.reshape(n_rows, columns)
    if not ((row_starts[:, -1] < newlines).all() and (row_starts[1:, 0] > newlines[:-1]).all()):
        return None  # some row has the wrong number of values
    lengths = ends - starts
    n_words = -(-int(lengths.max()) // 8)
    if n_words > 2:
        return None
    width = 8 * n_words

    # Each token right-aligned in `width` bytes, read as little-endian uint64 words
    # (so byte i of the row is character i), bytes before the token set to '0'.
    padded = np.concatenate((np.zeros(width, np.uint8), data, np.zeros(8, np.uint8)))
    unaligned = np.ndarray((len(padded) - 7,), dtype="<u8", buffer=padded, strides=(1,))
    word_offsets = np.arange(0, width, 8)
    words = unaligned[ends[:, None] + word_offsets]
    pad = width - lengths
    shift = (pad[:, None] - word_offsets).clip(0, 8)
    keep = np.where(shift == 8, np.uint64(0), _ALL_BITS << (8 * shift.clip(0, 7)).astype(np.uint64))
    words = (words & keep) | (_ZERO_CHARS & ~keep)
    chars = words.view(np.uint8)

    # Sign: a '-' is allowed as the first character only; it becomes a '0'.
    first_word = words[:, 0] if n_words == 1 else np.where(pad < 8, words[:, 0], words[:, -1])
    first_shift = (8 * (pad % 8)).astype(np.uint64)
    negative = (first_word >> first_shift) & np.uint64(0xFF) == 45
    if np.count_nonzero(chars == 45) != np.count_nonzero(negative):
        return None
    if negative.any():
        bump = np.where(negative, np.uint64(3) << first_shift, np.uint64(0))
        if n_words == 1:
            words[:, 0] += bump
        else:
            words[:, 0] += np.where(pad < 8, bump, 0)
            words[:, 1] += np.where(pad < 8, 0, bump)

    # At most one '.', read as a '0' digit and divided out below.
    is_dot = chars == 46
    n_dots = np.count_nonzero(is_dot)
    dot_words = is_dot.view(np.uint64)  # (n, n_words); a row-wise any() on bool is slow
    has_dot = (dot_words[:, 0] | dot_words[:, -1]) != 0
    if n_dots != np.count_nonzero(has_dot) or (lengths - has_dot - negative < 1).any():
        return None
    chars += is_dot.view(np.uint8) * np.uint8(2)
    if ((chars - np.uint8(48)) > 9).any():
        return None

    scaled = _eight_digits(words[:, 0])  # all digits, the '.' counted as a 0 digit
    if n_words == 2:
        scaled = scaled * 100000000 + _eight_digits(words[:, 1])
    dot_column = int(np.argmax(is_dot[0]))
    if n_dots == 0:
        mantissa, divisor = scaled, 1.0
    elif n_dots == len(words) and is_dot[:, dot_column].all():
        # The usual case (fixed format like %.2f): one decimal count, scalar arithmetic.
        decimals = width - 1 - dot_column
        high = scaled // _INT_POW10[decimals + 1]
        mantissa = scaled - high * (_INT_POW10[decimals + 1] - _INT_POW10[decimals])
        divisor = _FLOAT_POW10[decimals]
    else:
        decimals = np.where(has_dot, width - 1 - np.argmax(is_dot, axis=1), 0)
        high = scaled // _INT_POW10[decimals + has_dot]
        mantissa = np.where(has_dot, scaled - high * (_INT_POW10[decimals + 1] - _INT_POW10[decimals]), scaled)
        divisor = _FLOAT_POW10[decimals]
    if mantissa.max() >= 2 ** 53:
        return None
    values = mantissa / divisor
    if negative.any():
        values = np.where(negative, -values, values)
    return values.reshape(n_rows, columns)


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
    require_regular_file(path)
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
