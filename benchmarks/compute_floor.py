"""How fast can one tracking step be on this CPU? Its arithmetic divided by the machine's matrix-product peak.

    .venv/bin/python benchmarks/compute_floor.py [--config vit_tiny_256_ce] [--threads N]

Counts the FLOPs of one tracking step as the backends run it (template tokens cached,
:meth:`mimtrack.tracker.model.OSTrack.locate`: backbone with candidate elimination, score head, size/offset at the peak) from
the layer shapes (:func:`mimtrack.tracker.bench.step_flops`; ``torch.utils.flop_counter`` misses the CPU
scaled-dot-product-attention kernel), then times a large matrix product (2048^3, the best case for any BLAS) in
float32, bf16 and int8 on the same threads with each library that has a kernel for it (torch, numpy's BLAS,
OpenVINO; :func:`mimtrack.tracker.bench.gemm_rates`: none is fastest everywhere). Network time can not go below
flops / peak of the arithmetic it runs in. The reference end-to-end time is 42 ms per frame.
"""

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE_MS = 42.0


def main(argv=None):
    from mimtrack.tracker.backends import physical_cores
    from mimtrack.tracker.bench import gemm_rates, step_flops
    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.model import build_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="vit_tiny_256_ce")
    parser.add_argument("--threads", type=int, default=None, help="default: the physical cores")
    args = parser.parse_args(argv)
    threads = args.threads or physical_cores()
    flops = step_flops(build_model(load_tracker_config(args.config)).eval())
    print(f"{args.config} tracking step (locate, counted from shapes): {flops / 1e9:.3f} GFLOP")
    for arithmetic in ("fp32", "bf16", "int8"):
        rates = gemm_rates(arithmetic, threads)
        if not rates:
            print(f"{arithmetic}: no CPU matrix-product kernel here")
            continue
        kernel = max(rates, key=rates.get)
        each = ", ".join(f"{name} {rate / 1e9:.0f}" for name, rate in rates.items())
        print(f"{arithmetic} GEMM peak (2048^3, {threads} threads): {rates[kernel] / 1e9:.0f} GFLOP/s ({kernel}; "
              f"{each}) -> at least {1000 * flops / rates[kernel]:.1f} ms of network per frame")
    print(f"2x / 3x the {REFERENCE_MS:.0f} ms reference needs <= {REFERENCE_MS / 2:.1f} / {REFERENCE_MS / 3:.1f} ms "
          f"end to end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
