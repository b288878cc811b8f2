"""mimtrack.evaluation.textfiles: every value bit-identical to Python's float() of its token, on every format in the wild."""

import decimal
import math

import numpy as np
import pytest

from mimtrack.evaluation import textfiles
from mimtrack.errors import UserError


def _bits(values):
    return np.asarray(values, dtype=np.float64).view(np.int64)


def _halfway_token(rng):
    """A decimal near or at the midpoint of two neighbouring doubles (the hard case of correct rounding)."""
    d = float(rng.uniform(1, 5000)) * 10.0 ** int(rng.integers(-3, 4))
    midpoint = (decimal.Decimal(d) + decimal.Decimal(math.nextafter(d, math.inf))) / 2
    digits = int(rng.integers(16, 20))
    with decimal.localcontext() as context:
        context.prec = digits
        context.rounding = str(rng.choice([decimal.ROUND_HALF_EVEN, decimal.ROUND_DOWN, decimal.ROUND_UP]))
        text = format(+midpoint, "f")
    return text if len(text) <= 24 or rng.random() < 0.2 else text[:24]


def _token(rng, kind):
    magnitude = 10.0 ** int(rng.integers(-6, 8))
    x = float(rng.normal(0, 1)) * magnitude
    if kind == "int":
        return str(int(rng.integers(-10 ** int(rng.integers(1, 19)), 10 ** int(rng.integers(1, 19)))))
    if kind == "short":
        return "%.*f" % (int(rng.integers(0, 7)), x)
    if kind == "repr":  # str(float): 15-17 significant digits, sometimes an exponent
        return repr(x)
    if kind == "long":  # 17-19 significant digits, beyond 2**53
        return "%.*g" % (int(rng.integers(17, 20)), x)
    if kind == "exponent":
        return str(rng.choice(["%.3e", "%.10E", "%g", "%.1e"])) % x
    if kind == "halfway":
        return _halfway_token(rng)
    if kind == "nan":
        return str(rng.choice(["nan", "NaN", "NAN", "-nan", "inf", "-inf", "Infinity"]))
    if kind == "odd":
        return str(rng.choice([".5", "5.", "-.25", "-0", "-0.0", "+1.5", "007", "0.000000000000000000001",
                               "123456789012345678901234567890", "1_000", "-7.", "0.1234567890123456789"]))
    raise ValueError(kind)


KINDS = ("int", "short", "repr", "long", "exponent", "halfway", "nan", "odd")
DELIMITERS = (",", "\t", " ", ";", ", ", "  ", ",\t", " \t ")


def _random_file(rng, rows, columns=4):
    """(bytes of a result file, expected float64 table): kinds, delimiters and line endings drawn per file and row."""
    weights = rng.dirichlet(np.ones(len(KINDS)) * 0.3)
    delimiters = list(rng.choice(DELIMITERS, size=int(rng.integers(1, 4))))
    crlf = rng.random() < 0.3
    trailing = rng.random() < 0.2
    lines, expected = [], []
    for _ in range(rows):
        tokens = [_token(rng, str(rng.choice(KINDS, p=weights))) for _ in range(columns)]
        delimiter = str(rng.choice(delimiters))
        line = delimiter.join(tokens) + (delimiter if trailing else "")
        lines.append(line)
        expected.append([float(t) for t in tokens])
        if rng.random() < 0.02:
            lines.append(str(rng.choice(["", " ", "\t"])))  # a blank line
    text = ("\r\n" if crlf else "\n").join(lines)
    text += str(rng.choice(["", "\n", "\r\n", "\n\n", "\n \n"]))  # no final newline, or blank trailing lines
    return text.encode(), np.array(expected, dtype=np.float64).reshape(-1, columns)


@pytest.mark.parametrize("seed", range(60))
def test_random_files_bit_identical_to_float(seed):
    rng = np.random.default_rng(seed)
    data, expected = _random_file(rng, int(rng.integers(1, 400)))
    table = textfiles.parse_table(data, "t.txt", 4)
    assert table.shape == expected.shape
    assert np.array_equal(_bits(table), _bits(expected))  # bit-identical, -0.0 and NaN too


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_alone(kind):
    """Files of one kind take one path of the parser: each must be exact on its own."""
    rng = np.random.default_rng(KINDS.index(kind))
    tokens = [_token(rng, kind) for _ in range(4000)]
    data = "".join(",".join(tokens[i:i + 4]) + "\n" for i in range(0, len(tokens), 4)).encode()
    assert np.array_equal(_bits(textfiles.parse_table(data, "t.txt", 4)), _bits([[float(t) for t in tokens]]).reshape(-1, 4))


@pytest.mark.parametrize("seed", range(20))
def test_one_dot_in_every_token_bit_identical_to_float(seed):
    """Chunks whose every token holds one '.' ("%.4f", str(float)) read integer and fraction digits apart."""
    rng = np.random.default_rng(100 + seed)
    kinds = ("short", "repr", "long", "halfway", "exponent", "odd")
    tokens, rows = [], int(rng.integers(1, 600))
    while len(tokens) < 4 * rows:
        token = _token(rng, str(rng.choice(kinds)))
        if token.count(".") == 1:
            tokens.append(token)
    delimiter = str(rng.choice(DELIMITERS))
    data = "".join(delimiter.join(tokens[i:i + 4]) + "\n" for i in range(0, len(tokens), 4)).encode()
    expected = np.array([float(t) for t in tokens]).reshape(-1, 4)
    assert np.array_equal(_bits(textfiles.parse_table(data, "t.txt", 4)), _bits(expected))


@pytest.mark.parametrize("text, message", [
    (b"1.5,2.5,3.5,4.5\n5.5,6.5,7.-5,8.5\n", "line 2: '7.-5' is not a number"),
    (b"1.5,2.5,3.5,4.5\n5.5,-.,7.5,8.5\n", "line 2: '-.' is not a number"),
    (b"1.5,2.5,3.5,4.5\n5.5,.,7.5,8.5\n", "line 2: '.' is not a number"),
    (b"1.5,2.5,3.5,4.5\n5.5,6.5,7.5,8.5x\n", "line 2: '8.5x' is not a number"),
])
def test_malformed_tokens_among_one_dot_tokens(text, message):
    with pytest.raises(UserError, match=f"t.txt: {message}"):
        textfiles.parse_table(text, "t.txt", 4)


def test_published_result_formats_over_several_chunks():
    """The formats of real raw results (int tab files, str(float) comma files), longer than one chunk."""
    rng = np.random.default_rng(1)
    boxes = rng.uniform(-20, 1500, (30000, 4))
    for fmt, delimiter in (("%r", ","), ("%d", "\t"), ("%.2f", ","), ("%.4f", " ")):
        rows = boxes.astype(int) if fmt == "%d" else boxes
        text = "".join(delimiter.join([fmt] * 4) % tuple(r) + "\n" for r in rows.tolist())
        assert len(text) > textfiles._CHUNK_BYTES
        expected = [[float(t) for t in line.split(delimiter)] for line in text.splitlines()]
        assert np.array_equal(_bits(textfiles.parse_table(text.encode(), "t.txt", 4)), _bits(expected))


@pytest.mark.parametrize("text, expected", [
    (b"1.5,2,3,4\n-0.00,5.,.25,-7\n", [[1.5, 2, 3, 4], [-0.0, 5, 0.25, -7]]),
    (b"367.0763161678982,101.76213141700188,1e2,NaN\r\n", [[367.0763161678982, 101.76213141700188, 100, np.nan]]),
    (b"9007199254740993,0.1,0.2,0.3\n", [[9007199254740993.0, 0.1, 0.2, 0.3]]),  # 2**53 + 1: rounds to even
    (b"7,8,9,10", [[7, 8, 9, 10]]),  # no final newline
    (b"\n\n  1 2 3 4 \n\n", [[1, 2, 3, 4]]),  # blank lines and spaces around
    (b"1,2,3,4,\n5,6,7,8,\n", [[1, 2, 3, 4], [5, 6, 7, 8]]),  # trailing delimiters
])
def test_edge_tokens(text, expected):
    assert np.array_equal(_bits(textfiles.parse_table(text, "t.txt", 4)), _bits(expected))


def test_columns_from_the_first_row_and_empty_files():
    assert textfiles.parse_table(b"\n0,0,1,1,0\n", "t.txt").shape == (1, 5)
    assert textfiles.parse_table(b" \n\t\n", "t.txt", 4, allow_empty=True).shape == (0, 4)
    with pytest.raises(UserError, match="t.txt: file is empty"):
        textfiles.parse_table(b"\r\n", "t.txt", 4)


@pytest.mark.parametrize("text, message", [
    (b"1,2,3,4\n5,6,7\n", "line 2: expected 4 numbers, found 3"),
    (b"1,2,3,4\n5,6,7,8,9\n", "line 2: expected 4 numbers, found 5"),
    (b"1,2,3,4\n5,6,-,8\n", "line 2: '-' is not a number"),
    (b"1,2,3,4\n5,1.2.3,7,8\n", "line 2: '1.2.3' is not a number"),
    (b"1,2,3,4\n5,6,7-,8\n", "line 2: '7-' is not a number"),
    (b"1,2,3,4\n\n5,x,7,8\n", "line 3: 'x' is not a number"),
    (b"1,2,3,4\n5,6,7,8e\n", "line 2: '8e' is not a number"),
    (b"1,2,3,4\n5,6,.,8\n", "line 2: '.' is not a number"),
    (b"1,2,3,4\r\n5,6,7,1.5e+02.1\r\n", "line 2: '1.5e\\+02.1' is not a number"),
    (b"1,2,3,4\n5,6\x007,8,9\n", "line 2: '6\\\\x007' is not a number"),
])
def test_malformed_rows_name_file_and_line(text, message):
    with pytest.raises(UserError, match="t.txt: " + message):
        textfiles.parse_table(text, "t.txt", 4)


def test_malformed_row_beyond_the_first_chunk():
    rows = ["%.3f,%.3f,%.3f,%.3f" % tuple(r) for r in np.random.default_rng(0).uniform(0, 999, (40000, 4)).tolist()]
    rows[33333] = "1,2,3"
    with pytest.raises(UserError, match="t.txt: line 33334: expected 4 numbers, found 3"):
        textfiles.parse_table("\n".join(rows).encode(), "t.txt", 4)


def test_read_tables_equals_read_table_per_file(tmp_path):
    """Many files parsed as one text: each table bit-identical to reading its file alone, chunk edges included."""
    rng = np.random.default_rng(7)
    paths = []
    for i in range(12):
        data, _ = _random_file(rng, int(rng.choice([1, 3, 200, 5000])))
        paths.append(tmp_path / f"{i}.txt")
        paths[-1].write_bytes(data)
    assert sum(p.stat().st_size for p in paths) > 3 * textfiles._CHUNK_BYTES
    tables = textfiles.read_tables(paths, 4)
    assert len(tables) == len(paths)
    for path, table in zip(paths, tables):
        assert np.array_equal(_bits(table), _bits(textfiles.read_table(path, 4)))


@pytest.mark.parametrize("bad, message", [
    (b"1,2,3,4\n5,6,x,8\n", "b.txt: line 2: 'x' is not a number"),
    (b"1,2,3,4\n5,6,7\n", "b.txt: line 2: expected 4 numbers, found 3"),
    (b"\n\n", "b.txt: file is empty"),
    (b"", "b.txt: file is empty"),
])
def test_read_tables_names_the_bad_file(tmp_path, bad, message):
    (tmp_path / "a.txt").write_bytes(b"1,2,3,4\n" * 3)
    (tmp_path / "b.txt").write_bytes(bad)
    (tmp_path / "c.txt").write_bytes(b"1.5\t2.5\t3.5\t4.5")
    with pytest.raises(UserError, match=message):
        textfiles.read_tables([tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"], 4)
