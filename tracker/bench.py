"""``mimtrack bench``: how fast the tracker runs here, what exactly was timed, and how close that is to the limit.

Two numbers, each the median and 90th percentile of per-frame times after ``--warmup`` untimed frames:
- network: one network call on a real preprocessed search crop (frame 1's, the template set once): the forward,
  the Hann window, the peak and the box at it in crop coordinates (the backends' tracking step, ``OSTrack.locate``);
- end to end: ``Tracker.track`` on an RGB frame already in memory (crop + resize, normalise, the network call,
  map back, clip) -- image decoding from disk is excluded. Each frame's search region is cropped around the
  previous frame's ground-truth box (teacher forcing; without ground truth, around the first box): the crop a
  tracker that follows the object makes, whatever the weights do (untrained ones let the box grow to the whole
  frame within frames, and a padded whole-frame crop is slower).
Frames are the generated demo clip (looped), or the images of ``--images`` decoded into memory first.
Speed does not depend on the weights, so without ``--checkpoint`` the recipe's untrained weights are used.

The floor: the step's multiply-add FLOPs counted from the layer shapes (:func:`step_flops`) over the best rate of
a large matrix product in the arithmetic the backend runs (float32, bf16, or int8 for the int8 backends; the
fastest of torch's, numpy's and OpenVINO's kernels on the same threads, :func:`gemm_rate`): no network call can
be faster; the fraction printed is floor / measured network median.
"""

import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

from mimtrack.errors import UserError
from mimtrack.fileio import write_text_atomic

DEFAULT_CONFIG = "vit_tiny_256_ce"


def add_arguments(parser):
    from mimtrack.tracker.backends import add_arguments as add_backend_arguments

    parser.add_argument("--config", default=None, help=f"tracker recipe (default {DEFAULT_CONFIG})")
    parser.add_argument("--checkpoint", help="tracker checkpoint (default: untrained weights; speed is the same)")
    parser.add_argument("--bundled", action="store_true",
                        help="time the bundled tracker (its recipe and weights) instead of --config/--checkpoint")
    add_backend_arguments(parser)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--compile", action="store_true", help="torch backend: torch.compile the network")
    parser.add_argument("--frames", type=int, default=200, help="timed frames (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed frames first (default 20)")
    parser.add_argument("--settle", type=float, default=0.0, metavar="SECONDS",
                        help="sleep this long before each timed loop, so worker threads still spinning from what "
                        "ran before (another runtime, the model loading) have gone idle (default 0)")
    parser.add_argument("--images", metavar="FOLDER", help="time on these images (sorted; read into memory first; "
                        "the boxes are FOLDER/../groundtruth_rect.txt or FOLDER/groundtruth.txt if present, else a "
                        "centred box)")
    parser.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe value (repeatable)")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info():
    import torch

    from mimtrack.tracker.backends import physical_cores

    info = {"cpu": cpu_model(), "physical_cores": physical_cores(), "logical_cpus": os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version()}
    for module in ("onnxruntime", "openvino"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return info


def summarise(seconds):
    """Per-frame seconds -> {median_ms, p90_ms, fps (from the median)}."""
    ms = sorted(1000.0 * s for s in seconds)
    median = statistics.median(ms)
    p90 = ms[min(len(ms) - 1, int(np.ceil(0.9 * len(ms))) - 1)]
    return {"median_ms": round(median, 3), "p90_ms": round(p90, 3), "fps": round(1000.0 / median, 1)}


def load_images(folder, count):
    """Up to ``count`` RGB frames of ``folder`` in memory, and a box per frame (:func:`frame_boxes`)."""
    from mimtrack.evaluation.textfiles import read_boxes
    from mimtrack.images import read_image_rgb
    from mimtrack.images import IMAGE_EXTENSIONS
    from mimtrack.tracker.export import find_groundtruth

    if not os.path.isdir(folder):
        raise UserError(f"--images {folder}: folder not found")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS))
    if not names:
        raise UserError(f"--images {folder}: no .jpg/.png/.bmp images")
    frames = [read_image_rgb(os.path.join(folder, n)) for n in names[:count]]
    gt = find_groundtruth(folder)
    h, w = frames[0].shape[:2]
    return frames, frame_boxes(read_boxes(gt) if gt else [[w * 3 / 8, h * 3 / 8, w / 4, h / 4]], len(frames))


def frame_boxes(gt, count):
    """``count`` boxes: the ground truth's rows, a row without a box (absent target, missing row) replaced by the
    last known one."""
    boxes = [[float(v) for v in gt[0]]]
    for k in range(1, count):
        row = gt[k] if k < len(gt) else None
        known = row is not None and all(math.isfinite(v) for v in row) and min(row[2], row[3]) > 0
        boxes.append([float(v) for v in row] if known else boxes[-1])
    return boxes


def benchmark(tracker, frames, boxes, count, warmup, settle=0.0):
    """-> (network seconds per call, end-to-end seconds per frame), ``count`` timed of each after ``warmup``.

    ``boxes``: one per frame; frame i's search region is cropped around box i-1 (the clip loops from frame 1, the
    template stays frame 0's). ``settle``: seconds slept before each timed loop.
    """
    import torch

    def sync():
        if tracker.device.type == "cuda":
            torch.cuda.synchronize(tracker.device)

    tracker.initialize(frames[0], boxes[0])
    tracker.track(frames[1 % len(frames)])   # a real search crop; also the first call's lazy initialisation
    search, window = tracker.search_input.clone(), tracker.window
    network = []
    time.sleep(settle)
    with torch.inference_mode():
        for i in range(warmup + count):
            sync()
            start = time.perf_counter()
            tracker.network(search, window)
            sync()
            if i >= warmup:
                network.append(time.perf_counter() - start)

    end_to_end = []
    tracker.initialize(frames[0], boxes[0])
    time.sleep(settle)
    for i in range(warmup + count):
        k = 1 + i % (len(frames) - 1) if len(frames) > 1 else 0
        tracker.state = list(boxes[k - 1 if k else 0])
        sync()
        start = time.perf_counter()
        tracker.track(frames[k])
        sync()
        if i >= warmup:
            end_to_end.append(time.perf_counter() - start)
    return network, end_to_end


def step_flops(model):
    """FLOPs (2 per multiply-add) of one tracking step as the backends run it (:meth:`OSTrack.locate`, template
    tokens cached), counted from the layer shapes and token counts: the search patch embedding; per block the QKV
    projection, the attention products QK^T and AV over all tokens, the output projection and the MLP, with the
    search tokens candidate elimination keeps (it drops them after the attention, before the MLP, as OSTrack's
    CEBlock); the score branch over the map and the size/offset branches on the peak's 9x9 window (9 -> 7 -> 5
    -> 3 -> 1). Normalisation, softmax and activations are left out (a few per cent)."""
    import torch

    backbone, head = model.backbone, model.box_head
    len_z, len_x = backbone.grid_z ** 2, backbone.grid_x ** 2
    linear = lambda layer, tokens: 2 * tokens * layer.in_features * layer.out_features
    flops = 2 * len_x * backbone.patch_embed.proj.weight.numel()
    for i, block in enumerate(backbone.blocks):
        tokens, inner = len_z + len_x, block.attn.qkv.out_features // 3
        flops += linear(block.attn.qkv, tokens) + 2 * 2 * tokens * tokens * inner + linear(block.attn.proj, tokens)
        keep = math.ceil(backbone.ce_keep_ratios.get(i, 1.0) * len_x)
        len_x = min(keep, len_x)
        flops += linear(block.mlp.fc1, len_z + len_x) + linear(block.mlp.fc2, len_z + len_x)
    weights = lambda name: (lambda layer: (layer[0] if isinstance(layer, torch.nn.Sequential) else layer)
                            .weight.numel())(getattr(head, name))
    for i in range(1, 6):   # 3x3 conv + BN + ReLU x 4, then a 1x1 conv
        flops += 2 * backbone.grid_x ** 2 * weights(f"conv{i}_ctr")
        flops += 2 * (9 - 2 * i if i < 5 else 1) ** 2 * (weights(f"conv{i}_size") + weights(f"conv{i}_offset"))
    return flops


def _torch_product(precision, size):
    import torch

    if precision == "int8":
        a = torch.randint(-128, 128, (size, size), dtype=torch.int8)
        return lambda: torch._int_mm(a, a)
    a = torch.randn(size, size).to({"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision])
    return lambda: a @ a


def _numpy_product(precision, size):
    if precision != "fp32":
        return None
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    return lambda: a @ a


def _openvino_product(precision, size, threads):
    if precision not in ("fp32", "bf16"):   # int8 needs a quantised graph; torch's kernel stands in for it
        return None
    try:
        import openvino as ov
        from openvino import opset13 as ops
    except ImportError:
        return None
    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    x = ops.parameter([size, size], ov.Type.f32)
    model = ov.Model([ops.matmul(x, ops.constant(a), False, False)], [x])
    compiled = ov.Core().compile_model(model, "CPU", {
        "INFERENCE_PRECISION_HINT": {"fp32": "f32", "bf16": "bf16"}[precision],
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()
    return lambda: request.infer({0: a})


def gemm_kernels(precision, threads, size):
    """{name: zero-argument size^3 matrix product} for each library here with a CPU kernel in ``precision``.
    Several, because none is the fastest everywhere: torch's float32 BLAS (MKL) takes a slow path on AMD CPUs,
    where numpy's OpenBLAS or OpenVINO's oneDNN run the same product up to 2x faster."""
    kernels = {"torch": lambda: _torch_product(precision, size),
               "numpy": lambda: _numpy_product(precision, size),
               "openvino": lambda: _openvino_product(precision, size, threads)}
    built = {}
    for name, make in kernels.items():
        try:
            product = make()
        except (RuntimeError, AttributeError, NotImplementedError, KeyError):
            product = None
        if product is not None:
            built[name] = product
    return built


def _best_seconds(product, repeats):
    product()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return best


def gemm_rates(precision="fp32", threads=None, size=2048, repeats=10):
    """{kernel: FLOP/s (int8: OP/s)} of the best of ``repeats`` size^3 matrix products in ``precision`` (fp32,
    bf16, fp16 or int8) on ``threads`` threads, for each kernel of :func:`gemm_kernels` (numpy's only when its BLAS
    threads can be set, through threadpoolctl, or already match)."""
    import torch

    previous = torch.get_num_threads()
    threads = threads or previous
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        blas_threads = threadpool_limits(limits=threads, user_api="blas")   # restored on leaving the with block
    except ImportError:
        blas_threads = None
    # Without threadpoolctl numpy's BLAS keeps its own thread count: time it only when that is already ``threads``.
    skip = set() if blas_threads is not None or threads == (os.cpu_count() or 1) else {"numpy"}
    rates = {}
    try:
        with blas_threads or contextlib.nullcontext():
            for name, product in gemm_kernels(precision, threads, size).items():
                if name in skip:
                    continue
                try:
                    rates[name] = 2 * size ** 3 / _best_seconds(product, repeats)
                except (RuntimeError, AttributeError, NotImplementedError):
                    pass
    finally:   # after the BLAS limits are restored: restoring them can reset torch's thread count too
        torch.set_num_threads(previous)
    return rates


def gemm_rate(precision="fp32", threads=None, size=2048, repeats=10):
    """(rate, kernel): the fastest of :func:`gemm_rates`, the best case for any runtime's matrix products in that
    arithmetic; (None, None) if no library here has a CPU kernel for it."""
    rates = gemm_rates(precision, threads, size, repeats)
    if not rates:
        return None, None
    kernel = max(rates, key=rates.get)
    return rates[kernel], kernel


def arithmetic(backend, precision):
    """The arithmetic of the matrix products ``backend`` runs at ``precision``: int8 for the int8 backends."""
    return "int8" if backend.endswith("int8") else precision


def floor(model, backend, precision, threads, network_ms):
    """{flops, arithmetic, gemm_gflops, gemm_kernel, floor_ms, fraction}: the network's lower bound and the
    fraction of it the measured median reaches (floor_ms / network_ms)."""
    kind = arithmetic(backend, precision)
    flops, (rate, kernel) = step_flops(model), gemm_rate(kind, threads)
    result = {"flops": flops, "arithmetic": kind, "gemm_gflops": None, "gemm_kernel": kernel, "floor_ms": None,
              "fraction": None}
    if rate:
        floor_ms = 1000.0 * flops / rate
        result.update(gemm_gflops=round(rate / 1e9, 1), floor_ms=round(floor_ms, 3),
                      fraction=round(floor_ms / network_ms, 3))
    return result


def run(args):
    import torch

    from mimtrack.tracker.backends import physical_cores
    from mimtrack.tracker.inference import load_tracker

    if args.frames < 1 or args.warmup < 0:
        raise UserError(f"--frames {args.frames} / --warmup {args.warmup}: need frames >= 1 and warmup >= 0")
    if args.checkpoint and not args.config:
        raise UserError(f"--checkpoint {args.checkpoint}: also pass --config, the recipe it was trained with")
    threads = args.threads if args.threads is not None else physical_cores()
    config, checkpoint = args.config or DEFAULT_CONFIG, args.checkpoint
    if args.bundled:
        from mimtrack.tracker.checkpoints import DEMO_RECIPE, DEMO_WEIGHTS

        if args.config or args.checkpoint:
            raise UserError("--bundled: times the bundled tracker; leave out --config and --checkpoint")
        config, checkpoint = DEMO_RECIPE, str(DEMO_WEIGHTS)
    if args.settle < 0:
        raise UserError(f"--settle {args.settle}: must be >= 0")
    if args.images:
        frames, boxes = load_images(args.images, args.frames + 1)
    else:
        from mimtrack.tracker.clip import render_clip
        frames, gt = render_clip()
        boxes = frame_boxes(gt, len(frames))
    tracker = load_tracker(config, checkpoint, device=args.device, overrides=args.overrides,
                           backend=args.backend, threads=threads, precision=args.precision, compile=args.compile,
                           calibration=args.calibration)
    network, end_to_end = benchmark(tracker, frames, boxes, args.frames, args.warmup, args.settle)
    network = summarise(network)

    result = {
        "config": tracker.cfg.name or config,
        "weights": ("bundled " if args.bundled else "") + (checkpoint or "untrained (speed does not depend on the "
                                                                         "weights)"),
        "backend": args.backend, "device": str(tracker.device), "threads": threads,
        "torch_threads": torch.get_num_threads(), "precision": args.precision, "compile": args.compile,
        "frames": args.frames, "warmup": args.warmup,
        "frame_size": list(frames[0].shape[1::-1]), "source": args.images or "generated demo clip",
        "network": network, "end_to_end": summarise(end_to_end), "machine": machine_info(),
        "floor": floor(tracker.model, args.backend, args.precision, threads, network["median_ms"])
        if tracker.device.type == "cpu" else None,
    }
    print_result(result)
    if args.json:
        write_text_atomic(args.json, json.dumps(result, indent=2) + "\n")
    return 0


def print_result(r):
    m = r["machine"]
    print(f"mimtrack bench: {r['config']} ({r['weights']}), backend {r['backend']}, device {r['device']}, "
          f"{r['threads']} threads, precision {r['precision']}{', compiled' if r['compile'] else ''}")
    print(f"machine: {m['cpu']}, {m['physical_cores']} physical cores / {m['logical_cpus']} logical, "
          f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, openvino {m.get('openvino')}, load average {m.get('load_average')}")
    print(f"frames: {r['source']} ({r['frame_size'][0]}x{r['frame_size'][1]}), {r['frames']} timed after "
          f"{r['warmup']} warm-up")
    for key, what in (("network", "network only (tracking step on a preprocessed search image)"),
                      ("end_to_end", "end to end (RGB frame in memory -> box: crop, normalise, network, decode, "
                                     "map back)")):
        s = r[key]
        print(f"{what}: {s['fps']:.1f} FPS (median {s['median_ms']:.2f} ms, p90 {s['p90_ms']:.2f} ms)")
    f = r.get("floor")
    if f and f["floor_ms"]:
        print(f"floor: {f['flops'] / 1e9:.3f} GFLOP per step at the {f['arithmetic']} GEMM peak {f['gemm_gflops']:.0f} "
              f"GFLOP/s ({f.get('gemm_kernel')}'s 2048^3 product, the fastest here, {r['threads']} threads) = "
              f"{f['floor_ms']:.2f} ms; the network reaches {100 * f['fraction']:.0f}% of it")
    elif f:
        print(f"floor: {f['flops'] / 1e9:.3f} GFLOP per step; no {f['arithmetic']} GEMM kernel to time here")
    sys.stdout.flush()
