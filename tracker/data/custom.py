"""A user's own dataset: a folder of sequences, each needing only frames and ``groundtruth.txt``.

``<root>/<seq>/groundtruth.txt`` (x, y, w, h per frame, any delimiter) with the frames (jpg/png, sorted by name,
numbers numerically) in ``<root>/<seq>/img/`` or in the sequence folder itself. Optional per-frame visibility:
``absence.label`` (1 = absent), ``cover.label`` (0 = fully covered) or ``visible.txt`` (1 = visible); without
them a frame is visible when its box has w, h > 0 (OSTrack's loaders crash without absence/cover labels).
A root that itself holds ``groundtruth.txt`` is one sequence.
"""

import os

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.datasets._common import list_frames, natural_key, read_labels
from mimtrack.errors import UserError

from .sources import Source, TrainSequence, box_visible


def load_custom_sequence(folder):
    gt_path = os.path.join(folder, "groundtruth.txt")
    boxes = textfiles.read_boxes(gt_path)   # UserError naming the file when empty or malformed
    image_dir = os.path.join(folder, "img")
    frames = list_frames(image_dir if os.path.isdir(image_dir) else folder)
    if len(frames) < len(boxes):
        raise UserError(f"{folder}: {len(frames)} frames (jpg/png) for {len(boxes)} rows of groundtruth.txt")
    visible = box_visible(boxes)
    for label, is_visible in (("absence.label", lambda v: v == 0), ("cover.label", lambda v: v > 0),
                              ("visible.txt", lambda v: v == 1)):
        values = read_labels(os.path.join(folder, label), len(boxes))
        if values is not None:
            visible &= is_visible(values)
    return TrainSequence(os.path.basename(os.path.normpath(folder)), boxes, visible, frames[:len(boxes)])


def custom_source(root):
    root = os.fspath(root)
    if os.path.isfile(os.path.join(root, "groundtruth.txt")):
        return Source("custom", [load_custom_sequence(root)])
    sequences = []
    for entry in sorted(os.scandir(root), key=lambda e: natural_key(e.name)):
        if not entry.is_dir():
            continue
        if os.path.isfile(os.path.join(entry.path, "groundtruth.txt")):
            sequences.append(load_custom_sequence(entry.path))
        elif list_frames(entry.path) or os.path.isdir(os.path.join(entry.path, "img")):
            raise UserError(f"{os.path.join(entry.path, 'groundtruth.txt')}: file not found")
    if not sequences:
        raise UserError(f"{root}: no sequence folders with a groundtruth.txt found")
    return Source("custom", sequences)
