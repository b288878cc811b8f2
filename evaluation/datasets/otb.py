"""OTB100 (OTB2015): ``<root>/<Seq>/{groundtruth_rect.txt, img/%04d.jpg}``.

Two-target folders (Jogging, Skating2) hold ``groundtruth_rect.1.txt`` / ``.2.txt``, named
``Jogging.1`` / ``Jogging.2`` as in the got10k toolkit; Human4's ``.1`` file is empty and skipped.
Delimiters vary by file (comma, tab, spaces): the io reader accepts them all.
"""

import glob
import os

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

from ._common import split_file, subfolders

# Frame ranges (1-based, inclusive) where the GT covers part of the folder (pytracking
# otbdataset.py, vot otb.py). The BlurCar folders hold only the range, numbered from its start;
# the others hold more images than annotated. Tiger1 keeps all frames (as got10k and vot do).
FRAME_RANGES = {"David": (300, 770), "BlurCar1": (247, 988), "BlurCar3": (3, 359), "BlurCar4": (18, 397),
                "Football1": (1, 74), "Freeman3": (1, 460), "Freeman4": (1, 283), "Diving": (1, 215)}
FRAME_PATTERNS = {"Board": "%05d.jpg"}


def _annotation_files(folder):
    """Non-empty ``groundtruth_rect*.txt`` files of a folder, sorted."""
    paths = sorted(glob.glob(os.path.join(glob.escape(folder), "groundtruth_rect*.txt")))
    return [p for p in paths if _has_text(p)]


def _has_text(path):
    with open(path, "rb") as f:
        return bool(f.read(64).strip())


class OTB:
    """OTB100: the sequences are the folders present under the root (folders outside the
    OTB100 list are loaded too when they hold a ``groundtruth_rect.txt``)."""

    name = "otb"
    splits = ("otb100",)
    default_split = "otb100"

    def official_names(self, split):
        names = []
        for folder in split_file("otb")["otb100"]:
            names += [f"{folder}.1", f"{folder}.2"] if folder in ("Jogging", "Skating2") else [folder]
        return sorted(names)

    def present_names(self, root, split):
        known = set(split_file("otb")["otb100"])
        names = []
        for folder in subfolders(root):
            annotations = _annotation_files(os.path.join(root, folder))
            if not annotations and folder in known:
                raise UserError(f"{os.path.join(root, folder, 'groundtruth_rect.txt')}: file not found")
            if len(annotations) > 1:
                names += [f"{folder}.{os.path.basename(p).split('.')[1]}" for p in annotations]
            elif annotations:
                names.append(folder)
        return sorted(names)

    def load(self, root, split, name):
        folder_name, _, target = name.partition(".")
        folder = os.path.join(root, folder_name)
        if target:
            gt_path = os.path.join(folder, f"groundtruth_rect.{target}.txt")
        else:
            gt_path = _annotation_files(folder)[0]  # groundtruth_rect.txt (Human4: .2.txt)
        gt = textfiles.read_boxes(gt_path)
        start, stop = FRAME_RANGES.get(folder_name, (1, len(gt)))
        if stop - start + 1 != len(gt):
            raise UserError(f"{gt_path}: {len(gt)} rows, but {folder_name} frames {start}-{stop} "
                            f"need {stop - start + 1}")
        frames = FrameList.from_pattern(os.path.join(folder, "img"), FRAME_PATTERNS.get(folder_name, "%04d.jpg"),
                                        start, stop)
        return Sequence(name=name, ground_truth=gt, frames=frames, dataset=self.name,
                        info={"frame_range": (start, stop)})
