"""The demo's bundled clip: a synthetic sequence generated on first use (no download).

Deterministic: the same seed always renders the same frames, so the clip is written once to a cache folder
(``$MIMTRACK_CACHE``, else ``$XDG_CACHE_HOME/mimtrack``, else ``~/.cache/mimtrack``) and reused.
"""

import os
import pathlib
import shutil
import tempfile

import cv2
import numpy as np

from mimtrack.fileio import cache_dir, write_text_atomic
from mimtrack.tracker.data.synthetic import SyntheticVideo

CLIP_NAME = "demo_clip_v2"
NUM_FRAMES = 60
FRAME_SIZE = (320, 240)      # width, height
SEED = 20240601


def render_clip(num_frames=None, seed=SEED):
    """-> (frames: list of HxWx3 RGB uint8, ground truth (N, 4) float64 x, y, w, h); NUM_FRAMES frames by default.

    One sequence of ``mimtrack make-synthetic``'s generator (the data the demo tracker was trained on, other
    seeds): a textured object moving and changing scale over a textured background, with one look-alike
    distractor; it stays in view and unoccluded so the demo shows tracking, not recovery.
    """
    num_frames = NUM_FRAMES if num_frames is None else num_frames
    video = SyntheticVideo(np.random.default_rng(seed), num_frames, FRAME_SIZE, absence=False, occlusion=False,
                           distractors=1)
    frames = [cv2.cvtColor(video.render(k)[0], cv2.COLOR_BGR2RGB) for k in range(num_frames)]
    return frames, video.labels()[0]


def demo_clip(folder=None):
    """The clip as an image folder (``%04d.png`` + ``groundtruth.txt``), rendered on first use -> (folder, gt)."""
    folder = pathlib.Path(folder) if folder else cache_dir() / CLIP_NAME
    gt_path = folder / "groundtruth.txt"
    if not gt_path.is_file():
        frames, gt = render_clip()
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Render into a temporary folder and rename it: a half-written clip is never picked up.
        tmp = pathlib.Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        try:
            for k, frame in enumerate(frames, start=1):
                cv2.imwrite(str(tmp / f"{k:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            write_text_atomic(tmp / "groundtruth.txt", "".join(",".join(f"{v:g}" for v in b) + "\n" for b in gt))
            if not gt_path.is_file():
                shutil.rmtree(folder, ignore_errors=True)
                os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    gt = np.loadtxt(gt_path, delimiter=",", ndmin=2)
    return folder, gt
