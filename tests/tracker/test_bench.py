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
    floor = result["floor"]
    assert floor["arithmetic"] == "fp32" and floor["flops"] > 0
    if floor["gemm_gflops"]:
        assert floor["gemm_kernel"] in {"torch", "numpy", "openvino"} and floor["gemm_kernel"] in printed
        assert floor["floor_ms"] == pytest.approx(floor["flops"] / floor["gemm_gflops"] / 1e6, rel=1e-3)
        assert floor["fraction"] == pytest.approx(floor["floor_ms"] / result["network"]["median_ms"], rel=1e-2)
        assert "floor:" in printed and "GFLOP per step" in printed


def test_bench_times_tracker_calls_on_frames_in_memory():
    calls = []

    class CountingTracker:
        device = torch.device("cpu")
        search_input = torch.zeros(1)
        window = torch.ones(1)
        state = None

        def initialize(self, image, box):
            calls.append(("init", image, box))
            self.search_input = torch.full((1,), -1.0)   # uninitialised until a frame is cropped

        def network(self, search, window):
            calls.append(("net", float(search[0]), None))

        def track(self, image):
            calls.append(("track", image, list(self.state)))
            self.search_input = torch.full((1,), float(image[0, 0, 0]))   # "the crop of this frame"
            self.state = [99, 99, 99, 99]   # the tracker's own box: the bench must not crop around it

    frames = [np.full((4, 4, 3), k, np.uint8) for k in range(4)]
    boxes = [[k, k, 2, 2] for k in range(4)]
    tracker = CountingTracker()
    tracker.state = boxes[0]
    network, end_to_end = bench.benchmark(tracker, frames, boxes, count=5, warmup=2)
    assert len(network) == 5 and len(end_to_end) == 5
    net = [c for c in calls if c[0] == "net"]
    assert len(net) == 7 and {c[1] for c in net} == {1.0}   # warm-up + timed, all on frame 1's real crop
    tracked = [(int(c[1][0, 0, 0]), c[2]) for c in calls if c[0] == "track"][1:]
    assert [k for k, _ in tracked] == [1, 2, 3, 1, 2, 3, 1]   # the clip loops from frame 1
    assert all(box == boxes[k - 1] for k, box in tracked)      # cropped around the previous frame's box
    assert [int(c[1][0, 0, 0]) for c in calls if c[0] == "init"] == [0, 0]


def test_frame_boxes_fill_missing_rows_and_step_flops_match_the_flop_counter():
    nan = float("nan")
    assert bench.frame_boxes([[1, 2, 3, 4], [nan] * 4, [5, 6, 0, 8]], 4) == [[1, 2, 3, 4]] * 4
    assert bench.frame_boxes([[1, 2, 3, 4], [5, 6, 7, 8]], 2) == [[1, 2, 3, 4], [5, 6, 7, 8]]

    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.export import example_inputs
    from mimtrack.tracker.model import build_model

    # The flop counter sees attention when it runs as explicit matrix products (the math kernel): an independent count.
    cfg = load_tracker_config("vit_tiny_256_ce", [s for s in SMALL if s != "--set"])
    model = build_model(cfg).eval()
    template, search, window = example_inputs(cfg)
    with torch.no_grad():
        tokens = model.backbone.embed_template(template)   # cached once per sequence: not in the step
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model.locate(tokens, search, window)
    assert bench.step_flops(model) == counter.get_total_flops()
    assert bench.step_flops(build_model(load_tracker_config("vit_tiny_256_ce"))) == 3_646_601_984   # the 3.647


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
    from mimtrack.tracker.checkpoints import DEMO_RECIPE, DEMO_WEIGHTS

    out = tmp_path / "bench.json"
    assert main(["bench", "--bundled", "--frames", "2", "--warmup", "0", "--threads", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"] == DEMO_RECIPE and result["weights"] == f"bundled {DEMO_WEIGHTS}"
    assert main(["bench", "--bundled", "--config", "vit_tiny_256_ce"]) == 2
    assert "--bundled" in capsys.readouterr().err


def test_gemm_kernels_compute_the_product_and_the_floor_takes_the_fastest(monkeypatch):
    # Each library's kernel multiplies (checked on a small size against numpy in float64); the floor's rate is the
    # fastest kernel's, named, whichever library that is.
    kernels = bench.gemm_kernels("fp32", threads=1, size=64)
    assert {"torch", "numpy"} <= set(kernels)
    for name, product in kernels.items():
        out = np.asarray(product()[0] if name == "openvino" else product(), dtype=np.float64)
        assert out.shape == (64, 64) and np.isfinite(out).all(), name
    a = np.random.default_rng(0).standard_normal((64, 64), dtype=np.float32)
    assert np.allclose(kernels["numpy"](), a.astype(np.float64) @ a, atol=1e-3)
    assert "numpy" not in bench.gemm_kernels("int8", threads=1, size=64)

    seconds = {"slow": 2.0, "fast": 0.5}
    monkeypatch.setattr(bench, "gemm_kernels", lambda precision, threads, size: {k: k for k in seconds})
    monkeypatch.setattr(bench, "_best_seconds", lambda product, repeats: seconds[product])
    assert bench.gemm_rates("fp32", 1, size=10) == {"slow": 1000.0, "fast": 4000.0}
    assert bench.gemm_rate("fp32", 1, size=10) == (4000.0, "fast")
    monkeypatch.setattr(bench, "gemm_kernels", lambda precision, threads, size: {})
    assert bench.gemm_rate("fp32", 1) == (None, None)
