"""Fabricated vot-toolkit workspaces for the VOT tests: sequences, a stack without a dataset URL, results.

Sequences of different lengths and sizes with rectangle or polygon (rotated box) ground truth, some of it leaving
the image, half-integer coordinates (rounding), unknown ground-truth rows; results with failures followed by the
skipped rows and re-initialisations, several repetitions (one sequence with fewer), rectangle and polygon
predictions, multistart runs forwards and backwards that drift off the target.
"""

import glob
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

TRACKER = "Fabricated"
EAO_BASELINE = (5, 40)
EAO_MULTISTART = (4, 30)
SKIP_INITIALIZE = 5
REPETITIONS = 3

STACK = f"""title: fabricated stack (no dataset download)
experiments:
  baseline:
    type: supervised
    repetitions: {REPETITIONS}
    skip_initialize: {SKIP_INITIALIZE}
    analyses:
      - type: supervised_average_ar
        sensitivity: 30
      - type: supervised_eao_score
        low: {EAO_BASELINE[0]}
        high: {EAO_BASELINE[1]}
      - type: supervised_eao_curve
  multistart:
    type: multistart
    analyses:
      - type: multistart_eao_score
        low: {EAO_MULTISTART[0]}
        high: {EAO_MULTISTART[1]}
      - type: multistart_eao_curve
        high: {EAO_MULTISTART[1]}
      - type: multistart_average_ar
  unsupervised:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
        burnin: 1
  unsupervised10:
    type: unsupervised
    repetitions: 1
    analyses:
      - type: average_accuracy
"""

# name, frames, (width, height), ground truth kind
SEQUENCES = (("alpha", 37, (80, 60), "rectangle"), ("beta", 52, (64, 48), "polygon"),
             ("gamma", 29, (96, 72), "rectangle"), ("delta", 44, (72, 54), "polygon"))


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _number(value):
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _rectangle(x, y, w, h):
    return ",".join(_number(v) for v in (x, y, w, h))


def _polygon(cx, cy, w, h, angle):
    c, s = np.cos(angle), np.sin(angle)
    corners = [(-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)]
    return ",".join(_number(v) for dx, dy in corners for v in (cx + c * dx - s * dy, cy + s * dx + c * dy))


def _ground_truth(rng, n, size, kind):
    """Centre path (drifting out of the image for a while), size, and the region rows."""
    width, height = size
    cx = width / 2 + 0.45 * width * np.sin(np.linspace(0, 2.5, n) + rng.uniform(0, 3))
    cy = height / 2 + 0.3 * height * np.cos(np.linspace(0, 1.7, n))
    w = np.round(rng.uniform(0.2, 0.35) * width + 3 * np.sin(np.arange(n) / 5)) + 0.5 * (np.arange(n) % 2)
    h = np.round(rng.uniform(0.2, 0.35) * height + 2 * np.cos(np.arange(n) / 7))
    if kind == "rectangle":
        rows = [_rectangle(cx[k] - w[k] / 2, cy[k] - h[k] / 2, w[k], h[k]) for k in range(n)]
    else:
        rows = [_polygon(cx[k], cy[k], w[k], h[k], 0.3 * np.sin(k / 6)) for k in range(n)]
    return cx, cy, w, h, rows


def _prediction(rng, cx, cy, w, h, k, lost, polygon=False):
    """A box near the target (jittered), or far from it while ``lost``."""
    if lost:
        x, y = cx[k] + 3 * w[k], cy[k] + 3 * h[k]
    else:
        x, y = cx[k] + rng.normal(0, 0.15 * w[k]), cy[k] + rng.normal(0, 0.15 * h[k])
    pw, ph = w[k] * rng.uniform(0.8, 1.2), h[k] * rng.uniform(0.8, 1.2)
    if polygon:
        return _polygon(x, y, pw, ph, rng.uniform(-0.2, 0.2))
    return _rectangle(x - pw / 2, y - ph / 2, pw, ph)


def _baseline_rows(rng, n, cx, cy, w, h, failures):
    """Toolkit baseline rows with failures at the given frames (re-initialised SKIP_INITIALIZE frames later)."""
    rows, k = [], 0
    while k < n:
        rows.append("1")
        k += 1
        while k < n:
            if k in failures:
                rows.append("2")
                skipped = min(SKIP_INITIALIZE - 1, n - k - 1)
                rows.extend(["0"] * skipped)
                k += 1 + skipped
                break
            rows.append(_prediction(rng, cx, cy, w, h, k, False, polygon=rng.random() < 0.2))
            k += 1
    return rows


def make_workspace(root, seed=0):
    """Write the workspace under ``root``; returns the workspace path."""
    rng = np.random.default_rng(seed)
    ws = os.fspath(root)
    _write(os.path.join(ws, "config.yaml"), "registry:\n- ./trackers.ini\nstack: ./stack.yaml\n")
    _write(os.path.join(ws, "trackers.ini"), f"[{TRACKER}]\nlabel = {TRACKER}\nprotocol = trax\ncommand = none\n")
    _write(os.path.join(ws, "stack.yaml"), STACK)
    _write(os.path.join(ws, "sequences", "list.txt"), "".join(f"{s[0]}\n" for s in SEQUENCES))
    results = os.path.join(ws, "results", TRACKER)
    for index, (name, n, size, kind) in enumerate(SEQUENCES):
        folder = os.path.join(ws, "sequences", name)
        # The size comes from 'sequence' (no frames needed), as the toolkit also allows.
        _write(os.path.join(folder, "sequence"), f"channels.color=color/%08d.jpg\nformat=default\nfps=30\n"
                                                 f"name={name}\nwidth={size[0]}\nheight={size[1]}\nlength={n}\n")
        cx, cy, w, h, gt = _ground_truth(rng, n, size, kind)
        if index == 2:
            gt = gt[:-3]   # a ground truth shorter than the sequence: padded with unknown rows
        _write(os.path.join(folder, "groundtruth.txt"), "\n".join(gt) + "\n")
        anchor = np.zeros(n, dtype=int)
        anchor[[0, n // 3]] = 1
        anchor[[n // 2, n - 1]] = -1
        _write(os.path.join(folder, "anchor.value"), "\n".join(map(str, anchor)) + "\n")
        _write(os.path.join(folder, "occlusion.tag"), "\n".join(str(int(k % 7 == 0)) for k in range(n)) + "\n")

        for rep in range(1, REPETITIONS + (0 if index == 1 else 1)):
            failures = set(rng.choice(np.arange(3, n - 1), size=rep + index % 2, replace=False).tolist())
            rows = _baseline_rows(rng, n, cx, cy, w, h, failures)
            _write(os.path.join(results, "baseline", name, f"{name}_{rep:03d}.txt"), "\n".join(rows) + "\n")

        for start in np.flatnonzero(anchor):
            frames = list(range(start, -1, -1)) if anchor[start] < 0 else list(range(start, n))
            lost_from = len(frames) // 2 if rng.random() < 0.6 else len(frames) + 1
            rows = ["1"] + [_prediction(rng, cx, cy, w, h, k, i >= lost_from) for i, k in enumerate(frames[1:], 1)]
            _write(os.path.join(results, "multistart", name, f"{name}_{start:08d}.txt"), "\n".join(rows) + "\n")

        rows = ["1"] + [_prediction(rng, cx, cy, w, h, k, n // 2 <= k < n // 2 + 4) for k in range(1, n)]
        for experiment in ("unsupervised", "unsupervised10"):
            _write(os.path.join(results, experiment, name, f"{name}_001.txt"), "\n".join(rows) + "\n")
    return ws


# ---------------------------------------------------------------- the official analysis
def toolkit_python():
    """The Python that has vot-toolkit: $MIMTRACK_VOT_PYTHON, or this one if it imports ``vot``; else skip."""
    configured = os.environ.get("MIMTRACK_VOT_PYTHON")
    if configured:
        return configured
    if importlib.util.find_spec("vot") is not None:
        return sys.executable
    pytest.skip("vot-toolkit not installed (set MIMTRACK_VOT_PYTHON to a Python that has vot-toolkit==0.9.0)")


def toolkit_analysis(workspace, experiments=None):
    """{experiment: {analysis class name: result of the one tracker}} from ``vot analysis --format json``."""
    command = [toolkit_python(), "-m", "vot", "analysis", "--workspace", workspace, TRACKER, "--format", "json"]
    if experiments:
        command += ["--experiments", ",".join(experiments)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    reports = glob.glob(os.path.join(workspace, "analysis", "*.json"))
    assert done.returncode == 0 and reports, done.stdout[-2000:] + done.stderr[-2000:]
    with open(max(reports, key=os.path.getmtime)) as f:
        data = json.load(f)
    out = {}
    for experiment, block in data["results"].items():
        analyses = block["parameters"]["analyses"]
        out[experiment] = {a["type"].rsplit(".", 2)[-2] + "." + a["type"].rsplit(".", 1)[-1]: r[0]
                           for a, r in zip(analyses, block["results"])}
    return out
