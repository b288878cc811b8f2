"""evaluation.io: the vectorised plain-decimal parser must equal the general path bit for bit."""

import numpy as np
import pytest

from evaluation import io
from mimtrack.errors import UserError


def _general(data, columns):
    """The general (np.fromstring) path, with the fast path switched off."""
    fast = io._parse_plain_decimals
    io._parse_plain_decimals = lambda text, columns: None
    try:
        return io.parse_table(data, "t.txt", columns)
    finally:
        io._parse_plain_decimals = fast


def _random_table(rng, rows):
    values = rng.normal(0, 10.0 ** rng.integers(0, 6), size=(rows, 4))
    formats = ["%d", "%.1f", "%.2f", "%.4f", "%.6f", "%r", "%.3f"]
    delimiters = [",", "\t", " ", ";", ", ", "  "]
    nan_rate = rng.choice([0.0, 0.02])  # NaN sends a table to the general path
    lines = []
    for row in values:
        cells = [(str(rng.choice(formats)) % float(v)) if rng.random() >= nan_rate else "NaN" for v in row]
        cells = [c.replace("0.", ".", 1) if rng.random() < 0.05 else c for c in cells]
        delimiter = rng.choice(delimiters)
        lines.append(delimiter.join(cells))
    return ("\n".join(lines) + ("\r\n" if rng.random() < 0.5 else "\n")).encode()


@pytest.mark.parametrize("seed", range(40))
def test_fast_path_equals_general_path(seed):
    rng = np.random.default_rng(seed)
    data = _random_table(rng, int(rng.integers(1, 60)))
    expected = _general(data, 4)
    got = io.parse_table(data, "t.txt", 4)
    assert got.shape == expected.shape
    assert np.array_equal(got.view(np.int64), expected.view(np.int64))  # bit-identical, -0.0 and NaN too


@pytest.mark.parametrize("text", [
    b"1.5,2,3,4\n-0.00,5.,.25,-7\n",          # -0.0, trailing and leading dots
    b"123456789012.5,1,2,3\n",                  # a 14-char token (two 8-byte words)
    b"1234567890123456,1,2,3\n",                # 16 digits: mantissa beyond 2**53 -> general path
    b"0.1,0.2,0.3,9007199254740993\n",
    b"1e3,2,3,4\n",                             # exponent -> general path
    b"7,8,9,10",                                # no final newline
])
def test_edge_tokens(text):
    table = io.parse_table(text, "t.txt", 4)
    expected = np.array([[float(t) for t in line.replace(b",", b" ").split()] for line in text.splitlines()])
    assert np.array_equal(table.view(np.int64), expected.view(np.int64))
    assert np.array_equal(io._parse_plain_decimals(b"1.5 2 3 4", 4), [[1.5, 2, 3, 4]])


def test_fast_path_is_taken_for_result_files():
    rows = np.random.default_rng(0).uniform(-50, 2000, (100, 4))
    text = "".join("%.2f,%.2f,%.2f,%.2f\n" % tuple(r) for r in rows).encode()
    assert io._parse_plain_decimals(text.replace(b",", b" ").strip(), 4) is not None


@pytest.mark.parametrize("text, message", [
    (b"1,2,3,4\n5,6,7\n", "line 2: expected 4 numbers, found 3"),
    (b"1,2,3,4\n5,6,7,8,9\n", "line 2: expected 4 numbers, found 5"),
    (b"1,2,3,4\n5,6,-,8\n", "line 2: '-' is not a number"),
    (b"1,2,3,4\n5,1.2.3,7,8\n", "line 2: '1.2.3' is not a number"),
    (b"1,2,3,4\n5,6,7-,8\n", "line 2: '7-' is not a number"),
    (b"1,2,3,4\n\n5,x,7,8\n", "line 3: 'x' is not a number"),
])
def test_malformed_rows_name_file_and_line(text, message):
    with pytest.raises(UserError, match="t.txt: " + message):
        io.parse_table(text, "t.txt", 4)
