"""The demo's bundled clip: a textured object moving over a textured background, generated (no download).

Deterministic: the same seed always renders the same frames, so the clip is written once to a cache folder
(``$MIMTRACK_CACHE``, else ``$XDG_CACHE_HOME/mimtrack``, else ``~/.cache/mimtrack``) and reused.
"""

import os
import pathlib
import shutil
import tempfile

import cv2
import numpy as np

from mimtrack.fileio import write_text_atomic

CLIP_NAME = "demo_clip_v1"
NUM_FRAMES = 60
FRAME_SIZE = (320, 240)      # width, height
OBJECT_SIZE = (48, 36)       # width, height at scale 1
SEED = 20240601


def cache_dir():
    """Where generated assets are kept."""
    root = os.environ.get("MIMTRACK_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mimtrack")
    return pathlib.Path(root)


def _smooth_noise(rng, height, width, cell):
    """Colour noise at ``cell``-pixel granularity, bilinearly upsampled: a blotchy texture."""
    coarse = rng.integers(0, 256, size=(height // cell + 2, width // cell + 2, 3), dtype=np.uint8)
    big = cv2.resize(coarse, ((width // cell + 2) * cell, (height // cell + 2) * cell),
                     interpolation=cv2.INTER_LINEAR)
    return big[:height, :width]


def render_clip(num_frames=None, seed=SEED):
    """-> (frames: list of HxWx3 RGB uint8, ground truth (N, 4) float64 x, y, w, h); NUM_FRAMES frames by default."""
    num_frames = NUM_FRAMES if num_frames is None else num_frames
    rng = np.random.default_rng(seed)
    width, height = FRAME_SIZE
    background = (0.6 * _smooth_noise(rng, height, width, 16) + 0.4 * _smooth_noise(rng, height, width, 4))
    background = (background * 0.7).astype(np.uint8)   # darker than the object so it stands out
    obj_w, obj_h = OBJECT_SIZE
    # The object: a warm checkerboard with fine noise, so it has texture at every scale.
    yy, xx = np.mgrid[0:obj_h, 0:obj_w]
    checker = ((yy // 6 + xx // 6) % 2).astype(np.float64)
    texture = np.stack([200 + 55 * checker, 120 + 80 * checker, 40 + 30 * (1 - checker)], axis=-1)
    texture = np.clip(texture + rng.normal(0, 12, texture.shape), 0, 255).astype(np.uint8)

    frames, boxes = [], []
    for k in range(num_frames):
        t = k / max(num_frames - 1, 1)
        # A Lissajous path across the frame, with a gentle change of scale.
        cx = width * (0.5 + 0.3 * np.sin(2 * np.pi * t))
        cy = height * (0.5 + 0.25 * np.sin(4 * np.pi * t + 0.5))
        scale = 1.0 + 0.25 * np.sin(2 * np.pi * t)
        w, h = round(obj_w * scale), round(obj_h * scale)
        x, y = round(cx - w / 2), round(cy - h / 2)
        frame = background.copy()
        frame[y:y + h, x:x + w] = cv2.resize(texture, (w, h), interpolation=cv2.INTER_LINEAR)
        frames.append(frame)
        boxes.append([x, y, w, h])
    return frames, np.array(boxes, dtype=np.float64)


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
