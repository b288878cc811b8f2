"""COCO 2017 as a training source: every non-crowd annotation is a one-frame sequence (OSTrack's COCO17).

Layout: ``<root>/annotations/instances_<split>.json`` with the images in ``<root>/images/<split>/`` or
``<root>/<split>/``. Template and search come from the same image; only the crop-validity checks apply.
"""

import json
import os

import numpy as np

from mimtrack.errors import UserError

from .sources import Source, TrainSequence, box_visible


def _image_folder(root, split):
    for folder in (os.path.join(root, "images", split), os.path.join(root, split)):
        if os.path.isdir(folder):
            return folder
    raise UserError(f"{root}: COCO image folder not found (expected images/{split}/ or {split}/)")


def read_coco_annotations(path):
    """The instances JSON -> (boxes (M, 4) float64, image file names (M,)) of the non-crowd annotations."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: COCO annotation file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        files = {image["id"]: image["file_name"] for image in data["images"]}
        kept = [a for a in data["annotations"] if not a.get("iscrowd", 0)]
        boxes = np.array([a["bbox"] for a in kept], dtype=np.float64).reshape(-1, 4)
        names = [files[a["image_id"]] for a in kept]
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: not a COCO instances file ({type(exc).__name__}: {exc})") from None
    return boxes, names


class CocoSource(Source):
    """One-frame sequences; arrays instead of 860k sequence objects."""

    is_video = False

    def __init__(self, root, split="train2017"):
        self.name = "coco"
        self.root = os.fspath(root)
        folder = _image_folder(self.root, split)
        self.boxes, names = read_coco_annotations(os.path.join(self.root, "annotations", f"instances_{split}.json"))
        if not len(self.boxes):
            raise UserError(f"{self.root}: no non-crowd COCO {split} annotations")
        # Image paths are shared by the annotations of one image: store each once.
        unique, self.image_index = np.unique(np.array(names, dtype=object), return_inverse=True)
        self.image_paths = [os.path.join(folder, n) for n in unique]

    def __len__(self):
        return len(self.boxes)

    def sequence(self, index):
        boxes = self.boxes[index:index + 1]
        return TrainSequence(f"coco-{index}", boxes, box_visible(boxes), [self.image_paths[self.image_index[index]]])

    def visible_counts(self):
        return box_visible(self.boxes).astype(np.int64)
