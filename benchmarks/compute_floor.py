"""How fast can one tracking step be on this CPU in float32? Its arithmetic divided by the machine's GEMM peak.

    .venv/bin/python benchmarks/compute_floor.py [--config vit_tiny_256_ce] [--threads N]

Counts the floating-point operations of one tracking step as the backends run it (template tokens cached,
:meth:`mimtrack.tracker.model.OSTrack.locate`: backbone with candidate elimination, score head, size/offset at the peak) and
of the full-map forward, with ``torch.utils.flop_counter``; then times a large float32 matrix product (2048^3, the
best case for any BLAS) on the same threads. Network time can not go below flops / peak: every backend that keeps
float32 arithmetic (and so the same boxes) is bounded by it. The reference end to end time is 42 ms per frame.
"""

import argparse
import pathlib
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE_MS = 42.0


def step_flops(config):
    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.export import example_inputs
    from mimtrack.tracker.model import build_model

    cfg = load_tracker_config(config)
    model = build_model(cfg).eval()
    template, search, window = example_inputs(cfg)
    with torch.no_grad():
        tokens = model.backbone.embed_template(template)
        counts = {}
        for name, step in (("tracking step (locate)", lambda: model.locate(tokens, search, window)),
                           ("full maps forward", lambda: model.forward_cached(tokens, search))):
            with FlopCounterMode(display=False) as counter:
                step()
            counts[name] = counter.get_total_flops()
    return counts


def gemm_peak(size=2048, repeats=10):
    """Best float32 GFLOP/s of a size^3 matrix product."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def main(argv=None):
    from mimtrack.tracker.backends import physical_cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vit_tiny_256_ce")
    parser.add_argument("--threads", type=int, default=None, help="default: the physical cores")
    args = parser.parse_args(argv)
    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    peak = gemm_peak()
    print(f"float32 GEMM peak (2048^3, {threads} threads): {peak:.0f} GFLOP/s")
    for name, flops in step_flops(args.config).items():
        print(f"{args.config} {name}: {flops / 1e9:.2f} GFLOP -> at least {flops / peak / 1e6:.1f} ms per frame")
    print(f"2x the {REFERENCE_MS:.0f} ms reference needs <= {REFERENCE_MS / 2:.1f} ms end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
