"""Parity with vot-toolkit 0.9.0's own analysis (``vot analysis --format json``) on fabricated workspaces.

vot-toolkit pulls opencv-python (which clashes with the headless OpenCV mimtrack uses) and numba, so it lives in
its own environment, run as a subprocess: ``python3 -m venv V && V/bin/pip install vot-toolkit==0.9.0
attributee==0.1.9`` (the ``vot-toolkit`` extra of setup.py), then ``MIMTRACK_VOT_PYTHON=V/bin/python pytest``.
Without that variable and without ``vot`` importable here, the tests skip.
"""

import os
import subprocess

import numpy as np
import pytest

from mimtrack.evaluation import vot, vot_cli
from mimtrack.evaluation.datasets import load_dataset
from tests.evaluation import vot_workspace as fab


def ours(workspace, protocol, experiment, stack):
    sequences = load_dataset("vot", os.path.join(workspace, "sequences"))
    results = os.path.join(workspace, "results", fab.TRACKER)
    (scores,), missing, _ = vot_cli.score([results], sequences, protocol, stack, experiment)
    assert not missing
    return scores


@pytest.fixture(scope="module")
def fabricated(tmp_path_factory):
    workspace = fab.make_workspace(tmp_path_factory.mktemp("vot") / "ws", seed=3)
    return workspace, fab.toolkit_analysis(workspace)


def test_baseline_matches_toolkit(fabricated):
    workspace, reference = fabricated
    stack = vot.get_stack("vot-baseline", "vot2018", fab.EAO_BASELINE)
    mine = ours(workspace, "vot-baseline", "baseline", stack)
    accuracy, failures, (ar_robustness, ar_accuracy), length = reference["baseline"]["supervised.AverageAccuracyRobustness"]
    assert failures > 0.5   # the fabricated runs do fail
    np.testing.assert_allclose(mine.overall["accuracy"], accuracy, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.overall["failures"], failures, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.overall["ar_robustness"], ar_robustness, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.overall["eao"], reference["baseline"]["supervised.EAOScore"][0], rtol=0, atol=1e-6)
    curve = reference["baseline"]["supervised.EAOCurve"][0]
    np.testing.assert_allclose(mine.eao_curve, curve, rtol=0, atol=1e-6)


def test_multistart_matches_toolkit(fabricated):
    workspace, reference = fabricated
    stack = vot.get_stack("vot-multistart", "vot2022", fab.EAO_MULTISTART)
    mine = ours(workspace, "vot-multistart", "multistart", stack)
    accuracy, robustness, _, _, _ = reference["multistart"]["multistart.AverageAccuracyRobustness"]
    assert robustness < 0.99   # some runs fail before their end
    np.testing.assert_allclose(mine.overall["accuracy"], accuracy, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.overall["robustness"], robustness, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.overall["eao"], reference["multistart"]["multistart.EAOScore"][0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(mine.eao_curve, reference["multistart"]["multistart.EAOCurve"][0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("experiment, stack_name", [("unsupervised", "vot2022"), ("unsupervised10", "vot2018")])
def test_unsupervised_matches_toolkit(fabricated, experiment, stack_name):
    workspace, reference = fabricated
    mine = ours(workspace, "vot-unsupervised", experiment, vot.get_stack("vot-unsupervised", stack_name))
    np.testing.assert_allclose(mine.overall["average_accuracy"], reference[experiment]["accuracy.AverageAccuracy"][0],
                               rtol=0, atol=1e-6)


_TOOLKIT_OVERLAPS = """
import sys
from vot.region.io import parse_region
from vot.region.raster import calculate_overlap
for line in open(sys.argv[1]):
    a, b, w, h = line.rstrip("\\n").split(";")
    size = (int(w), int(h)) if w else None
    print(repr(calculate_overlap(parse_region(a), parse_region(b), size)))
"""


def _random_region(rng, width, height, near=None):
    kind = rng.choice(["rectangle", "polygon", "mask", "thin", "special"], p=[0.35, 0.35, 0.15, 0.1, 0.05])
    if near is None:
        x, y = rng.uniform(-0.3 * width, width), rng.uniform(-0.3 * height, height)
    else:   # a second region around the first one's position, so that most pairs overlap partly
        x, y = near[0] + rng.normal(0, 0.1 * width), near[1] + rng.normal(0, 0.1 * height)
    w, h = rng.uniform(0, 0.6 * width), rng.uniform(0, 0.6 * height)
    if rng.random() < 0.3:   # half-integers: rounding half to even
        x, y, w, h = (np.round(v * 2) / 2 for v in (x, y, w, h))
    if kind == "rectangle":
        return vot.Region.rectangle(x, y, w, h)
    if kind == "thin":
        return vot.Region.rectangle(x, y, rng.choice([0, 1, 1.5, -2]), h)
    if kind == "polygon":
        n = rng.integers(3, 8)
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        radius = rng.uniform(0.3, 1.0, n)
        return vot.Region.polygon(np.stack([x + w * radius * np.cos(angles), y + h * radius * np.sin(angles)], 1))
    if kind == "mask":
        mh, mw = int(rng.integers(1, 25)), int(rng.integers(1, 25))
        return vot.Region(vot.MASK, (rng.random((mh, mw)) < 0.6).astype(np.uint8),
                          offset=(int(x), int(y)))
    return vot.Region.special(int(rng.integers(0, 3)))


def test_overlap_matches_toolkit_raster(tmp_path):
    """calculate_overlap of random rectangles, polygons (non-convex, leaving the image), masks, 0/1-pixel thin
    boxes and special regions, with and without image bounds: equal to the toolkit's to 1e-12."""
    python = fab.toolkit_python()
    rng = np.random.default_rng(7)
    pairs, lines = [], []
    for _ in range(1500):
        width, height = int(rng.integers(20, 90)), int(rng.integers(20, 90))
        a = _random_region(rng, width, height)
        b = _random_region(rng, width, height, near=a.box()[:2] if a.box() else (width / 2, height / 2))
        size = (width, height) if rng.random() < 0.8 else None
        # The mask text round-trips through the toolkit's own RLE reader.
        pairs.append((vot.parse_region(a.text()), vot.parse_region(b.text()), size))
        lines.append(f"{a.text()};{b.text()};{size[0] if size else ''};{size[1] if size else ''}")
    (tmp_path / "pairs.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "overlaps.py").write_text(_TOOLKIT_OVERLAPS)
    done = subprocess.run([python, str(tmp_path / "overlaps.py"), str(tmp_path / "pairs.txt")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = np.array([float(v) for v in done.stdout.split()])
    mine = np.array([vot.overlap(a, b, size) for a, b, size in pairs])
    assert len(reference) == len(pairs)
    assert np.mean((reference > 0) & (reference < 1)) > 0.3   # many partial overlaps
    np.testing.assert_allclose(mine, reference, rtol=0, atol=1e-12)
