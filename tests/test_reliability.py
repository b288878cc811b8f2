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


def run_cli(*args, timeout=600, **kwargs):
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
    from mimtrack.tracker.data.custom import custom_source
    from mimtrack.tracker.demo import FrameSource

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
    done = run_cli("eval", "--dataset", "otb", "--root", root, "--results", results, timeout=180)
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


# ------------------------------------------------------------------ 2. track workers die with their parent
def _children(pid):
    """pids of the processes whose parent is ``pid`` and that run a multiprocessing spawn worker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(entry))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def _has_torch(pid):
    try:
        with open(f"/proc/{pid}/maps") as f:
            return "libtorch" in f.read()
    except OSError:
        return False


def _wait_for(condition, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    return condition()


@pytest.fixture(scope="module")
def long_otb(tmp_path_factory):
    """Four OTB sequences of 600 frames: a --workers 2 run takes long enough to be stopped in the middle."""
    from tests.fabricate import make_otb

    root = tmp_path_factory.mktemp("long_otb")
    make_otb(root, {name: [[10, 8, 20, 16]] * 600 for name in ("Basketball", "Car4", "Crossing", "Dancer")},
             frames=True)
    return root


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_track_workers_die_with_their_parent(long_otb, tmp_path, sig):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    parent = subprocess.Popen([sys.executable, "-m", "mimtrack.cli", "track", "--dataset", "otb", "--root",
                               str(long_otb), "--results", str(tmp_path / "res"), "--workers", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    workers = []
    try:
        workers = _wait_for(lambda: len(_children(parent.pid)) == 2 and _children(parent.pid), 300)
        assert workers, "the two workers never started"
        # stop them once they run their initializer (torch imported: it comes with the pickled function)
        assert _wait_for(lambda: all(_has_torch(p) for p in workers), 300)
        parent.send_signal(sig)
        rc = parent.wait(timeout=300)
        assert rc == (143 if sig == signal.SIGTERM else -signal.SIGKILL), parent.stdout.read().decode()
        assert _wait_for(lambda: not any(_alive(p) for p in workers), 120), "workers outlived their parent"
        if sig == signal.SIGTERM:
            assert "Traceback" not in parent.stderr.read().decode()
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.wait()
        for pid in workers or []:   # never leave a stray worker behind, even when the test failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------ 6. stopped runs exit 130 / 143; epochs <= 0
@pytest.fixture(scope="module")
def synthetic_got10k(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn") / "got10k"
    assert cli.main(["make-synthetic", "--format", "got10k", "--split", "train", "--out", str(root),
                     "--sequences", "3", "--frames", "30", "--size", "96x72", "--seed", "3"]) == 0
    return root


TRAIN_SMALL = ["--set", "data.num_workers=0", "--set", "train.batch_size=2", "--set", "data.samples_per_epoch=4000",
               "--set", "train.epochs=2"]


def _start_and_signal(args, sig, ready):
    """Start ``mimtrack ARGS``, wait until ``ready(stdout lines so far)``, send ``sig`` -> (returncode, stderr)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "-m", "mimtrack.cli", *map(str, args)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, text=True)
    lines, errors = [], []
    readers = [threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True),
               threading.Thread(target=lambda: errors.extend(process.stderr), daemon=True)]
    for reader in readers:
        reader.start()
    try:
        started = _wait_for(lambda: ready(lines) or process.poll() is not None, 600)
        assert started and process.poll() is None, "".join(errors)
        time.sleep(1.5)   # well inside the training loop
        process.send_signal(sig)
        process.wait(timeout=600)
        for reader in readers:
            reader.join(10)
        return process.returncode, "".join(errors)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_train_stopped_by_a_signal_checkpoints_then_exits_130_or_143(synthetic_got10k, tmp_path, sig):
    out = tmp_path / "run"
    rc, err = _start_and_signal(["train", "smoke_cpu", "--output", out, "--data", f"got10k={synthetic_got10k}",
                                 *TRAIN_SMALL], sig, lambda lines: (out / "config.yaml").exists())
    assert rc == 128 + sig, err
    assert (out / "last.pth").is_file() and "resume with --resume" in err and "Traceback" not in err


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_pretrain_stopped_by_a_signal_checkpoints_then_exits_130_or_143(tmp_path, sig):
    from tests.pretrain.test_engine import SMALL, make_images

    data = make_images(tmp_path / "data", count=400)
    out = tmp_path / "run"
    args = ["pretrain", "mae_tiny", "--data", data, "--output", out, "--set", "train.epochs=3"]
    for item in SMALL:
        if not item.startswith("train.epochs"):
            args += ["--set", item]
    # the run's summary line ("mae_tiny: 400 images, ...") is printed just before the first step
    rc, err = _start_and_signal(args, sig, lambda lines: any("images," in line for line in lines))
    assert rc == 128 + sig, err
    assert (out / "last.pth").is_file() and "Traceback" not in err


@pytest.mark.parametrize("setting", ["train.epochs=0", "train.epochs=-3", "train.batch_size=0"])
def test_train_rejects_settings_that_cannot_train(synthetic_got10k, tmp_path, capsys, setting):
    out = tmp_path / "run"
    assert cli.main(["train", "smoke_cpu", "--output", str(out), "--data", f"got10k={synthetic_got10k}",
                     "--set", setting]) == 2
    assert f"config {setting}: must be >= 1" in one_line_error(capsys.readouterr().err, "train")
    assert not (out / "last.pth").exists()


# ------------------------------------------------------------------ 9. one-line errors, not tracebacks
def test_a_config_whose_top_level_is_a_list(tmp_path, capsys):
    recipe = tmp_path / "list.yaml"
    recipe.write_text("- a\n- b\n")
    assert cli.main(["train", str(recipe), "--output", str(tmp_path / "run")]) == 2
    assert "top level must be a mapping" in one_line_error(capsys.readouterr().err, "train")
    assert cli.main(["pretrain", str(recipe), "--data", str(tmp_path), "--output", str(tmp_path / "p")]) == 2
    assert "top level must be a mapping" in one_line_error(capsys.readouterr().err, "pretrain")


# ------------------------------------------------------------------ 3. truncated LMDBs, pack-lmdb on a full disk
@pytest.fixture(scope="module")
def packed_got10k(synthetic_got10k, tmp_path_factory):
    out = tmp_path_factory.mktemp("lmdb") / "g.lmdb"
    assert cli.main(["pack-lmdb", "--dataset", "got10k", "--root", str(synthetic_got10k), "--out", str(out)]) == 0
    return out


def _truncated(packed, tmp_path):
    data = packed.read_bytes()
    assert len(data) > 200_000
    out = tmp_path / "t.lmdb"
    out.write_bytes(data[:100_000])      # head -c 100000 g.lmdb > t.lmdb
    return out


@pytest.mark.parametrize("workers", [0, 1])
def test_train_on_a_truncated_lmdb_is_a_one_line_error(packed_got10k, tmp_path, workers):
    truncated = _truncated(packed_got10k, tmp_path)
    done = run_cli("train", "smoke_cpu", "--output", tmp_path / "run", "--data", f"got10k={truncated}",
                   "--set", f"data.num_workers={workers}", "--set", "train.epochs=1")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "truncated" in one_line_error(done.stderr, "train")


def test_pretrain_on_a_truncated_lmdb_is_a_one_line_error(packed_got10k, tmp_path):
    from tests.pretrain.test_engine import SMALL

    truncated = _truncated(packed_got10k, tmp_path)
    done = run_cli("pretrain", "mae_tiny", "--data", truncated, "--output", tmp_path / "run",
                   *[a for item in SMALL for a in ("--set", item)])
    assert done.returncode == 2, done.stderr[-2000:]
    assert "truncated" in one_line_error(done.stderr, "pretrain")


def test_pack_lmdb_on_a_full_disk(synthetic_got10k, small_disk):
    disk = small_disk("300k")
    done = run_cli("pack-lmdb", "--dataset", "got10k", "--root", synthetic_got10k, "--out", disk / "x.lmdb")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "disk full" in one_line_error(done.stderr, "pack-lmdb")
    assert os.listdir(disk) == []


def test_pack_lmdb_into_a_read_only_folder(synthetic_got10k, small_disk):
    disk = small_disk("1m", "ro")
    done = run_cli("pack-lmdb", "--dataset", "got10k", "--root", synthetic_got10k, "--out", disk / "x.lmdb")
    assert done.returncode == 2
    assert "x.lmdb" in one_line_error(done.stderr, "pack-lmdb")


# ------------------------------------------------------------------ 7. one LMDB format: pack -> train, pack -> pretrain
def test_packed_lmdb_trains_in_the_form_readme_documents(packed_got10k, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "smoke_cpu", "--output", str(out), "--data", f"got10k-lmdb={packed_got10k}",
                     "--set", "data.num_workers=0", "--set", "train.batch_size=2", "--set",
                     "data.samples_per_epoch=4", "--set", "train.epochs=1"]) == 0
    assert (out / "last.pth").is_file()


def test_packed_lmdb_pretrains(packed_got10k, tmp_path):
    from tests.pretrain.test_engine import SMALL

    out = tmp_path / "run"
    args = ["pretrain", "mae_tiny", "--data", str(packed_got10k), "--output", str(out)]
    assert cli.main(args + [a for item in SMALL if not item.startswith("train.epochs") for a in ("--set", item)]
                    + ["--set", "train.epochs=1", "--set", "train.warmup_epochs=0"]) == 0
    assert (out / "last.pth").is_file()
    from mimtrack.pretrain.data import ImageSource

    assert len(ImageSource(packed_got10k)) == 3 * 30   # every frame of the pack is an image, no metadata record


# ------------------------------------------------------------------ 4. stale temp files, --resume, metrics.jsonl
def _trainer(cfg, out, resume=False, on_step=None):
    from tests.tracker.train_helpers import fake_loader_factory
    from mimtrack.tracker.train.trainer import Trainer

    return Trainer(cfg, out, fake_loader_factory(cfg, samples=16), resume=resume, on_step=on_step, progress=False)


def _records(out, phase="train"):
    import json

    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["phase"] == phase]


def test_killed_in_the_first_checkpoint_write_then_resumed(tmp_path, capsys):
    from tests.tracker.train_helpers import tiny_config

    cfg = tiny_config(epochs=1, checkpoint_every=1)
    straight = tmp_path / "straight"
    _trainer(cfg, straight).fit()
    # What SIGKILL during the first checkpoint write leaves: the epoch's log line, a 0-byte temporary file.
    out = tmp_path / "killed"
    out.mkdir()
    (out / "metrics.jsonl").write_text((straight / "metrics.jsonl").read_text() + '{"phase": "tr')
    (out / ".tmp-x1y2-last.pth").write_bytes(b"")
    trainer = _trainer(cfg, out, resume=True)
    err = capsys.readouterr().err
    assert "--resume: no checkpoint" in err and "starting from scratch" in err and ".tmp-x1y2-last.pth" in err
    assert not (out / ".tmp-x1y2-last.pth").exists()
    trainer.fit()
    assert [r["epoch"] for r in _records(out)] == [0]                     # epoch 0 once, not twice
    assert _records(out)[0]["loss"] == _records(straight)[0]["loss"]


def test_metrics_never_repeat_an_epoch_logged_after_the_checkpoint(tmp_path):
    from tests.tracker.train_helpers import tiny_config

    cfg = tiny_config(epochs=2, checkpoint_every=1)
    out = tmp_path / "run"
    _trainer(cfg, out).fit()
    original = _records(out)
    # killed after epoch 1 was logged but before its checkpoint: the latest checkpoint is epoch 0's
    os.replace(out / "checkpoint_e0001.pth", out / "last.pth")
    os.remove(out / "checkpoint_e0002.pth")
    _trainer(cfg, out, resume=True).fit()
    assert [r["epoch"] for r in _records(out)] == [0, 1]
    assert [r["loss"] for r in _records(out)] == [r["loss"] for r in original]


def test_a_mid_epoch_resume_logs_the_whole_epoch(tmp_path):
    from mimtrack.errors import Stopped
    from tests.tracker.train_helpers import tiny_config

    cfg = tiny_config(epochs=1, checkpoint_every=5)   # 4 steps
    _trainer(cfg, tmp_path / "straight").fit()

    def sigterm_after_3_steps(trainer):
        if trainer.global_step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(Stopped):
        _trainer(cfg, tmp_path / "stopped", on_step=sigterm_after_3_steps).fit()
    _trainer(cfg, tmp_path / "stopped", resume=True).fit()
    resumed, straight = _records(tmp_path / "stopped"), _records(tmp_path / "straight")
    assert len(resumed) == 1
    for key in ("loss", "focal", "giou", "l1", "iou", "nan_steps", "skipped"):
        assert resumed[0][key] == straight[0][key], key


def test_a_mid_epoch_pretrain_resume_logs_the_whole_epoch(tmp_path):
    from mimtrack.pretrain.engine import train
    from tests.pretrain.test_engine import make_images, small_config

    data = make_images(tmp_path / "data", count=16)
    cfg = small_config(extra=["train.epochs=1", "train.warmup_epochs=0"])   # 4 steps
    straight = train(cfg, data, tmp_path / "straight", log=lambda *a: None)
    train(cfg, data, tmp_path / "stopped", max_steps=3, log=lambda *a: None)
    (tmp_path / "stopped" / ".tmp-abc-last.pth").write_bytes(b"")
    messages = []
    resumed = train(cfg, data, tmp_path / "stopped", resume=True, log=messages.append)
    assert any(".tmp-abc-last.pth" in m for m in messages)
    assert not (tmp_path / "stopped" / ".tmp-abc-last.pth").exists()
    assert len(resumed) == 1
    assert {k: v for k, v in resumed[0].items() if k != "seconds"} == \
        {k: v for k, v in straight[0].items() if k != "seconds"}


def test_a_full_disk_during_a_checkpoint_write(small_disk, capsys):
    from tests.tracker.train_helpers import tiny_config

    disk = small_disk("1m")
    fill_disk(disk, leave=64 << 10)
    trainer = _trainer(tiny_config(epochs=1), disk / "run")
    os.makedirs(disk / "run", exist_ok=True)
    from mimtrack.errors import UserError

    with pytest.raises(UserError, match="disk full"):
        trainer.save()
    assert not [p for p in os.listdir(disk / "run") if p.startswith(".tmp-")]
    assert not (disk / "run" / "last.pth").exists()


def test_demo_with_a_box_far_larger_than_the_frame(tmp_path, capsys):
    frames = numbered_frames(tmp_path / "frames", 3)
    assert cli.main(["demo", str(frames), "--init", "0,0,100000,100000", "--boxes", str(tmp_path / "b.txt")]) == 0
    boxes = np.loadtxt(tmp_path / "b.txt", delimiter=",")
    assert boxes.shape == (3, 4) and np.isfinite(boxes).all()


def test_the_giant_crop_path_samples_where_the_padded_crop_does(monkeypatch):
    from mimtrack.tracker import geometry

    rng = np.random.default_rng(1)
    image = cv2.GaussianBlur(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), (0, 0), 3)
    for box in ([40, 30, 50, 40], [-30, -20, 120, 90], [100, 70, 90, 80]):
        padded, f1 = geometry.crop_resize(image, box, 4.0, 64)
        monkeypatch.setattr(geometry, "MAX_PADDED_CROP_BYTES", 0)
        warped, f2 = geometry.crop_resize(image, box, 4.0, 64)
        monkeypatch.undo()
        assert f1 == f2 and warped.shape == padded.shape
        diff = np.abs(padded.astype(int) - warped.astype(int))
        assert np.median(diff) <= 1 and np.mean(diff) < 2.0, box   # the same pixels, up to rounding


def test_a_corrupt_cached_onnx_graph_is_exported_again(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from mimtrack.tracker.inference import load_tracker

    cache = tmp_path / "cache"
    load_tracker(backend="onnxruntime", cache_dir=cache)
    (graph,) = list(cache.glob("*.onnx"))
    graph.write_bytes(b"\0garbage" * 100)
    capsys.readouterr()
    tracker = load_tracker(backend="onnxruntime", cache_dir=cache)
    assert "does not load" in capsys.readouterr().err and graph.stat().st_size > 10_000
    tracker.initialize(np.zeros((96, 128, 3), np.uint8), [30, 30, 40, 30])
    assert np.isfinite(tracker.track(np.zeros((96, 128, 3), np.uint8))["box"]).all()


# ------------------------------------------------------------------ 12. non-finite weights
def test_a_checkpoint_with_nan_weights_is_refused(tmp_path, capsys):
    import torch

    from mimtrack.tracker.checkpoints import DEMO_RECIPE, DEMO_WEIGHTS

    state = torch.load(DEMO_WEIGHTS, weights_only=True)
    state["net"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                    for k, v in state["net"].items()}
    torch.save(state, tmp_path / "nan.pth")
    frames = numbered_frames(tmp_path / "frames", 3)
    assert cli.main(["demo", str(frames), "--init", "10,10,30,30", "--config", DEMO_RECIPE, "--checkpoint",
                     str(tmp_path / "nan.pth")]) == 2
    assert "non-finite weights" in one_line_error(capsys.readouterr().err, "demo")


# ------------------------------------------------------------------ 14. make-synthetic into an existing dataset
def test_make_synthetic_refuses_a_non_empty_target_unless_overwrite(tmp_path, capsys):
    args = ["make-synthetic", "--format", "otb", "--out", str(tmp_path / "otb"), "--sequences", "2", "--frames", "6",
            "--size", "48x32"]
    assert cli.main(args) == 0
    assert cli.main(args[:-4] + ["--frames", "3", "--size", "48x32"]) == 2
    assert "not empty" in one_line_error(capsys.readouterr().err, "make-synthetic")
    assert len(os.listdir(tmp_path / "otb" / "Synthetic001" / "img")) == 6      # nothing was mixed in
    assert cli.main(args[:-4] + ["--frames", "3", "--size", "48x32", "--sequences", "1", "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path / "otb")) == ["Synthetic001"]
    assert len(os.listdir(tmp_path / "otb" / "Synthetic001" / "img")) == 3
    # GOT-10k's target is the split's folder: train and val share a root
    root = str(tmp_path / "got10k")
    for split in ("train", "val"):
        assert cli.main(["make-synthetic", "--format", "got10k", "--split", split, "--out", root, "--sequences", "1",
                         "--frames", "3", "--size", "48x32"]) == 0


# ------------------------------------------------------------------ 15. an unused --teacher, NaN rows in pack
def test_pretrain_teacher_missing_or_unused(tmp_path, capsys):
    from tests.pretrain.test_engine import SMALL, make_images

    data = make_images(tmp_path / "data")
    base = ["pretrain", "mae_tiny", "--data", str(data), *[a for item in SMALL for a in ("--set", item)]]
    assert cli.main(base + ["--output", str(tmp_path / "a"), "--teacher", str(tmp_path / "nonexistent.pth")]) == 2
    assert "--teacher" in one_line_error(capsys.readouterr().err, "pretrain")
    teacher = tmp_path / "teacher.pth"
    teacher.write_bytes(b"unused")
    assert cli.main(base + ["--output", str(tmp_path / "b"), "--teacher", str(teacher)]) == 0
    assert f"--teacher {teacher} is unused" in capsys.readouterr().err


def test_pack_rejects_a_nan_row(tmp_path, capsys):
    from tests.fabricate import make_got10k

    root = tmp_path / "got10k"
    make_got10k(root, "test", {"GOT-10k_Test_000001": [[1, 2, 3, 4]] * 3}, frames=True)
    results = tmp_path / "res" / "GOT-10k_Test_000001"
    results.mkdir(parents=True)
    (results / "GOT-10k_Test_000001_001.txt").write_text("1,2,3,4\n5,6,7,8\nnan,nan,nan,nan\n")
    (results / "GOT-10k_Test_000001_time.txt").write_text("0.1\n0.1\n0.1\n")
    assert cli.main(["pack", "--dataset", "got10k", "--root", str(root), "--results", str(tmp_path / "res"),
                     "--out", str(tmp_path / "sub.zip")]) == 2
    assert "line 3 is not finite" in one_line_error(capsys.readouterr().err, "pack")
    assert not (tmp_path / "sub.zip").exists()

