"""Need for Speed (NfS), 30 fps version, in either of two layouts.

official: ``<root>/<seq>/30/<seq>/%05d.jpg`` + ``<root>/<seq>/30/<seq>.txt`` with rows
``id xmin ymin xmax ymax frame lost occluded generated "label"``.
pytracking: ``<root>/sequences/<seq>/%05d.jpg`` + ``<root>/anno/nfs_<seq>.txt`` (x,y,w,h).
"""

import os
import re

import numpy as np

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

from ._common import subfolders

_QUOTED = re.compile(rb'"[^"\n]*"')


def read_official_annotation(path, image_dir):
    """(N, 4) x,y,w,h boxes of one 30 fps frame each from an official NfS annotation file.

    Some released 30 fps files hold the 240 fps annotation (8 rows per 30 fps frame): like the
    got10k toolkit we then keep every 8th row. With the frames on disk this is decided from the
    image count (~8x more rows than images); without them, from the ``frame`` column: 30 fps
    annotations number frames in 240 fps ids stepping by 8, 240 fps ones step by 1.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    table = textfiles.parse_table(_QUOTED.sub(b"", data), path, columns=9)
    boxes = np.hstack([table[:, 1:3], table[:, 3:5] - table[:, 1:3]])  # xmin,ymin,xmax,ymax -> x,y,w,h
    frame_ids = table[:, 5]
    if len(frame_ids) < 2 or np.any(np.diff(frame_ids) != 1):
        return boxes  # already one row per 30 fps frame
    if os.path.isdir(image_dir):
        n_images = sum(1 for f in os.listdir(image_dir) if f.endswith(".jpg"))
        if n_images == 0 or abs(len(boxes) / n_images - 8) >= 1:
            return boxes
    return boxes[0::8]


class NfS:
    """NfS 30 fps (100 sequences); the sequences are those present under the root."""

    name = "nfs"
    splits = ("test",)
    default_split = "test"

    def official_names(self, split):
        return None  # no packaged list: the folders present define the benchmark

    def _pytracking_layout(self, root):
        # No NfS sequence is called 'anno': its presence marks the re-packaged layout.
        return os.path.isdir(os.path.join(root, "anno"))

    def present_names(self, root, split):
        if self._pytracking_layout(root):
            anno_dir = os.path.join(root, "anno")
            names = {f[4:-4] for f in os.listdir(anno_dir) if f.startswith("nfs_") and f.endswith(".txt")}
            image_root = os.path.join(root, "sequences")
            for folder in subfolders(image_root) if os.path.isdir(image_root) else ():
                if folder not in names:
                    raise UserError(f"{os.path.join(anno_dir, f'nfs_{folder}.txt')}: file not found")
            return sorted(names)
        return subfolders(root)

    def load(self, root, split, name):
        if self._pytracking_layout(root):
            gt = textfiles.read_boxes(os.path.join(root, "anno", f"nfs_{name}.txt"))
            image_dir = os.path.join(root, "sequences", name)
        else:
            image_dir = os.path.join(root, name, "30", name)
            gt = read_official_annotation(os.path.join(root, name, "30", f"{name}.txt"), image_dir)
        frames = FrameList.from_pattern(image_dir, "%05d.jpg", 1, len(gt))
        return Sequence(name=name, ground_truth=gt, frames=frames, dataset=self.name)
