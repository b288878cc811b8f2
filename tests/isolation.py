"""Running a test in a process of its own: OpenVINO's runtime, once loaded into the test process, made a later
test that starts worker processes (tests/tracker/test_runner.py, spawn) crash the whole pytest process with a
segmentation fault when the full tracker suite runs in one process. Tests that load OpenVINO run in a child."""

import functools
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
_CHILD = "MIMTRACK_TEST_CHILD"


def in_own_process(test):
    """Decorator: run ``test`` in a fresh ``python -m pytest`` child and assert that it passed (or skipped)."""
    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if os.environ.get(_CHILD):
            return test(*args, **kwargs)
        node = f"{pathlib.Path(sys.modules[test.__module__].__file__).relative_to(REPO)}::{test.__name__}"
        out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node], cwd=REPO,
                             env={**os.environ, _CHILD: "1"}, capture_output=True, text=True, timeout=1200)
        assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
        if " skipped" in out.stdout and " passed" not in out.stdout:   # e.g. OpenVINO not installed
            pytest.skip(f"in its own process: {out.stdout.strip().splitlines()[-1]}")
    return wrapper
