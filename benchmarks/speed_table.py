"""Speed and accuracy cost of every inference backend x precision: the README's table, from one run.

    .venv/bin/python benchmarks/speed_table.py [--root val5 --dataset otb]
        [--results results/speed_table] [--rounds 3] [--frames 60] [--settle 0.3] [--threads N] [--json OUT]

Two trackers, every row of ``ROWS`` for each:
- the bundled tracker (``photos_cpu``, ``tracker/weights/demo.pth``: what ``mimtrack track`` runs without
  --config): AUC and P@20 from ``mimtrack track`` + ``mimtrack eval`` on ``--root`` (an OTB-layout folder; for the
  README the 5 real sequences bag, can, face, pedestrian and OTB Crossing), and its speed;
- ``vit_tiny_256_ce`` (MAE-Lite's ViT-Tiny CE tracker, the model of the 42 ms reference), seeded untrained
  weights (speed does not depend on them; the MAE-Lite weights cannot be had offline): its speed.
For both, the teacher-forced agreement with fp32 torch: over ``--agreement-sequence``, every row is given the
fp32 tracker's previous box each frame and the fraction of frames whose box then moves by more than 1 px is
counted (a precision's own error, without drift compounding it).

Speed: all rows are loaded in this one process and timed interleaved: ``--rounds`` rounds, in each every row runs
``mimtrack bench``'s two loops (:func:`mimtrack.tracker.bench.benchmark`: network on a real crop, end to end with the
search region around the previous ground-truth box) for ``--frames`` frames of ``--speed-sequence``, with
``--settle`` seconds of sleep before each loop so the previous runtime's spinning worker threads are idle. The
medians / p90 are over all rounds' frames. Tracking results and agreement figures are kept in ``--results``
(named by the weights and the software versions) and reused when the command is rerun, so a rerun only times:
run it once, then again for the timing under quiet conditions.
The int8 rows calibrate on ``--calibration`` (default: ``--root``).
"""

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS = (("torch", "fp32"), ("torch-int8", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime-int8", "fp32"),
        ("openvino", "fp32"), ("openvino", "bf16"), ("openvino-int8", "fp32"), ("openvino-int8", "bf16"))
REFERENCE_MS = 42.0
DEFAULT_ROOT = "val5"   # the real validation folder of README (bundled tracker section): mkdir + ln -s


def row_name(backend, precision):
    return f"{backend}-{precision}"


def tracker_args(model, backend, precision, calibration, threads):
    from mimtrack.tracker.checkpoints import DEMO_RECIPE, DEMO_WEIGHTS

    config, checkpoint = (DEMO_RECIPE, str(DEMO_WEIGHTS)) if model == "bundled" else model
    return dict(config=config, checkpoint=checkpoint, backend=backend, precision=precision, threads=threads,
                calibration=calibration if backend == "openvino-int8" else None)


def accuracy(args, results, calibration):
    """{row: {"auc", "precision"}} of the bundled tracker on --root (tracking skipped where results exist)."""
    dirs = []
    for backend, precision in ROWS:
        out = results / "bundled" / row_name(backend, precision)
        command = [sys.executable, "-m", "mimtrack.cli", "track", "--dataset", args.dataset, "--root", args.root,
                   "--results", str(out), "--backend", backend, "--precision", precision]
        if args.threads:
            command += ["--threads", str(args.threads)]
        if backend == "openvino-int8":
            command += ["--calibration", calibration]
        subprocess.run(command, check=True, cwd=REPO, stdout=subprocess.DEVNULL)
        dirs.append(str(out))
    scores = results / "bundled" / "scores.json"
    subprocess.run([sys.executable, "-m", "mimtrack.cli", "eval", "--dataset", args.dataset, "--root", args.root,
                    "--results", *dirs, "--json", str(scores)], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    data = json.loads(scores.read_text())
    return {name: data[name]["overall"] for name in data}


def agreement(trackers, sequence):
    """{row: fraction of frames whose box moves > 1 px (largest corner coordinate) against fp32 torch, given fp32
    torch's previous box}, over ``sequence`` (OTB layout)."""
    from mimtrack.evaluation.textfiles import read_boxes
    from mimtrack.images import read_image_rgb

    frames = sorted((sequence / "img").glob("*.jpg"))
    init = [float(v) for v in read_boxes(sequence / "groundtruth_rect.txt")[0]]
    reference = trackers[row_name("torch", "fp32")]
    for t in trackers.values():
        t.initialize(read_image_rgb(frames[0]), init)
    moved = {name: 0 for name in trackers}
    for path in frames[1:]:
        image = read_image_rgb(path)
        previous = list(reference.state)
        expected = np.array(reference.track(image)["box"])
        corners = lambda b: np.concatenate([b[:2], b[:2] + b[2:]])
        for name, t in trackers.items():
            if t is reference:
                continue
            t.state = list(previous)
            moved[name] += int(np.abs(corners(np.array(t.track(image)["box"])) - corners(expected)).max() > 1.0)
    return {name: count / (len(frames) - 1) for name, count in moved.items()}


def cached_json(path, compute):
    if path.is_file():
        return json.loads(path.read_text())
    from mimtrack.fileio import write_text_atomic

    value = compute()
    write_text_atomic(path, json.dumps(value, indent=2) + "\n")
    return value


def results_folder(args):
    """--results/<digest of the bundled weights, recipe and software versions>: reruns reuse what is valid."""
    import nncf
    import onnxruntime
    import openvino
    import torch

    from mimtrack.tracker.checkpoints import DEMO_WEIGHTS

    digest = hashlib.sha256(DEMO_WEIGHTS.read_bytes())
    digest.update(f"{torch.__version__}:{onnxruntime.__version__}:{openvino.__version__}:{nncf.__version__}:"
                  f"{args.root}:{args.calibration}".encode())
    return pathlib.Path(args.results) / digest.hexdigest()[:12]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="otb")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="sequences for AUC / P@20 (default %(default)s)")
    parser.add_argument("--calibration", help="int8 calibration frames (default: --root)")
    parser.add_argument("--results", default=str(REPO / "results" / "speed_table"))
    parser.add_argument("--speed-sequence", help="frames timed (default: --root/bag)")
    parser.add_argument("--agreement-sequence", help="teacher-forced agreement sequence (default: --root/Crossing)")
    parser.add_argument("--frames", type=int, default=60, help="timed frames per loop and round (default 60)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds (default 3; 0: only fill --results with the accuracy figures)")
    parser.add_argument("--settle", type=float, default=0.3, help="seconds of sleep before each timed loop")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json")
    parser.add_argument("--rows", nargs="+", metavar="BACKEND-PRECISION", help="only these rows (default: all)")
    args = parser.parse_args()
    if args.rounds < 0 or args.frames < 1:
        parser.error("--rounds must be >= 0 (0: accuracy only, no timing) and --frames >= 1")
    args.calibration = args.calibration or args.root
    global ROWS
    if args.rows:
        unknown = set(args.rows) - {row_name(*r) for r in ROWS}
        if unknown or "torch-fp32" not in args.rows:
            parser.error(f"--rows: unknown {sorted(unknown)} (torch-fp32, the reference, is required)")
        ROWS = tuple(r for r in ROWS if row_name(*r) in args.rows)

    import torch

    from mimtrack.tracker.backends import physical_cores
    from mimtrack.tracker.bench import benchmark, floor, load_images, machine_info, summarise
    from mimtrack.tracker.checkpoints import save_tracker_checkpoint
    from mimtrack.tracker.config import load_tracker_config
    from mimtrack.tracker.inference import load_tracker
    from mimtrack.tracker.model import build_model

    threads = args.threads or physical_cores()
    torch.set_num_threads(threads)
    results = results_folder(args)
    tiny = results / "vit_tiny_256_ce-untrained-seed0.pth"
    if not tiny.is_file():
        torch.manual_seed(0)
        save_tracker_checkpoint(tiny, build_model(load_tracker_config("vit_tiny_256_ce")))
    models = {"bundled": "bundled", "vit_tiny_256_ce": ("vit_tiny_256_ce", str(tiny))}

    scores = accuracy(args, results, args.calibration)
    trackers = {m: {row_name(*r): load_tracker(**tracker_args(spec, *r, args.calibration, threads)) for r in ROWS}
                for m, spec in models.items()}
    sequence = pathlib.Path(args.agreement_sequence or pathlib.Path(args.root) / "Crossing")
    rows_key = hashlib.sha256(" ".join(row_name(*r) for r in ROWS).encode()).hexdigest()[:8]
    moved = {m: cached_json(results / f"{m}-agreement-{sequence.name}-{rows_key}.json",
                            lambda: agreement(trackers[m], sequence)) for m in models}
    if args.rounds == 0:
        print(json.dumps({"scores": scores, "moved": moved}, indent=2))
        return

    frames, boxes = load_images(args.speed_sequence or os.path.join(args.root, "bag", "img"), args.frames + 1)
    times = {m: {name: ([], []) for name in trackers[m]} for m in models}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for m in models:
            for name, t in trackers[m].items():
                network, end_to_end = benchmark(t, frames, boxes, args.frames, args.warmup, args.settle)
                times[m][name][0].extend(network)
                times[m][name][1].extend(end_to_end)
        loads.append(os.getloadavg()[0])
    speed = {m: {name: {"network": summarise(n), "end_to_end": summarise(e)} for name, (n, e) in rows.items()}
             for m, rows in times.items()}
    for m in models:
        for (backend, precision), name in zip(ROWS, speed[m]):
            s = speed[m][name]
            s["floor"] = floor(trackers[m][name].model, backend, precision, threads, s["network"]["median_ms"])

    info = machine_info()
    print(f"{info['cpu']}, {threads} threads, torch {info['torch']}, onnxruntime {info['onnxruntime']}, openvino "
          f"{info['openvino']}; {args.rounds} interleaved rounds x {args.frames} frames of "
          f"{args.speed_sequence or os.path.join(args.root, 'bag')} per loop; load average (1 min) during the run "
          f"{min(loads):.1f}-{max(loads):.1f}")
    print(f"AUC / P@20: the bundled tracker on {args.root} ({args.dataset}); int8 calibrated on {args.calibration}; "
          f"'moved': frames whose box moves > 1 px against fp32 torch given its previous box ({sequence.name})")
    print("| backend | precision | bundled: end-to-end ms (median / p90) | bundled: AUC | bundled: P@20 | "
          "bundled: moved | vit_tiny_256_ce: network ms (median) | network floor ms (reached) | "
          "vit_tiny_256_ce: end-to-end ms (median / p90) | vs 42 ms reference | vit_tiny_256_ce: moved |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backend, precision in ROWS:
        name = row_name(backend, precision)
        b, v = speed["bundled"][name], speed["vit_tiny_256_ce"][name]
        score = scores[name]
        f = v["floor"]
        floor_text = f"{f['floor_ms']:.1f} {f['arithmetic']} ({100 * f['fraction']:.0f}%)" if f["floor_ms"] else "?"
        print(f"| {backend} | {precision} | {b['end_to_end']['median_ms']:.2f} / {b['end_to_end']['p90_ms']:.2f} | "
              f"{100 * score['auc']:.2f} | {100 * score['precision']:.2f} | "
              f"{100 * moved['bundled'].get(name, 0.0):.1f}% | {v['network']['median_ms']:.1f} | {floor_text} | "
              f"{v['end_to_end']['median_ms']:.1f} / {v['end_to_end']['p90_ms']:.1f} | "
              f"{REFERENCE_MS / v['end_to_end']['median_ms']:.2f}x | {100 * moved['vit_tiny_256_ce'].get(name, 0.0):.1f}% |")
    if args.json:
        from mimtrack.fileio import write_text_atomic
        write_text_atomic(args.json, json.dumps({"speed": speed, "scores": scores, "moved": moved,
                                                 "machine": info, "load_average": loads}, indent=2) + "\n")


if __name__ == "__main__":
    main()
