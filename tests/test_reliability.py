"""The fault suite of issue 13: each case once failed (lost data, hung processes, tracebacks, wrong exit codes).

Full disks are small tmpfs mounts, read-only folders read-only mounts and stops real signals sent to a
subprocess; each case skips where the machine cannot do that (mounting needs root).
"""

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from mimtrack import cli
from tests.conftest import REPO, fill_disk


def run_cli(*args, timeout=120, **kwargs):
    """``mimtrack ARGS`` in a subprocess (this checkout first on the path) -> CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mimtrack.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env, **kwargs)


def one_line_error(text, command):
    lines = text.strip().splitlines()
    assert len(lines) >= 1 and lines[-1].startswith(f"mimtrack {command}: error: "), text
    assert "Traceback" not in text, text
    return lines[-1]


def numbered_frames(folder, count, size=(96, 128)):
    """``1.jpg .. count.jpg`` whose first pixel row encodes the frame number (k * 10)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(1, count + 1):
        image = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        image[:8] = k * 10
        cv2.imwrite(str(folder / f"{k}.png"), image)
    return folder


def otb(tmp_path):
    """Two tiny OTB sequences with frames (64 x 48), tracked by the bundled demo tracker in well under a second."""
    from tests.fabricate import make_otb

    root = tmp_path / "otb"
    make_otb(root, {"Basketball": [[10, 8, 20, 16]] * 6, "Crossing": [[30.5, 20.25, 12, 10]] * 5}, frames=True)
    return root


# ------------------------------------------------------------------ 1. demo on a full disk
def test_demo_on_a_full_disk_keeps_the_previous_video(small_disk, tmp_path):
    disk = small_disk("3m")
    frames = numbered_frames(tmp_path / "frames", 12, size=(240, 320))
    out = disk / "out.mp4"
    out.write_bytes(b"the previous good video")
    fill_disk(disk, leave=24 << 10)
    done = run_cli("demo", frames, "--init", "100,80,60,50", "--output", out)
    assert done.returncode == 2, done.stderr
    assert "disk full" in one_line_error(done.stderr, "demo")
    assert out.read_bytes() == b"the previous good video"
    assert not [p for p in os.listdir(disk) if p.startswith(".tmp-")]


def test_demo_on_a_full_disk_before_the_first_frame(small_disk, tmp_path):
    disk = small_disk("1m")
    frames = numbered_frames(tmp_path / "frames", 3)
    fill_disk(disk, leave=0)
    done = run_cli("demo", frames, "--init", "10,10,30,30", "--output", disk / "out.mp4")
    assert done.returncode == 2
    message = one_line_error(done.stderr, "demo")
    assert "disk full" in message and "use .mp4" not in message


# ------------------------------------------------------------------ 5. incomplete result files are redone
def test_track_redoes_truncated_and_garbage_results(tmp_path):
    root = otb(tmp_path)
    results = tmp_path / "results"
    assert cli.main(["track", "--dataset", "otb", "--root", str(root), "--results", str(results)]) == 0
    good = (results / "Crossing.txt").read_text()
    rows = good.splitlines()
    (results / "Basketball.txt").write_text("\n".join(good.splitlines()[:2]) + "\n")   # truncated
    (results / "Crossing.txt").write_text("garbage\n" * len(rows))
    done = run_cli("track", "--dataset", "otb", "--root", root, "--results", results)
    assert done.returncode == 0, done.stderr
    assert "tracked 2 sequences" in done.stdout and "skipped 0" in done.stdout
    assert (results / "Crossing.txt").read_text() == good
    assert len((results / "Basketball.txt").read_text().splitlines()) > 2
    again = run_cli("track", "--dataset", "otb", "--root", root, "--results", results)
    assert "tracked 0 sequences" in again.stdout and "skipped 2" in again.stdout


# ------------------------------------------------------------------ 8. natural frame order
def test_image_folder_frames_are_read_in_natural_order(tmp_path):
    from tracker.data.custom import custom_source
    from tracker.demo import FrameSource

    folder = numbered_frames(tmp_path / "seq", 12)
    source = FrameSource(str(folder))
    assert [int(frame[0, 0, 0]) // 10 for frame in source] == list(range(1, 13))
    (folder / "groundtruth.txt").write_text("10,10,20,20\n" * 12)
    frames = custom_source(folder).sequence(0).frames
    assert [os.path.basename(f) for f in frames] == [f"{k}.png" for k in range(1, 13)]


# ------------------------------------------------------------------ 10. outputs that are folders
def test_outputs_that_are_folders_fail_before_the_work(tmp_path, capsys):
    frames = numbered_frames(tmp_path / "frames", 3)
    started = time.perf_counter()
    assert cli.main(["demo", str(frames), "--init", "10,10,30,30", "--boxes", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"--boxes {tmp_path}: is a folder" in one_line_error(err, "demo") and ".tmp-" not in err
    assert cli.main(["demo", str(frames), "--init", "10,10,30,30", "--output", str(tmp_path) + "/"]) == 2
    assert "--output" in one_line_error(capsys.readouterr().err, "demo")
    root = otb(tmp_path)
    results = tmp_path / "res"
    assert cli.main(["track", "--dataset", "otb", "--root", str(root), "--results", str(results)]) == 0
    capsys.readouterr()
    assert cli.main(["eval", "--dataset", "otb", "--root", str(root), "--results", str(results),
                     "--json", str(tmp_path) + "/"]) == 2
    err = capsys.readouterr().err
    assert "--json" in one_line_error(err, "eval") and "is a folder" in err and ".tmp-" not in err


# ------------------------------------------------------------------ 11. a FIFO as a result file
def test_a_fifo_result_file_is_refused_not_waited_on(tmp_path):
    root = otb(tmp_path)
    results = tmp_path / "res"
    results.mkdir()
    os.mkfifo(results / "Crossing.txt")
    done = run_cli("eval", "--dataset", "otb", "--root", root, "--results", results, timeout=30)
    assert done.returncode == 2
    assert "not a regular file" in one_line_error(done.stderr, "eval")


# ------------------------------------------------------------------ 13. the demo video's mode
def test_demo_video_gets_the_mode_of_every_other_output(tmp_path):
    frames = numbered_frames(tmp_path / "frames", 3)
    old = os.umask(0o022)
    try:
        assert cli.main(["demo", str(frames), "--init", "10,10,30,30", "--output", str(tmp_path / "v.mp4"),
                         "--boxes", str(tmp_path / "b.txt")]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "v.mp4").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode) == 0o644
