"""Does the network match its template? Score training-style pairs of held-out data with the right and a wrong template.

    python benchmarks/template_pairs.py [--config photos_cpu --checkpoint W.pth] --data got10k=DIR [--split train] \
        [--samples 512] [--set data.paste_distractors=1.0] [--set data.negative_pairs=0.5]

Pairs are drawn as training draws them (the recipe's sampling, crops and jitter; ``--set`` changes them), from data
the network was not trained on. For each pair the score map's peak is a *hit* when it lands on the target (the
label heatmap >= 0.5 there). The same search crops are scored again with the template of the next pair in the
batch. A network that matches its template hits far more often with its own; a salient-object detector hits as
often with either. With ``data.negative_pairs`` it also prints the mean peak score of pairs whose search crop holds
the target against those whose crop does not: a network that compares the two is less sure on the latter.
``benchmarks/template_swap.py`` asks the same question by tracking whole sequences.
"""

import argparse

import numpy as np
import torch


def hit_rates(net, batches):
    """-> dict: ``own`` / ``swapped`` hit rates over the pairs that hold their target, ``peak_present`` /
    ``peak_absent`` the mean score-map peak of pairs with and without it (NaN when there are none), ``pairs``."""
    hits = {"own": [], "swapped": []}
    peaks = {True: [], False: []}
    with torch.no_grad():
        for batch in batches:
            present = batch["target_present"] == 1
            label = batch["search_heatmap"].flatten(1)
            for name, template in (("own", batch["template"]), ("swapped", batch["template"].roll(1, 0))):
                score = net(template, batch["search"])["score_map"].flatten(1)   # the recipe's CE, as tracking
                on_target = label.gather(1, score.argmax(1, keepdim=True)).squeeze(1) >= 0.5
                hits[name] += on_target[present].tolist()
                if name == "own":
                    for flag in (True, False):
                        peaks[flag] += score.max(1).values[present == flag].tolist()
    mean = lambda values: float(np.mean(values)) if values else float("nan")   # noqa: E731
    return {"own": mean(hits["own"]), "swapped": mean(hits["swapped"]), "peak_present": mean(peaks[True]),
            "peak_absent": mean(peaks[False]), "pairs": len(hits["own"]) + len(peaks[False])}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--checkpoint")
    parser.add_argument("--data", required=True, metavar="NAME=DIR", help="held-out data, e.g. got10k=DIR")
    parser.add_argument("--split", default="train", help="the dataset split to draw from (default: train)")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--epoch", type=int, default=10_000, help="the sampling epoch (pairs differ per epoch)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if "=" not in args.data:
        parser.error(f"--data {args.data}: expected NAME=DIR")
    name, root = args.data.split("=", 1)

    from mimtrack.tracker.checkpoints import load_network, resolve_network
    from mimtrack.tracker.data.loader import build_train_loader

    torch.set_num_threads(args.threads)
    overrides = [f"data.train=[{{name: {name}, split: '{args.split}', ratio: 1.0}}]",
                 f"data.samples_per_epoch={args.samples}", "data.num_workers=0"] + args.set
    cfg, checkpoint = resolve_network(args.config, args.checkpoint, overrides)
    net = load_network(cfg, checkpoint)
    rates = hit_rates(net, build_train_loader(cfg, {name: root}, epoch=args.epoch))
    print(f"{rates['pairs']} pairs from {root}: peak on the target {rates['own']:.3f} with the own template, "
          f"{rates['swapped']:.3f} with another pair's")
    if not np.isnan(rates["peak_absent"]):
        print(f"mean peak score {rates['peak_present']:.3f} with the target in the crop, "
              f"{rates['peak_absent']:.3f} without")


if __name__ == "__main__":
    main()
