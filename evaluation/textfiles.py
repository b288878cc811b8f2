"""Reading the numeric text files of benchmarks and trackers (boxes, labels, times).

One reader for every format the toolkits and trackers write: comma, tab, space,
semicolon or mixed delimiters (trailing ones too), CRLF, blank lines, integers,
short or full-precision (17 significant digits) decimals, exponents, ``NaN``.
Every value is bit-identical to Python's ``float()`` of its token. Malformed
input raises a one-line :class:`UserError` naming the file and line.
"""

import os
import re
import stat

import numpy as np

from mimtrack.errors import UserError

# Every separator becomes a space (\v and \f too: bytes.split() treats them as whitespace).
_SEPARATORS = bytes.maketrans(b",\t;\r\x0b\x0c", b"      ")
_SEPARATOR_BYTES = b" \t\n\r\x0b\x0c,;"
_IS_SEPARATOR = np.zeros(256, bool)
_IS_SEPARATOR[list(_SEPARATOR_BYTES)] = True
_TOKEN_CHARACTER = re.compile(b"[^" + re.escape(_SEPARATOR_BYTES) + b"]")


def read_table(path, columns=None, allow_empty=False):
    """Read a whitespace/comma/tab separated numeric table as float64 of shape (N, columns).

    ``columns=None`` takes the column count from the first row; every row must
    have the same count. Blank lines are ignored.
    """
    return parse_table(_read_bytes(path), path, columns, allow_empty)


def read_tables(paths, columns):
    """``read_table(path, columns)`` of every path, the files parsed as one text.

    The same values and errors. The per-call overhead (~0.1 ms: some 100 numpy calls) is paid
    once: on LaSOT-sized result files (2,500 rows) reading them together takes 12% less time.
    """
    texts = [_read_bytes(path) for path in paths]
    texts = [text if text.endswith(b"\n") else text + b"\n" for text in texts]
    data = b"".join(texts)
    try:
        values, tokens_before = _parse(data, "", columns, np.cumsum([len(text) for text in texts]))
        rows = np.diff(tokens_before, prepend=0) // columns
        if rows.all():
            return np.split(values.reshape(-1, columns), np.cumsum(rows)[:-1].tolist())
    except UserError:
        pass
    for path, text in zip(paths, texts):  # an empty or malformed file: its own error
        parse_table(text, path, columns)
    raise AssertionError("read_tables: no file is malformed, yet the joined text is")


def _read_bytes(path):
    require_regular_file(path)
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory, expected a text file") from None


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
    first_token = _TOKEN_CHARACTER.search(data)
    if first_token is None:
        if allow_empty:
            return np.zeros((0, columns or 0), dtype=np.float64)
        raise UserError(f"{path}: file is empty")
    if not data.endswith(b"\n"):
        data += b"\n"
    if columns is None:
        line_start = data.rfind(b"\n", 0, first_token.start()) + 1
        columns = len(data[line_start:data.find(b"\n", line_start)].translate(_SEPARATORS).split())
    return _parse(data, path, columns)[0].reshape(-1, columns)


def _parse(data, path, columns, boundaries=None):
    """(the values of the tokens of ``data``, a text ending in a newline; with ``boundaries`` (sorted
    byte offsets at line starts) the number of tokens before each)."""
    view = np.frombuffer(data, dtype=np.uint8)
    present = {char: char in data for char in b"-./"}  # a memchr each: most files lack some
    pieces, tokens_before = [], []
    position = 0
    while position < len(data):  # chunks of whole lines, so that the arrays stay in cache
        end = data.find(b"\n", position + _CHUNK_BYTES - 1)
        end = len(data) - 1 if end < 0 else end
        buffer = view[position:end + 1]
        tokens = _tokens(buffer, columns, present)
        if tokens is None:
            _raise_first_bad_row(data, path, columns)
        values, others = _parse_decimals(buffer, *tokens)
        if others.any():
            # Exponents, 'inf', '+', over-long tokens, rare rounding ties: Python parses them.
            starts, ends = (position + b[others] for b in tokens[:2])
            try:
                values[others] = [float(data[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
            except ValueError:
                _raise_first_bad_row(data, path, columns)
        if boundaries is not None:
            inside = boundaries[(boundaries > position) & (boundaries <= end + 1)] - position
            done = sum(len(p) for p in pieces)
            tokens_before.append(done + np.searchsorted(tokens[0], inside))
        pieces.append(values)
        position = end + 1
    values = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
    return values, (np.concatenate(tokens_before) if boundaries is not None else None)


def _tokens(buffer, columns, present):
    """The tokens of a text ending in a newline: (starts, ends, n_minus, n_dots, plain).

    n_minus, n_dots: the number of '-' and '.'; plain: no other byte than digits,
    '-' and '.' in tokens. None when a non-blank row does not hold exactly
    ``columns`` tokens or the text holds other control characters (the caller
    then finds the bad row).
    """
    # Bytes outside '-' ... '9' (0x2D-0x39: '-', '.', '/', digits) are separators in a plain text.
    separators = np.flatnonzero(buffer - np.uint8(45) > 12)
    kinds = buffer[separators]
    is_separator = _IS_SEPARATOR[kinds]
    plain = bool(is_separator.all())
    if not plain:
        if ((kinds <= 32) & ~is_separator).any():  # other control characters
            return None
        separators, kinds = separators[is_separator], kinds[is_separator]
    is_newline = kinds == 10
    # A token lies between two separators that are not neighbours (and before the first one).
    apart = np.flatnonzero(np.diff(separators) > 1)
    starts, ends = separators[apart] + 1, separators[apart + 1]
    if separators[0] > 0:
        starts, ends = np.concatenate(([0], starts)), np.concatenate((separators[:1], ends))
    newlines = separators[is_newline]
    n_rows = len(newlines)
    row_starts = starts.reshape(n_rows, columns) if len(starts) == n_rows * columns else None
    if row_starts is None or not ((row_starts[:, -1] < newlines).all() and (row_starts[1:, 0] > newlines[:-1]).all()):
        # Blank lines, or a bad row: count the tokens of every row.
        per_row = np.diff(np.searchsorted(starts, newlines), prepend=0)
        if ((per_row != 0) & (per_row != columns)).any():
            return None
    n_minus = np.count_nonzero(buffer == 45) if present[45] else 0
    n_dots = np.count_nonzero(buffer == 46) if present[46] else 0
    plain = plain and not (present[47] and np.count_nonzero(buffer == 47))  # no '/' either
    return starts, ends, n_minus, n_dots, plain


# --- Decimal tokens at array speed ------------------------------------------------
# Tokens of up to 24 characters made of an optional '-', digits and at most one '.'
# (what trackers write: "%d", "%.2f", str(float)) are read all at once as an
# integer mantissa m of at most 19 digits (< 2**64) and a count d of decimals.
# The value m / 10**d is then rounded once, as float() / strtod round it:
# - m < 2**53 and d <= 22: m and 10**d are exact doubles, so one IEEE division is
#   the correctly rounded result (Clinger's fast path);
# - otherwise the division is done in long double where it has a 64-bit significand
#   (x86: m and 10**d, d <= 27, are exact), then rounded to double. Rounding twice
#   differs from rounding once only when the first result lies exactly halfway
#   between two doubles; those rare tokens go to float(), like every token of
#   another form (exponents, 'inf', '+', longer tokens). 'nan' is recognised here.
# Each token is right-aligned in 8, 16 or 24 bytes read as little-endian uint64
# words (byte i of a word = character i); all byte tests are word-parallel (SWAR).

_CHUNK_BYTES = 1 << 18
_MAX_WIDTH = 24  # characters; 19 digits at most (checked below)
_EXACT_POW10 = 22  # 10**22 is the largest exact power of ten in a double
_FLOAT_POW10 = np.array([float(10 ** k) for k in range(_MAX_WIDTH)])
_UINT_POW10 = np.array([min(10 ** k, 2 ** 64 - 1) for k in range(_MAX_WIDTH)], dtype=np.uint64)
# x87 extended precision (x86 Linux / macOS): 64-bit significand stored in the first 8 of 16 bytes.
_X87_LONG_DOUBLE = np.finfo(np.longdouble).nmant == 63 and np.dtype(np.longdouble).itemsize == 16


def _bytes_of(value):
    return np.uint64(int.from_bytes(bytes([value]) * 8, "little"))


_ZERO_CHARS, _HIGH_BITS, _LOW_7_BITS = _bytes_of(0x30), _bytes_of(0x80), _bytes_of(0x7F)
_DIGIT_LIMIT = _bytes_of(0x46)  # 0x39 + 0x46 = 0x7F: adding it sets the high bit of any byte above '9'
_KEEP_FROM = np.array([((1 << 64) - 1) ^ ((1 << (8 * c)) - 1) for c in range(9)], dtype=np.uint64)  # bytes >= c
# (1 << 8j) * _DOT_POSITION[k] has 8k + j in its top byte: the position of byte j of word k.
_DOT_POSITION = [np.uint64(sum((8 * k + j) << (8 * (7 - j)) for j in range(8))) for k in range(3)]


def _long_pow10():
    powers = np.ones(_MAX_WIDTH, dtype=np.longdouble)
    for k in range(1, _MAX_WIDTH):
        powers[k] = powers[k - 1] * 10  # exact while 5**k < 2**64
    return powers


_LONG_POW10 = _long_pow10()


def _equal_bytes(words, char):
    """0x80 in every byte of ``words`` equal to ``char``, 0 elsewhere (exact, no carries between bytes)."""
    x = words ^ _bytes_of(char)
    return ~(((x & _LOW_7_BITS) + _LOW_7_BITS) | x) & _HIGH_BITS


def _eight_digits(words):
    """uint64 words holding 8 ASCII digits (first digit in the lowest byte) -> their value.

    Each step merges neighbouring groups: 8 one-digit bytes -> 4 two-digit
    16-bit lanes -> 2 four-digit 32-bit lanes -> 1 eight-digit number.
    """
    x = words - _ZERO_CHARS
    x = (x * np.uint64(10) + (x >> np.uint64(8))) & np.uint64(0x00FF00FF00FF00FF)
    x = (x * np.uint64(100) + (x >> np.uint64(16))) & np.uint64(0x0000FFFF0000FFFF)
    return (x * np.uint64(10000) + (x >> np.uint64(32))) & np.uint64(0xFFFFFFFF)


def _parse_decimals(buffer, starts, ends, n_minus, n_dots, plain):
    """Values of the tokens buffer[starts:ends] (counts from :func:`_tokens`).

    Returns (float64 values, bool mask of the tokens left to float()).
    """
    n = len(starts)
    if n == 0:
        return np.zeros(0), np.zeros(0, bool)
    lengths = ends - starts
    longest, shortest = int(lengths.max()), int(lengths.min())
    if longest == 1 and plain and not n_dots and not n_minus:  # one digit each: labels like full_occlusion.txt
        return (buffer[starts] - np.uint8(48)).astype(np.float64), np.zeros(n, bool)
    width = min(_MAX_WIDTH, 8 * -(-longest // 8))
    # The `width` bytes ending at a token's end, from two aligned words per word.
    padded = np.zeros(width + len(buffer) + 16 + (-(width + len(buffer)) % 8), np.uint8)
    padded[width:width + len(buffer)] = buffer
    # Sign: a '-' is allowed as the first character only; it becomes a '0'.
    negative = np.zeros(n, bool)
    if n_minus:
        negative = buffer[starts] == 45
        padded[width + starts[negative]] = 48
        if np.count_nonzero(negative) != n_minus:
            plain = False  # a '-' elsewhere: the digit test below finds it
    aligned = padded.view(np.uint64)
    index = ends >> 3  # ends + width - width: where the window starts in `padded`
    low_bits = ((ends & 7) * 8).astype(np.uint64)
    high_bits = np.uint64(64) - low_bits  # a shift by 64 gives 0
    pad = width - lengths  # bytes before the token in its `width` bytes; < 0: too long, left to float()
    others = pad < 0
    words = []
    current = aligned[index]
    for offset in range(0, width, 8):
        following = aligned[index + (offset // 8 + 1)]
        word = (current >> low_bits) | (following << high_bits)
        current = following
        if width - offset > shortest:  # some token starts after this word's first byte: '0' before it
            outside = (8 * np.minimum(np.maximum(pad - offset, 0), 8)).astype(np.uint64)
            word = ((word >> outside) << outside) | (_ZERO_CHARS >> (np.uint64(64) - outside))
        words.append(word)
    is_nan = np.zeros(n, bool)
    if not plain:
        lowered = (words[-1] >> np.uint64(40)) | np.uint64(0x202020)
        is_nan = (lengths == 3) & (lowered == np.uint64(0x6E616E))  # 'nan', any case

    # At most one '.': read as a '0' digit, then taken out of the mantissa below.
    has_dot = np.zeros(n, bool)
    if n_dots:
        position = np.zeros(n, np.uint64)  # of the '.' in the token's `width` bytes
        units = []
        for k, word in enumerate(words):
            # In a plain token only the '.' is below '0' (the '-' is a '0' now).
            dot = ~((word | _HIGH_BITS) - _ZERO_CHARS) & _HIGH_BITS if plain else _equal_bytes(word, 0x2E)
            unit = dot >> np.uint64(7)  # 1 << 8j for a '.' in byte j
            word += unit << np.uint64(1)  # '.' + 2 = '0'
            units.append(unit)
            position += (unit * _DOT_POSITION[k]) >> np.uint64(56)
        any_unit = units[0]
        for unit in units[1:]:
            any_unit = any_unit | unit
        has_dot = any_unit != 0
        if np.count_nonzero(has_dot) != n_dots:  # a token with several dots
            several = np.sum([unit != 0 for unit in units], axis=0) > 1
            for unit in units:
                several |= (unit & (unit - np.uint64(1))) != 0
            others |= several
        decimals = np.where(has_dot, width - 1 - position.astype(np.int64), 0)

    if n_dots or n_minus:
        others |= lengths - has_dot - negative < 1  # no digit at all: '-', '.', '-.'
    if not plain:  # every byte must now be a digit
        for word in words:
            others |= (((word + _DIGIT_LIMIT) | word | ~((word | _HIGH_BITS) - _ZERO_CHARS)) & _HIGH_BITS) != 0
    if width > 19:  # at most 19 digits, so that the mantissa fits in 64 bits
        head = ~_KEEP_FROM[width - 19]
        others |= (words[0] & head) != (_ZERO_CHARS & head)
    others &= ~is_nan
    mantissa = _eight_digits(words[0])
    for word in words[1:]:
        mantissa = mantissa * np.uint64(10 ** 8) + _eight_digits(word)

    if n_dots:
        # digits L '0' R with R < 10**decimals -> L R: (mantissa - R) / 10 + R
        low = mantissa % _UINT_POW10[decimals]
        mantissa = np.where(has_dot, (mantissa - low) // np.uint64(10) + low, mantissa)
        values = mantissa.astype(np.float64) / _FLOAT_POW10[decimals]
    else:
        values = mantissa.astype(np.float64)
    rounded_twice = []  # 8 characters hold at most 8 digits: always exact
    if width > 8:
        rounded_twice = mantissa >= np.uint64(2 ** 53)
        if n_dots:
            rounded_twice |= decimals > _EXACT_POW10
        rounded_twice = np.flatnonzero(rounded_twice & ~others)
    if len(rounded_twice) and _X87_LONG_DOUBLE:
        exponent = decimals[rounded_twice] if n_dots else 0
        quotient = mantissa[rounded_twice].astype(np.longdouble) / _LONG_POW10[exponent]
        values[rounded_twice] = quotient.astype(np.float64)
        # Halfway between two doubles: the 11 significand bits below a double's are 10000000000.
        halfway = (quotient.view(np.uint64)[0::2] & np.uint64(0x7FF)) == np.uint64(0x400)
        others[rounded_twice[halfway]] = True
    elif len(rounded_twice):
        others[rounded_twice] = True
    if not plain:
        values[is_nan] = np.nan
    if n_minus:
        np.negative(values, out=values, where=negative)
    return values, others


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
    raise UserError(f"{path}: not a table of numbers")


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
