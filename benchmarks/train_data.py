"""Training data pipeline speed: samples/s of ``build_train_loader`` with 0, 1 and 2 workers (a script, not a test).

Writes a synthetic GOT-10k-layout dataset (and optionally its LMDB) to a temporary folder, then times full
epochs of the vit_tiny_256_ce data settings (128 / 256 crops, OSTrack augmentation) after one warm-up batch.

    .venv/bin/python benchmarks/train_data.py [--workers 0 1 2] [--samples 256] [--batch 32] [--lmdb]
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=256, help="samples timed per worker count")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--sequences", type=int, default=20)
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", default="640x360", help="frame size of the synthetic dataset")
    parser.add_argument("--lmdb", action="store_true", help="also time the same data read from an LMDB")
    args = parser.parse_args()

    from mimtrack.tracker.config import TrainDataset, load_tracker_config
    from mimtrack.tracker.data import build_train_loader
    from mimtrack.tracker.data.lmdb_pack import pack_lmdb
    from mimtrack.tracker.data.registry import build_source
    from mimtrack.tracker.data.synthetic import _size, make_synthetic

    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "got10k")
        start = time.perf_counter()
        make_synthetic("got10k", root, args.sequences, args.frames, _size(args.size), seed=0)
        print(f"synthetic GOT-10k: {args.sequences} x {args.frames} frames of {args.size} "
              f"in {time.perf_counter() - start:.1f} s")
        variants = [("folder", "got10k", root)]
        if args.lmdb:
            path = os.path.join(tmp, "got10k.lmdb")
            pack_lmdb(build_source("got10k", root, "train_full"), path, root, "train_full")
            variants.append(("lmdb", "got10k-lmdb", path))

        print(f"\n{'source':<8} {'workers':>7} {'samples/s':>10} {'ms/sample':>10}")
        for label, name, location in variants:
            for workers in args.workers:
                cfg = load_tracker_config("vit_tiny_256_ce")
                cfg.data.train = [TrainDataset(name, "train_full", 1.0)]
                cfg.data.samples_per_epoch = args.samples + args.batch
                cfg.data.num_workers, cfg.data.min_visible_frames = workers, 10
                cfg.train.batch_size = args.batch
                batches = iter(build_train_loader(cfg, {name: location}))
                next(batches)    # warm-up: worker start, first reads
                start = time.perf_counter()
                count = sum(len(batch["search"]) for batch in batches)
                rate = count / (time.perf_counter() - start)
                print(f"{label:<8} {workers:>7} {rate:>10.1f} {1000 / rate:>10.2f}")


if __name__ == "__main__":
    main()
