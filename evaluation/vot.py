"""VOT short-term protocols, scored exactly as vot-toolkit 0.9.0 analyses them (numpy only).

Three experiments (``vot/experiment/multirun.py``, ``vot/experiment/multistart.py``):

- **baseline** (reset-based, VOT2013-2019): a trajectory file per repetition ``<seq>_001.txt`` ...; rows are
  ``1`` (initialisation), ``2`` (failure: overlap 0 with the ground truth), ``0`` (frames skipped before the
  re-initialisation ``skip_initialize`` frames later) or a region. Scored by ``vot/analysis/supervised.py``:
  accuracy (mean overlap without special frames and ``burnin`` frames from every initialisation, averaged over
  repetitions, sequences weighted by length), failures (averaged over repetitions, length-weighted), the AR
  robustness ``exp(-sensitivity * failures / length)``, and the EAO curve over all init-to-failure fragments with
  its score, the mean over the stack's length interval.
- **multistart** (anchor-based, VOT2020-2022): one file per anchor ``<seq>_<anchor:08d>.txt``, tracked forwards
  from a positive ``anchor.value`` frame to the end or backwards from a negative one to frame 0 (rows in tracking
  order). Scored by ``vot/analysis/multistart.py``: a run fails where its overlap stays ``<= threshold`` for
  ``grace`` frames; accuracy = overlap summed up to the failure over the frames tracked, robustness = tracked /
  total frames; EAO from per-sequence partial curves.
- **unsupervised** (one pass): ``vot/analysis/accuracy.py`` average accuracy, mean overlap of each repetition
  without special rows and ``burnin`` frames after the initialisation, sequences weighted by length.

Overlap is the toolkit's (``vot/region/raster.py``): both regions are rasterised to pixel masks - coordinates
rounded half to even after a float32 round trip, rectangles covering ``x .. x + w - 1`` inclusive, polygons
scan-converted with the toolkit's node rule, masks copied - inside the image bounds, and IoU counted on pixels.
Its quirks are kept: two regions whose joint bounding box is at most one pixel wide or high have overlap 1,
special rows are empty regions (overlap 0 with a real ground truth), rectangles are clipped against absolute
bounds (which wraps slices around when there are no image bounds and a region has negative coordinates), masks
whose pixels end in column 0 read as empty, multistart rasterises inside the image bounds only when ``burnin``
is non-zero and its EAO partial curve divides by ``j - 1``.
"""

import dataclasses
import math

import numpy as np

from mimtrack.errors import UserError

UNKNOWN, INITIALIZATION, FAILURE = 0, 1, 2   # special row codes (vot.tracker.Trajectory, SupervisedExperiment)
SPECIAL, RECTANGLE, POLYGON, MASK = 0, 1, 2, 3


# ---------------------------------------------------------------- regions
@dataclasses.dataclass(frozen=True, eq=False)
class Region:
    """One VOT region: a special code, a rectangle (x, y, w, h), a polygon ((n, 2) points) or a mask.

    ``data`` holds the values as the toolkit stores them (float32 for shapes, uint8 for a mask's pixels).
    """

    kind: int
    data: np.ndarray | None = None
    code: int = 0
    offset: tuple = (0, 0)

    @classmethod
    def special(cls, code):
        return cls(SPECIAL, code=int(code))

    @classmethod
    def rectangle(cls, x, y, w, h):
        return cls(RECTANGLE, np.array([x, y, w, h], dtype=np.float32))

    @classmethod
    def polygon(cls, points):
        return cls(POLYGON, np.asarray(points, dtype=np.float32).reshape(-1, 2))

    def is_special(self, code=None):
        return self.kind == SPECIAL and (code is None or self.code == code)

    def is_empty(self):
        """vot.region: special regions are empty; rectangles need w > 0 and h > 0; polygons a non-flat extent."""
        if self.kind == SPECIAL:
            return True
        if self.kind == RECTANGLE:
            return not (self.data[2] > 0 and self.data[3] > 0)
        if self.kind == POLYGON:
            xs, ys = self.data[:, 0], self.data[:, 1]
            return bool(ys.min() == ys.max() or xs.min() == xs.max())
        left, top, right, bottom = _mask_extent(self.data)
        return right == 0 or bottom == 0

    def box(self):
        """Axis-aligned x, y, w, h given to a rectangle tracker (vot.region.shapes.Rectangle.convert for polygons;
        a mask's set pixels); None for special rows."""
        if self.kind == RECTANGLE:
            return [float(v) for v in self.data]
        if self.kind == POLYGON:
            low, high = self.data.min(axis=0), self.data.max(axis=0)
            return [float(low[0]), float(low[1]), float(high[0] - low[0]), float(high[1] - low[1])]
        if self.kind == MASK:
            left, top, right, bottom = _mask_extent(self.data)
            if not self.data.any():
                return [float(self.offset[0]), float(self.offset[1]), 0.0, 0.0]
            return [float(left + self.offset[0]), float(top + self.offset[1]),
                    float(right - left + 1), float(bottom - top + 1)]
        return None

    def text(self):
        """The row as the toolkit writes it (``%g``-style numbers, comma separated)."""
        if self.kind == SPECIAL:
            return str(self.code)
        if self.kind in (RECTANGLE, POLYGON):
            return ",".join(_number(v) for v in self.data.reshape(-1))
        return "m" + ",".join(str(int(v)) for v in (*self.offset, self.data.shape[1], self.data.shape[0],
                                                     *_mask_to_rle(self.data)))


def _number(value):
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _mask_extent(mask):
    """(left, top, right, bottom) of the set pixels; (0, 0, 0, 0) when none (raster.mask_bounds)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return 0, 0, 0, 0
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def _rle_to_mask(rle, width, height):
    """Alternating run lengths, zeros first, row-major (vot.region.io.rle_to_mask)."""
    values = np.zeros(len(rle), dtype=np.uint8)
    values[1::2] = 1
    flat = np.repeat(values, rle)
    mask = np.zeros(width * height, dtype=np.uint8)
    mask[:min(len(flat), mask.size)] = flat[:mask.size]
    return mask.reshape(height, width)


def _mask_to_rle(mask):
    flat = mask.reshape(-1).astype(bool)
    changes = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    runs = np.diff(np.concatenate(([0], changes, [flat.size])))
    return ([0] if flat.size and flat[0] else []) + [int(r) for r in runs]


def _cropped_mask(mask, offset):
    """A mask as the toolkit reads it (shapes.Mask._optimize): cropped to its set pixels, and emptied (0 x 0 at
    (0, 0)) when they end in column 0 - also when column 0 holds pixels, a toolkit quirk kept for parity."""
    left, top, right, bottom = _mask_extent(mask)
    if right == 0:
        return Region(MASK, np.zeros((0, 0), dtype=np.uint8), offset=(0, 0))
    return Region(MASK, mask[top:bottom + 1, left:right + 1].copy(), offset=(left + offset[0], top + offset[1]))


def parse_region(text, where="<region>"):
    """One row of a VOT region file (vot.region.io.parse_region): ``m...`` mask, one value = special code,
    four = rectangle, an even number > 4 = polygon; NaN shapes become the special code 0."""
    text = text.strip()
    try:
        if text.startswith("m"):
            values = [int(v) for v in text[1:].split(",")]
            x, y, w, h = values[:4]
            return _cropped_mask(_rle_to_mask(np.array(values[4:], dtype=np.int64), w, h), (x, y))
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise UserError(f"{where}: {text[:40]!r} is not a VOT region") from None
    if len(values) == 1:
        return Region.special(values[0])
    if len(values) == 4 or (len(values) > 4 and len(values) % 2 == 0):
        if any(math.isnan(v) for v in values):
            return Region.special(UNKNOWN)
        return Region.rectangle(*values) if len(values) == 4 else Region.polygon(values)
    raise UserError(f"{where}: {len(values)} values is not a VOT region (1, 4, an even number > 4, or a mask)")


def read_regions(path):
    """All rows of a region file (ground truth or trajectory); blank lines are skipped."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    return [parse_region(line, f"{path}: line {k}") for k, line in enumerate(lines, start=1) if line.strip()]


def format_regions(regions):
    return "".join(r.text() + "\n" for r in regions)


# ---------------------------------------------------------------- overlap (vot/region/raster.py)
def _rounded(region):
    """The toolkit rounds (half to even) the float32 coordinates before rasterising."""
    return np.round(region.data).astype(np.float64)


def _extent(region):
    """Inclusive pixel bounds (left, top, right, bottom) the toolkit uses to size the raster."""
    if region.kind == RECTANGLE:
        x, y, w, h = _rounded(region)
        return int(x), int(y), int(x + w - 1), int(y + h - 1)
    if region.kind == POLYGON:
        points = _rounded(region)
        (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
        return int(left), int(top), int(right), int(bottom)
    if region.kind == MASK:
        left, top, right, bottom = _mask_extent(region.data)
        ox, oy = region.offset
        return left + ox, top + oy, right + ox, bottom + oy
    return 0, 0, 0, 0


def _raster(region, bounds):
    """The region's pixels inside ``bounds`` (left, top, right, bottom inclusive) as a uint8 mask."""
    left, top, right, bottom = bounds
    height, width = bottom - top + 1, right - left + 1
    mask = np.zeros((height, width), dtype=np.uint8)
    if region.kind == RECTANGLE:
        rows, cols = _rectangle_spans(region, bounds)
        mask[rows[0]:rows[1], cols[0]:cols[1]] = 1
    elif region.kind == POLYGON:
        _fill_polygon(mask, _rounded(region) - [left, top])
    elif region.kind == MASK:
        ox, oy = region.offset
        tx, ty = max(ox, left), max(oy, top)
        tw = min(right + 1, ox + region.data.shape[1]) - tx
        th = min(bottom + 1, oy + region.data.shape[0]) - ty
        if tw > 0 and th > 0:
            mask[ty - top:ty - top + th, tx - left:tx - left + tw] = \
                region.data[ty - oy:ty - oy + th, tx - ox:tx - ox + tw]
    return mask


def _polygon_spans(points, height, width):
    """The pixel runs of raster.rasterize_polygon, all rows at once: [(rows, starts, stops)] per fill step, stops
    inclusive, in raster coordinates. Per row the crossings of the edges (i-1, i) that touch it are truncated to
    int and sorted, then filled pairwise; a repeated crossing (a vertex on the row) is skipped unless it is one of
    the last two. Within a row, starts and stops never decrease from one step to the next."""
    first_row = max(0, int(points[:, 1].min()))
    last_row = min(height - 1, int(points[:, 1].max()))
    if first_row > last_row:
        return []
    xi, yi = points[:, 0], points[:, 1]
    xj, yj = np.roll(xi, 1), np.roll(yi, 1)
    rows = np.arange(first_row, last_row + 1, dtype=np.float64)[:, None]
    touches = (((yi <= rows) & (yj > rows)) | ((yj <= rows) & (yi > rows)) | ((yi < rows) & (yj >= rows))
               | ((yj < rows) & (yi >= rows)) | ((yi == yj) & (yi == rows)))
    rise, run = yj - yi, xj - xi
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(rise != 0, xi + (rows - yi) / rise * run, xi)
    nodes = np.where(touches, np.trunc(crossing), np.inf)
    nodes.sort(axis=1)
    counts = touches.sum(axis=1)
    nodes = np.where(np.isinf(nodes), 0, nodes).astype(np.int64)
    row_ids = np.arange(len(rows))
    position = np.zeros(len(rows), dtype=np.int64)
    live = counts > 1
    last = nodes.shape[1] - 1
    spans = []
    for _ in range(points.shape[0]):
        live &= position < counts - 1
        if not live.any():
            break
        first = nodes[row_ids, np.minimum(position, last)]
        second = nodes[row_ids, np.minimum(position + 1, last)]
        live &= first < width
        skip = live & (first == second) & (position < counts - 2)
        fill = live & ~skip
        draw = np.flatnonzero(fill & (second >= 0))
        spans.append((draw + first_row, np.maximum(first[draw], 0), np.minimum(second[draw], width - 1)))
        position += np.where(skip, 1, np.where(fill, 2, 0))
    return spans


def _fill_polygon(mask, points):
    for rows, starts, stops in _polygon_spans(points, *mask.shape):
        for row, start, stop in zip(rows.tolist(), starts.tolist(), stops.tolist()):
            mask[row, start:stop + 1] = 1


def _union_length(spans, height, row_range=(0, None), column_range=(0, None)):
    """Pixels covered by the runs (one row's runs overlap at most their neighbours' ends), counting only rows in
    [row_range) and columns in [column_range] (inclusive)."""
    covered = 0
    reach = np.full(height, -1, dtype=np.int64)   # the last column covered so far, per row
    low_row, high_row = row_range
    low, high = column_range
    for rows, starts, stops in spans:
        keep = rows >= low_row
        if high_row is not None:
            keep &= rows < high_row
        rows, starts, stops = rows[keep], starts[keep], stops[keep]
        starts = np.maximum(starts, low)
        if high is not None:
            stops = np.minimum(stops, high)
        starts = np.maximum(starts, reach[rows] + 1)
        covered += int(np.maximum(stops - starts + 1, 0).sum())
        reach[rows] = np.maximum(reach[rows], stops)
    return covered


def overlap(a, b, size=None):
    """IoU of two regions on pixels, inside the image of ``size`` (width, height) when given
    (raster._calculate_overlap)."""
    ea, eb = _extent(a), _extent(b)
    union = (min(ea[0], eb[0]), min(ea[1], eb[1]), max(ea[2], eb[2]), max(ea[3], eb[3]))
    if union[0] >= union[2] or union[1] >= union[3]:
        return 1.0   # the toolkit's "two empty regions are identical", also for 1-pixel-thin unions
    if size is not None:
        union = (max(0, union[0]), max(0, union[1]), min(size[0] - 1, union[2]), min(size[1] - 1, union[3]))
        if union[0] >= union[2] or union[1] >= union[3]:
            return 0.0
    if a.kind == RECTANGLE and b.kind == RECTANGLE:
        return _rectangle_overlap(a, b, union)
    if {a.kind, b.kind} == {RECTANGLE, POLYGON}:
        return _polygon_rectangle_overlap(*((a, b) if a.kind == POLYGON else (b, a)), union)
    ma, mb = _raster(a, union), _raster(b, union)
    either = int(np.count_nonzero(ma | mb))
    return np.count_nonzero(ma & mb) / either if either else 0.0


def _rectangle_spans(region, bounds):
    """([top, bottom), [left, right)) raster rows and columns a rectangle covers (raster.rasterize_rectangle).

    The toolkit clips the far edges against the absolute bounds (not the raster's size) and slices with them, so
    with bounds at negative coordinates (no image bounds) a negative end wraps around like a Python slice; the
    spans are those of its slices.
    """
    x, y, w, h = (int(v) for v in _rounded(region))
    left, top, right, bottom = bounds
    if x > right or x + w - 1 < left or y > bottom or y + h - 1 < top:
        return (0, 0), (0, 0)
    row_slice = slice(max(0, y - top), min(bottom, y + h - 1 - top) + 1)
    col_slice = slice(max(0, x - left), min(right, x + w - 1 - left) + 1)
    rows = row_slice.indices(bottom - top + 1)[:2]
    cols = col_slice.indices(right - left + 1)[:2]
    return (rows[0], max(rows)), (cols[0], max(cols))


def _rectangle_overlap(a, b, bounds):
    """Two rectangles counted without rasterising (the same pixel sets as _raster)."""
    (ra, ca), (rb, cb) = _rectangle_spans(a, bounds), _rectangle_spans(b, bounds)
    area_a = (ra[1] - ra[0]) * (ca[1] - ca[0])
    area_b = (rb[1] - rb[0]) * (cb[1] - cb[0])
    inter = (max(0, min(ra[1], rb[1]) - max(ra[0], rb[0])) * max(0, min(ca[1], cb[1]) - max(ca[0], cb[0])))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def _polygon_rectangle_overlap(polygon, rectangle, bounds):
    """A polygon and a rectangle counted from the polygon's runs, without a pixel mask (the same pixels)."""
    height = bounds[3] - bounds[1] + 1
    spans = _polygon_spans(_rounded(polygon) - [bounds[0], bounds[1]], height, bounds[2] - bounds[0] + 1)
    rows, cols = _rectangle_spans(rectangle, bounds)
    area_rectangle = (rows[1] - rows[0]) * (cols[1] - cols[0])
    area_polygon = _union_length(spans, height)
    inter = _union_length(spans, height, rows, (cols[0], cols[1] - 1)) if area_rectangle else 0
    union = area_polygon + area_rectangle - inter
    return inter / union if union > 0 else 0.0


def overlaps(trajectory, ground_truth, size=None):
    """Per-frame overlaps of two equally long region lists (raster.calculate_overlaps)."""
    if len(trajectory) != len(ground_truth):
        raise ValueError(f"{len(trajectory)} regions for {len(ground_truth)} ground-truth regions")
    return np.array([overlap(t, g, size) for t, g in zip(trajectory, ground_truth)], dtype=np.float64)


# ---------------------------------------------------------------- protocols and stacks
@dataclasses.dataclass(frozen=True)
class VOTStack:
    """The parameters of one VOT short-term stack (vot/stack/*.yaml, analysis defaults)."""

    name: str
    experiment: str          # "supervised" or "multistart"
    eao_low: int
    eao_high: int
    repetitions: int = 15
    skip_initialize: int = 5
    burnin: int = 10
    sensitivity: float = 30.0
    grace: int = 10
    threshold: float = 0.1
    unsupervised_burnin: int = 10


STACKS = {s.name: s for s in (
    VOTStack("vot2015", "supervised", 108, 371),
    VOTStack("vot2016", "supervised", 108, 371),
    VOTStack("vot2017", "supervised", 100, 356),
    VOTStack("vot2018", "supervised", 100, 356),
    VOTStack("vot2019", "supervised", 46, 291),
    VOTStack("vot2020", "multistart", 115, 755, repetitions=1, unsupervised_burnin=1),
    VOTStack("vot2021", "multistart", 115, 755, repetitions=1, unsupervised_burnin=1),
    VOTStack("vot2022", "multistart", 115, 755, repetitions=1, unsupervised_burnin=1),
)}
PROTOCOLS = ("vot-baseline", "vot-multistart", "vot-unsupervised")
DEFAULT_STACKS = {"vot-baseline": "vot2018", "vot-multistart": "vot2022", "vot-unsupervised": "vot2022"}
# The experiment folder each protocol's results live in (the stacks' names).
EXPERIMENT_FOLDERS = {"vot-baseline": "baseline", "vot-multistart": "baseline", "vot-unsupervised": "unsupervised"}


def get_stack(protocol, name=None, eao_interval=None):
    name = name or DEFAULT_STACKS[protocol]
    if name not in STACKS:
        raise UserError(f"--stack {name!r}: choose one of {', '.join(STACKS)}")
    stack = STACKS[name]
    wanted = {"vot-baseline": "supervised", "vot-multistart": "multistart"}.get(protocol)
    if wanted and stack.experiment != wanted:
        raise UserError(f"--stack {name}: a {stack.experiment} stack, not for --protocol {protocol}")
    if eao_interval is not None:
        low, high = eao_interval
        if not 0 <= low <= high:
            raise UserError(f"--eao-interval {low} {high}: need 0 <= LOW <= HIGH")
        stack = dataclasses.replace(stack, eao_low=low, eao_high=high)
    return stack


def find_anchors(values):
    """(forward, backward) anchor frames of an ``anchor.value`` column (experiment.multistart.find_anchors)."""
    values = np.asarray(values, dtype=np.float64)
    return [int(k) for k in np.flatnonzero(values > 0)], [int(k) for k in np.flatnonzero(values < 0)]


# ---------------------------------------------------------------- supervised (baseline)
def supervised_accuracy(trajectory, frame_overlaps, burnin):
    """Mean overlap without unknown / failure rows and ``burnin`` frames from each initialisation
    (analysis.supervised.compute_accuracy); 0 when nothing is left."""
    keep = np.ones(len(trajectory), dtype=bool)
    for k, region in enumerate(trajectory):
        if region.is_special(UNKNOWN) or region.is_special(FAILURE):
            keep[k] = False
        elif region.is_special(INITIALIZATION):
            keep[k:k + burnin] = False
    return float(np.mean(frame_overlaps[keep])) if keep.any() else 0.0


def eao_fragments(trajectory, frame_overlaps):
    """[(overlaps, reached the end)] from each initialisation to its failure (analysis.supervised.EAOCurve)."""
    failures = [k for k, r in enumerate(trajectory) if r.is_special(FAILURE)]
    inits = [k for k, r in enumerate(trajectory) if r.is_special(INITIALIZATION)]
    if not failures:
        return [(frame_overlaps, True)]
    fragments = [(frame_overlaps[start:stop], False) for start, stop in zip(inits, failures)]
    if len(inits) > len(failures):
        fragments.append((frame_overlaps[inits[-1]:], True))
    return fragments


def supervised_eao_curve(fragments):
    """Expected average overlap per length (analysis.supervised.compute_eao_curve): float32 overlaps; a fragment
    counts at every length if it failed (zeros after the failure), only up to its own length if it did not; the
    average at length j runs over frames 1..j (the initialisation frame 0 is left out)."""
    longest = max(len(o) for o, _ in fragments)
    table = np.zeros((len(fragments), longest), dtype=np.float32)
    counted = np.zeros((len(fragments), longest), dtype=np.float32)
    for k, (values, reached_end) in enumerate(fragments):
        table[k, :len(values)] = values
        counted[k, :(longest if not reached_end else len(values))] = 1
    running = table.copy()
    if longest > 1:
        sums = np.cumsum(table[:, 1:], axis=1, dtype=np.float64)
        running[:, 1:] = (sums / np.arange(1, longest)).astype(np.float32)
    return np.sum(running * counted, axis=0) / np.sum(counted, axis=0).astype(np.float64)


def eao_score(curve, low, high):
    """Mean of the curve over lengths low..high (as far as the curve reaches); NaN when it ends before ``low``."""
    part = np.asarray(curve)[low:high + 1]
    return float(np.mean(part)) if len(part) else math.nan


# ---------------------------------------------------------------- multistart
def multistart_progress(frame_overlaps, ground_truth, grace, threshold):
    """Frames tracked before the failure: ``grace`` consecutive frames with overlap <= threshold where the ground
    truth is not empty end the run ``grace`` frames before the last of them (analysis.multistart)."""
    left = grace
    for j, value in enumerate(frame_overlaps):
        if value <= threshold and not ground_truth[j].is_empty():
            left -= 1
            if left == 0:
                return j + 1 - grace
        else:
            left = grace
    return len(frame_overlaps)


def multistart_partial_curve(runs, length):
    """(phi, active) of one sequence (analysis.multistart.compute_eao_partial): at length j a run contributes its
    mean overlap over frames 1..j if it is that long, else, if it failed, the sum of its overlaps over j - 1."""
    phi, active = np.zeros(length), np.zeros(length)
    for values, success in runs:
        values = np.asarray(values, dtype=np.float64)
        n = min(len(values), length)
        js = np.arange(1, n)
        phi[1:n] += np.cumsum(values[1:n]) / js
        active[1:n] += 1
        if not success and n < length:
            phi[max(n, 2):] += np.sum(values[1:]) / (np.arange(max(n, 2), length) - 1)
            active[n:] += 1
    return np.divide(phi, active, out=np.zeros(length), where=active > 0), active


# ---------------------------------------------------------------- scoring trackers
@dataclasses.dataclass
class VOTScores:
    """One tracker's scores on one protocol: ``overall`` numbers, ``per_sequence`` numbers, curves."""

    protocol: str
    overall: dict
    per_sequence: dict
    eao_curve: np.ndarray | None = None


def _check_length(trajectory, sequence, path):
    if len(trajectory) != len(sequence):
        raise UserError(f"{path}: {len(trajectory)} rows for the {len(sequence)} frames of sequence {sequence.name}")


def _size(sequence):
    """(width, height) of a sequence's images (evaluation.datasets.vot puts it in ``info``)."""
    size = sequence.info.get("size")
    if size is None:
        raise UserError(f"vot sequence {sequence.name}: image size unknown (no frames and no width/height in "
                        f"its 'sequence' file)")
    return size


def score_baseline(sequences, trajectories, stack):
    """``trajectories``: {sequence name: [(path, regions) per repetition]}. analysis.supervised
    AverageAccuracyRobustness + EAOScore/EAOCurve."""
    per_sequence, fragments = {}, []
    weighted_accuracy = weighted_failures = frames = 0.0
    for sequence in sequences:
        runs = trajectories[sequence.name]
        accuracy = failures = 0.0
        for path, regions in runs:
            _check_length(regions, sequence, path)
            frame_overlaps = overlaps(regions, sequence.info["regions"], _size(sequence))
            failures += sum(r.is_special(FAILURE) for r in regions)
            accuracy += supervised_accuracy(regions, frame_overlaps, stack.burnin)
            fragments.extend(eao_fragments(regions, frame_overlaps))
        accuracy, failures = accuracy / len(runs), failures / len(runs)
        per_sequence[sequence.name] = {
            "accuracy": accuracy, "failures": failures,
            "ar_robustness": math.exp(-(failures / len(sequence)) * stack.sensitivity),
            "repetitions": len(runs), "length": len(sequence)}
        weighted_accuracy += accuracy * len(sequence)
        weighted_failures += failures * len(sequence)
        frames += len(sequence)
    accuracy, failures = weighted_accuracy / frames, weighted_failures / frames
    mean_length = frames / len(sequences)
    curve = supervised_eao_curve(fragments)
    overall = {"accuracy": accuracy, "failures": failures,
               "ar_robustness": math.exp(-(failures / mean_length) * stack.sensitivity),
               "eao": eao_score(curve, stack.eao_low, stack.eao_high)}
    return VOTScores("vot-baseline", overall, per_sequence, curve)


def score_multistart(sequences, trajectories, stack):
    """``trajectories``: {sequence name: {anchor frame: (path, regions)}}. analysis.multistart
    AverageAccuracyRobustness + EAOScore/EAOCurve (curve length = the interval's high end)."""
    per_sequence = {}
    total_accuracy = total_robustness = accuracy_weight = robustness_weight = 0.0
    curve_sum, curve_weight = np.zeros(stack.eao_high), np.zeros(stack.eao_high)
    for sequence in sequences:
        forward, backward = find_anchors(sequence.labels.get("anchor", ()))
        if not forward and not backward:
            raise UserError(f"vot sequence {sequence.name}: no anchor frames (anchor.value) for multistart")
        size_if_bounded = _size(sequence) if stack.burnin else None
        tracked = accuracy = total = 0.0
        runs = []
        for anchor, reverse in [(f, False) for f in forward] + [(b, True) for b in backward]:
            path, regions = trajectories[sequence.name][anchor]
            frames = range(anchor, -1, -1) if reverse else range(anchor, len(sequence))
            ground_truth = [sequence.info["regions"][k] for k in frames]
            if len(regions) != len(ground_truth):
                raise UserError(f"{path}: {len(regions)} rows for the {len(ground_truth)} frames from anchor {anchor}")
            frame_overlaps = overlaps(regions, ground_truth, size_if_bounded)
            progress = multistart_progress(frame_overlaps, ground_truth, stack.grace, stack.threshold)
            tracked += progress
            accuracy += float(sum(frame_overlaps[:progress].tolist()))
            total += len(ground_truth)
            run = frame_overlaps.copy()
            run[progress:] = 0.0
            runs.append((run, progress >= len(run)))
        seq_accuracy = accuracy / tracked if tracked > 0 else 0.0
        seq_robustness = tracked / total
        per_sequence[sequence.name] = {"accuracy": seq_accuracy, "robustness": seq_robustness,
                                       "anchors": len(forward) + len(backward), "length": len(sequence)}
        total_accuracy += seq_accuracy * tracked
        total_robustness += seq_robustness * len(sequence)
        accuracy_weight += tracked
        robustness_weight += len(sequence)
        phi, active = multistart_partial_curve(runs, stack.eao_high)
        curve_sum += phi * active
        curve_weight += active
    curve = np.divide(curve_sum, curve_weight, out=np.zeros(stack.eao_high), where=curve_weight > 0)
    overall = {"accuracy": total_accuracy / accuracy_weight, "robustness": total_robustness / robustness_weight,
               "eao": eao_score(curve, stack.eao_low, stack.eao_high)}
    return VOTScores("vot-multistart", overall, per_sequence, curve)


def unsupervised_accuracy(trajectory, ground_truth, size, burnin):
    """Mean overlap of one repetition (analysis.accuracy.gather_overlaps without threshold / invisible rules):
    unknown ground truth and unknown / failure rows left out, ``burnin`` frames from each initialisation too."""
    frame_overlaps = overlaps(trajectory, ground_truth, size)
    keep = np.ones(len(trajectory), dtype=bool)
    for k, (region, truth) in enumerate(zip(trajectory, ground_truth)):
        if truth.is_special(UNKNOWN) or region.is_special(UNKNOWN) or region.is_special(FAILURE):
            keep[k] = False
        elif region.is_special(INITIALIZATION):
            keep[k:k + burnin] = False
    return float(np.mean(frame_overlaps[keep])) if keep.any() else None


def score_unsupervised(sequences, trajectories, stack):
    """``trajectories``: {sequence name: [(path, regions) per repetition]}. analysis.accuracy AverageAccuracy
    (weighted by sequence length)."""
    per_sequence = {}
    weighted = frames = 0.0
    for sequence in sequences:
        runs = trajectories[sequence.name]
        total = 0.0
        for path, regions in runs:
            _check_length(regions, sequence, path)
            value = unsupervised_accuracy(regions, sequence.info["regions"], _size(sequence),
                                          stack.unsupervised_burnin)
            total += value if value is not None else 0.0
        accuracy = total / len(runs)
        per_sequence[sequence.name] = {"average_accuracy": accuracy, "repetitions": len(runs),
                                       "length": len(sequence)}
        weighted += accuracy * len(sequence)
        frames += len(sequence)
    return VOTScores("vot-unsupervised", {"average_accuracy": weighted / frames}, per_sequence)
