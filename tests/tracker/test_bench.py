"""``mimtrack bench``: what it reports (no timing assertions: only that it times what it says)."""

import json

import cv2
import numpy as np
import pytest
import torch

import mimtrack.tracker.bench as bench
from mimtrack.cli import main

SMALL = ["--set", "model.backbone.depth=2", "--set", "model.ce.locations=[1]", "--set", "model.ce.keep_ratio=[0.7]",
         "--set", "model.head.channels=16"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_summarise_median_p90_and_fps():
    seconds = [0.001 * k for k in range(1, 11)]   # 1..10 ms
    assert bench.summarise(seconds) == {"median_ms": 5.5, "p90_ms": 9.0, "fps": round(1000 / 5.5, 1)}
    assert bench.summarise([0.02]) == {"median_ms": 20.0, "p90_ms": 20.0, "fps": 50.0}


def test_bench_reports_both_numbers_and_the_machine(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--frames", "4", "--warmup", "1", "--threads", "1", "--json", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "untrained" in printed and "network only" in printed and "end to end" in printed
    result = json.loads(out.read_text())
    assert result["backend"] == "torch" and result["threads"] == 1 and result["device"] == "cpu"
    assert result["config"] == "vit_tiny_256_ce" and result["frames"] == 4
    for key in ("network", "end_to_end"):
        assert result[key]["p90_ms"] >= result[key]["median_ms"] > 0
    machine = result["machine"]
    assert machine["cpu"] and machine["physical_cores"] >= 1 and machine["torch"] == torch.__version__


def test_bench_times_tracker_calls_on_frames_in_memory():
    calls = []

    class CountingTracker:
        device = torch.device("cpu")
        search_input = torch.zeros(1)
        window = torch.ones(1)

        def initialize(self, image, box):
            calls.append(("init", image))

        def network(self, search, window):
            calls.append(("net", None))

        def track(self, image):
            calls.append(("track", image))

    frames = [np.full((4, 4, 3), k, np.uint8) for k in range(4)]
    network, end_to_end = bench.benchmark(CountingTracker(), frames, [0, 0, 2, 2], count=5, warmup=2)
    assert len(network) == 5 and len(end_to_end) == 5
    assert sum(c[0] == "net" for c in calls) == 1 + 7   # the first untimed call, then warm-up + timed
    tracked = [int(c[1][0, 0, 0]) for c in calls if c[0] == "track"]
    assert tracked == [1, 2, 3, 1, 2, 3, 1]            # the clip loops, restarting from frame 0's template
    assert [int(c[1][0, 0, 0]) for c in calls if c[0] == "init"] == [0, 0, 0, 0]


def test_bench_on_an_image_folder_and_bad_arguments(tmp_path, capsys):
    folder = tmp_path / "img"
    folder.mkdir()
    for k in range(3):
        cv2.imwrite(str(folder / f"{k:04d}.jpg"), np.full((60, 80, 3), 40 * k, np.uint8))
    (tmp_path / "groundtruth_rect.txt").write_text("10,10,20,20\n")
    assert main(["bench", "--images", str(folder), "--frames", "2", "--warmup", "0", "--threads", "1", *SMALL]) == 0
    assert "(80x60)" in capsys.readouterr().out
    assert main(["bench", "--images", str(tmp_path / "none"), "--frames", "2"]) == 2
    assert main(["bench", "--frames", "0"]) == 2
    assert main(["bench", "--checkpoint", "w.pth"]) == 2
    assert "--checkpoint w.pth" in capsys.readouterr().err


def test_bench_bundled_times_the_bundled_recipe_and_weights(tmp_path, capsys):
    from mimtrack.tracker.inference import DEMO_RECIPE, DEMO_WEIGHTS

    out = tmp_path / "bench.json"
    assert main(["bench", "--bundled", "--frames", "2", "--warmup", "0", "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"] == DEMO_RECIPE and result["weights"] == f"bundled {DEMO_WEIGHTS}"
    assert main(["bench", "--bundled", "--config", "vit_tiny_256_ce"]) == 2
    assert "--bundled" in capsys.readouterr().err
