"""A small real-photo ImageNet-layout folder from scikit-image's bundled sample photos (no download).

    python benchmarks/make_photo_folder.py OUT [--train 40] [--val 15] [--size 64]

Each class is one photograph (12: textures such as brick / grass / gravel, scenes such as astronaut / coffee /
rocket, microscopy); its images are random square crops (side 12-28 % of the shorter image side, any position),
resized to ``--size`` px. Train crops come from the top 70 % of the photo and validation crops from the bottom
25 %, so no validation pixel is ever seen in training. Written to OUT/train/<class>/*.png and OUT/val/<class>/*.png
(``mimtrack pretrain`` reads OUT/train, ``finetune`` / ``linprobe`` read both). Needs ``pip install scikit-image``.
"""

import argparse
import os
import sys

import numpy as np
from PIL import Image

PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel", "hubble_deep_field",
          "immunohistochemistry", "moon", "rocket")
TRAIN_ROWS, VAL_ROWS = (0.0, 0.70), (0.75, 1.0)  # fractions of the photo's height; the gap keeps crops apart


def crops(photo, rows, count, size, rng):
    """``count`` random square crops whose rows lie inside the ``rows`` band of ``photo`` (H, W, 3)."""
    h, w = photo.shape[:2]
    top, bottom = int(rows[0] * h), int(rows[1] * h)
    out = []
    for _ in range(count):
        side = int(rng.uniform(0.12, 0.28) * min(h, w))
        side = min(side, bottom - top, w)
        y = rng.integers(top, bottom - side + 1)
        x = rng.integers(0, w - side + 1)
        patch = Image.fromarray(photo[y:y + side, x:x + side]).resize((size, size), Image.BICUBIC)
        out.append(patch)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--train", type=int, default=40, help="crops per class for train/")
    parser.add_argument("--val", type=int, default=15, help="crops per class for val/")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import skimage.data
    except ImportError:
        print("make_photo_folder: scikit-image is not installed (pip install scikit-image)", file=sys.stderr)
        return 2
    if os.path.exists(args.output):
        print(f"make_photo_folder: {args.output} exists; choose a new folder", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    for name in PHOTOS:
        photo = getattr(skimage.data, name)()
        if photo.ndim == 2:
            photo = np.stack([photo] * 3, axis=-1)
        photo = photo[..., :3]
        for split, rows, count in (("train", TRAIN_ROWS, args.train), ("val", VAL_ROWS, args.val)):
            folder = os.path.join(args.output, split, name)
            os.makedirs(folder)
            for i, patch in enumerate(crops(photo, rows, count, args.size, rng)):
                patch.save(os.path.join(folder, f"{i:03d}.png"))
    print(f"{args.output}: {len(PHOTOS)} classes, {args.train} train / {args.val} val crops each, {args.size} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
