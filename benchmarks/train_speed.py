"""Training speed on the CPU: optimisation steps/s and samples/s of the tracker trainer (a script, not a test).

Times ``Trainer.train_step`` (forward, the three losses, backward, clipping, AdamW) on random pre-made batches, so
the data pipeline is excluded; the network and the loss are exactly those of ``mimtrack train``.

    .venv/bin/python benchmarks/train_speed.py [--configs smoke_cpu vit_tiny_256_ce] [--batch 2 8] [--steps 5]

CE runs at the recipe's final keep ratio (the slowest-to-fastest schedule point is 1.0 -> ratio).
"""

import argparse
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout


def random_batch(cfg, batch):
    t, s = cfg.crop.template_size, cfg.crop.search_size
    fs = s // cfg.model.backbone.patch_size
    heatmap = torch.zeros(batch, fs, fs)
    heatmap[:, fs // 2, fs // 2] = 1.0
    return {"template": torch.randn(batch, 3, t, t), "search": torch.randn(batch, 3, s, s),
            "search_box": torch.tensor([[0.4, 0.4, 0.2, 0.2]]).repeat(batch, 1), "search_heatmap": heatmap}


def measure(name, batch, steps, warmup=2):
    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.train.optim import keep_rate_for_epoch
    from mimtrack.tracker.train.trainer import Trainer

    cfg = load_tracker_config(name, [f"train.batch_size={batch}", "train.pretrained=null"])
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, out, loader_factory=None, progress=False)
        trainer.net.train()
        data = random_batch(cfg, batch)
        keep_rate = keep_rate_for_epoch(cfg, cfg.train.epochs)
        for _ in range(warmup):
            trainer.train_step(data, keep_rate)
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step(data, keep_rate)
        seconds = (time.perf_counter() - start) / steps
    return 1.0 / seconds, batch / seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["smoke_cpu", "vit_tiny_256_ce"])
    parser.add_argument("--batch", nargs="+", type=int, default=[2, 8])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"{'config':<20} {'batch':>5} {'steps/s':>9} {'samples/s':>10}")
    for name in args.configs:
        for batch in args.batch:
            steps_s, samples_s = measure(name, batch, args.steps)
            print(f"{name:<20} {batch:>5} {steps_s:>9.2f} {samples_s:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
