"""``mimtrack bench``: how fast the tracker runs here, and what exactly was timed.

Two numbers, each the median and 90th percentile of per-frame times after ``--warmup`` untimed frames:
- network: one network call on a preprocessed search image (the template is set once): the forward, the Hann
  window, the peak and the box at it in crop coordinates (the backends' tracking step, ``OSTrack.locate``);
- end to end: ``Tracker.track`` on an RGB frame already in memory (crop + resize, normalise, the network call,
  map back, clip) -- image decoding from disk is excluded.
Frames are the generated demo clip (looped), or the images of ``--images`` decoded into memory first.
Speed does not depend on the weights, so without ``--checkpoint`` the recipe's untrained weights are used.
"""

import json
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
    from mimtrack.tracker.backends import BACKENDS

    parser.add_argument("--config", default=None, help=f"tracker recipe (default {DEFAULT_CONFIG})")
    parser.add_argument("--checkpoint", help="tracker checkpoint (default: untrained weights; speed is the same)")
    parser.add_argument("--bundled", action="store_true",
                        help="time the bundled tracker (its recipe and weights) instead of --config/--checkpoint")
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="network runtime (default torch)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "bf16"),
                        help="torch backend: autocast precision (fp16/bf16 are meant for GPUs)")
    parser.add_argument("--compile", action="store_true", help="torch backend: torch.compile the network")
    parser.add_argument("--frames", type=int, default=200, help="timed frames (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed frames first (default 20)")
    parser.add_argument("--threads", type=int, help="intra-op threads (default: the physical cores)")
    parser.add_argument("--images", metavar="FOLDER", help="time on these images (sorted; read into memory first; "
                        "the box is the first row of FOLDER/../groundtruth_rect.txt or FOLDER/groundtruth.txt if "
                        "present, else a centred box)")
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
    try:
        import onnxruntime
        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
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
    """Up to ``count`` RGB frames of ``folder`` in memory, and an initial box."""
    from mimtrack.evaluation.textfiles import read_boxes
    from mimtrack.images import read_image_rgb

    if not os.path.isdir(folder):
        raise UserError(f"--images {folder}: folder not found")
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png", ".bmp")))
    if not names:
        raise UserError(f"--images {folder}: no .jpg/.png/.bmp images")
    frames = [read_image_rgb(os.path.join(folder, n)) for n in names[:count]]
    for gt in (os.path.join(folder, "..", "groundtruth_rect.txt"), os.path.join(folder, "groundtruth.txt")):
        if os.path.isfile(gt):
            return frames, [float(v) for v in read_boxes(gt)[0]]
    h, w = frames[0].shape[:2]
    return frames, [w * 3 / 8, h * 3 / 8, w / 4, h / 4]


def benchmark(tracker, frames, init_box, count, warmup):
    """-> (network seconds per call, end-to-end seconds per frame), ``count`` timed of each after ``warmup``."""
    import torch

    def sync():
        if tracker.device.type == "cuda":
            torch.cuda.synchronize(tracker.device)

    tracker.initialize(frames[0], init_box)
    search, window = tracker.search_input.clone(), tracker.window
    tracker.network(search, window)   # first call: lazy initialisation (compile, kernels) is not a frame
    network = []
    with torch.inference_mode():
        for i in range(warmup + count):
            sync()
            start = time.perf_counter()
            tracker.network(search, window)
            sync()
            if i >= warmup:
                network.append(time.perf_counter() - start)

    end_to_end = []
    tracker.initialize(frames[0], init_box)
    for i in range(warmup + count):
        frame = frames[1 + i % (len(frames) - 1)] if len(frames) > 1 else frames[0]
        if i and i % (len(frames) - 1 or 1) == 0:
            tracker.initialize(frames[0], init_box)   # loop the clip from its first frame
        sync()
        start = time.perf_counter()
        tracker.track(frame)
        sync()
        if i >= warmup:
            end_to_end.append(time.perf_counter() - start)
    return network, end_to_end


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
        from mimtrack.tracker.inference import DEMO_RECIPE, DEMO_WEIGHTS

        if args.config or args.checkpoint:
            raise UserError("--bundled: times the bundled tracker; leave out --config and --checkpoint")
        config, checkpoint = DEMO_RECIPE, str(DEMO_WEIGHTS)
    if args.images:
        frames, init_box = load_images(args.images, args.frames + 1)
    else:
        from mimtrack.tracker.clip import render_clip
        rendered, gt = render_clip()
        frames, init_box = rendered, list(gt[0])
    tracker = load_tracker(config, checkpoint, device=args.device, overrides=args.overrides,
                           backend=args.backend, threads=threads, precision=args.precision, compile=args.compile)
    network, end_to_end = benchmark(tracker, frames, init_box, args.frames, args.warmup)

    result = {
        "config": tracker.cfg.name or config,
        "weights": ("bundled " if args.bundled else "") + (checkpoint or "untrained (speed does not depend on the "
                                                                         "weights)"),
        "backend": args.backend, "device": str(tracker.device), "threads": threads,
        "torch_threads": torch.get_num_threads(), "precision": args.precision, "compile": args.compile,
        "frames": args.frames, "warmup": args.warmup,
        "frame_size": list(frames[0].shape[1::-1]), "source": args.images or "generated demo clip",
        "network": summarise(network), "end_to_end": summarise(end_to_end), "machine": machine_info(),
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
          f"torch {m['torch']}, onnxruntime {m['onnxruntime']}, load average {m.get('load_average')}")
    print(f"frames: {r['source']} ({r['frame_size'][0]}x{r['frame_size'][1]}), {r['frames']} timed after "
          f"{r['warmup']} warm-up")
    for key, what in (("network", "network only (tracking step on a preprocessed search image)"),
                      ("end_to_end", "end to end (RGB frame in memory -> box: crop, normalise, network, decode, "
                                     "map back)")):
        s = r[key]
        print(f"{what}: {s['fps']:.1f} FPS (median {s['median_ms']:.2f} ms, p90 {s['p90_ms']:.2f} ms)")
    sys.stdout.flush()
