"""Pre-training throughput (images/s) and peak memory (RSS) of MAE-lite ViT-Tiny and Hiera-Tiny, without and
with a teacher.

    python benchmarks/pretrain_speed.py                     # CPU, batch 16, 224 px, all four variants
    python benchmarks/pretrain_speed.py --variants hiera_mae hiera_distill --device cuda --batch 256 --steps 20

Variants: ``mae`` (ViT-Tiny, mask 0.75), ``distill`` (+ MAE ViT-Base teacher), ``hiera_mae`` (Hiera-Tiny, mask
units at 0.4), ``hiera_distill`` (+ MAE Hiera-Base teacher). Each runs in its own subprocess so that its peak
resident memory (VmHWM; torch allocates outside Python's heap, so tracemalloc would miss it) is its own. Timed:
forward + backward + AdamW step on random normalised images, after warm-up steps. Teachers are randomly
initialised, which costs the same as real ones.
"""

VARIANTS = ("mae", "distill", "hiera_mae", "hiera_distill")

import argparse
import json
import resource
import subprocess
import sys
import time


def peak_rss_mib():
    """Peak resident set size of this process in MiB (/proc VmHWM on Linux, getrusage elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(variant, batch, steps, warmup, img_size, device, threads=None):
    import torch

    if threads:
        torch.set_num_threads(threads)
    from mimtrack.pretrain.distill import MAEPretraining
    from mimtrack.pretrain.mae import mae_vit_base_patch16, mae_vit_tiny_patch16
    from mimtrack.pretrain.mae_hiera import mae_hiera

    torch.manual_seed(0)
    if variant.startswith("hiera"):
        teacher = mae_hiera("hiera_base", img_size=img_size, decoder_depth=0) if variant == "hiera_distill" else None
        method = MAEPretraining(mae_hiera("hiera_tiny", img_size=img_size), 0.4, teacher).to(device)
    else:
        teacher = mae_vit_base_patch16(img_size=img_size, decoder_depth=0) if variant == "distill" else None
        method = MAEPretraining(mae_vit_tiny_patch16(img_size=img_size), 0.75, teacher).to(device)
    optimizer = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=1e-4, betas=(0.9, 0.95))
    images = torch.randn(batch, 3, img_size, img_size, device=device)
    amp = device == "cuda"

    def step():
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss, _ = method(images)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    result = {"variant": variant, "device": device, "batch": batch, "img_size": img_size, "steps": steps,
              "images_per_s": round(batch * steps / seconds, 2), "peak_rss_mib": round(peak_rss_mib(), 1),
              "threads": torch.get_num_threads()}
    if device == "cuda":
        result["peak_cuda_mib"] = round(torch.cuda.max_memory_allocated() / 2 ** 20, 1)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one variant in this process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.batch, args.steps, args.warmup, args.img_size, args.device,
                                 args.threads)))
        return 0
    results = []
    for variant in args.variants:
        cmd = [sys.executable, __file__, "--one", variant, "--batch", str(args.batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup), "--img-size", str(args.img_size), "--device", args.device]
        cmd += ["--threads", str(args.threads)] if args.threads else []
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'variant':<13} {'device':<6} {'batch':>5} {'img/s':>9} {'peak RSS MiB':>13}  (threads "
          f"{results[0]['threads']})")
    for r in results:
        print(f"{r['variant']:<13} {r['device']:<6} {r['batch']:>5} {r['images_per_s']:>9.2f} "
              f"{r['peak_rss_mib']:>13.1f}"
              + (f"  (CUDA peak {r['peak_cuda_mib']} MiB)" if "peak_cuda_mib" in r else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
