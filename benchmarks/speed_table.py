"""Speed and accuracy cost of each inference backend: the README's table.

    .venv/bin/python benchmarks/speed_table.py [--config C --checkpoint W] [--frames 200] [--threads N]
        [--rounds 3] [--sequence ../shared/data/otb/Crossing] [--json OUT]

Speed: ``mimtrack bench`` for each backend in fresh processes, ``--rounds`` times with the backends interleaved (a
shared VM's speed drifts over minutes): the table shows the run with the middle end-to-end median and the range of
the runs' medians.
Accuracy: each backend tracks one OTB-layout sequence (``img/`` + ``groundtruth_rect.txt``); the table gives the
success AUC against the ground truth and the agreement with the torch backend's boxes (mean IoU, largest
corner deviation in pixels). Without ``--checkpoint`` the weights are untrained (seeded): then only the
agreement means anything. The reference end-to-end time (OSTrack + MAE-Lite ViT-Tiny CE in PyTorch, measured on
this project's 2-core machine) is 42 ms per frame.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BACKENDS = ("torch", "onnxruntime", "torch-int8", "onnxruntime-int8")
REFERENCE_MS = 42.0


def bench(backend, args, config, checkpoint):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        command = [sys.executable, "-m", "mimtrack.cli", "bench", "--backend", backend, "--frames", str(args.frames),
                   "--warmup", str(args.warmup), "--json", out, "--config", config]
        if checkpoint:
            command += ["--checkpoint", checkpoint]
        if args.threads:
            command += ["--threads", str(args.threads)]
        subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        return json.loads(pathlib.Path(out).read_text())


def track(backend, config, checkpoint, sequence, threads):
    from mimtrack.evaluation.textfiles import read_boxes
    from mimtrack.images import read_image_rgb
    from mimtrack.tracker.inference import load_tracker

    frames = sorted((sequence / "img").glob("*.jpg"))
    gt = read_boxes(sequence / "groundtruth_rect.txt")
    tracker = load_tracker(config, checkpoint, backend=backend, threads=threads)
    boxes = [list(gt[0])]
    tracker.initialize(read_image_rgb(frames[0]), boxes[0])
    for path in frames[1:]:
        boxes.append(tracker.track(read_image_rgb(path))["box"])
    return np.array(boxes), gt


def auc(boxes, gt):
    from mimtrack.evaluation.metrics import box_iou, curve_auc, success_curve

    return float(curve_auc(success_curve(box_iou(boxes, gt))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="vit_tiny_256_ce")
    parser.add_argument("--checkpoint")
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--rounds", type=int, default=3, help="bench runs per backend, interleaved (default 3)")
    parser.add_argument("--sequence", default=str(REPO.parent / "shared" / "data" / "otb" / "Crossing"))
    parser.add_argument("--json")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error(f"--rounds {args.rounds}: must be >= 1")

    import torch

    from mimtrack.evaluation.metrics import box_iou
    from mimtrack.tracker.checkpoints import save_tracker_checkpoint
    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.model import build_model

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:   # seeded untrained weights, the same for every backend
            torch.manual_seed(0)
            checkpoint = os.path.join(tmp, "untrained.pth")
            save_tracker_checkpoint(checkpoint, build_model(load_tracker_config(args.config)))
        runs = {backend: [] for backend in args.backends}
        for _ in range(args.rounds):
            for backend in args.backends:
                runs[backend].append(bench(backend, args, args.config, checkpoint))
        rows, reference = [], None
        for backend in args.backends:
            ordered = sorted(runs[backend], key=lambda r: r["end_to_end"]["median_ms"])
            speed = ordered[len(ordered) // 2]
            row = {"backend": backend, "network": speed["network"], "end_to_end": speed["end_to_end"],
                   "end_to_end_medians": [r["end_to_end"]["median_ms"] for r in runs[backend]],
                   "load_average": speed["machine"].get("load_average"), "threads": speed["threads"]}
            sequence = pathlib.Path(args.sequence)
            if sequence.is_dir():
                boxes, gt = track(backend, args.config, checkpoint, sequence, speed["threads"])
                reference = boxes if backend == "torch" else reference
                row["auc"] = auc(boxes, gt)
                if reference is not None:
                    row["mean_iou_vs_torch"] = float(np.mean(box_iou(boxes, reference)))
                    row["max_px_vs_torch"] = float(np.abs(boxes - reference).max())
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)

    print(f"{args.config}, {'weights ' + args.checkpoint if args.checkpoint else 'untrained seeded weights'}, "
          f"{rows[0]['threads']} threads, {speed['machine']['cpu']}")
    print("| backend | network ms (median / p90) | end-to-end ms (median / p90) | runs' end-to-end medians | "
          "end-to-end FPS | vs 42 ms reference | AUC | mean IoU vs torch | max px vs torch | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        n, e = r["network"], r["end_to_end"]
        spread = f"{min(r['end_to_end_medians']):.1f}-{max(r['end_to_end_medians']):.1f}"
        print(f"| {r['backend']} | {n['median_ms']:.1f} / {n['p90_ms']:.1f} | {e['median_ms']:.1f} / {e['p90_ms']:.1f}"
              f" | {spread} | {e['fps']:.1f} | {REFERENCE_MS / e['median_ms']:.2f}x | {r.get('auc', float('nan')):.3f} | "
              f"{r.get('mean_iou_vs_torch', float('nan')):.4f} | {r.get('max_px_vs_torch', float('nan')):.2f} | "
              f"{r['load_average'][0] if r['load_average'] else '?'} |")
    if args.json:
        from mimtrack.fileio import write_text_atomic
        write_text_atomic(args.json, json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
