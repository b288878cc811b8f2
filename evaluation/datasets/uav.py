"""UAV123 and UAV20L: ``<root>/anno/UAV123/<seq>.txt`` (or ``anno/UAV20L/``) with frames
``<root>/data_seq/UAV123/<folder>/%06d.jpg``. Several sequences are frame ranges of one folder
(bird1_1, bird1_2, ...): the packaged table (from the got10k toolkit's uav123.json) gives each
sequence's folder and range. Absent targets are ``NaN,NaN,NaN,NaN`` rows and stay NaN.
"""

import os

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

from ._common import read_flags, split_file

# Names of the 12 flags in anno/UAV123/att/<seq>.txt. UNVERIFIED: this column order is taken
# from the UAV123 paper's attribute table, not checked against a released attribute file.
ATTRIBUTES = ("SV", "ARC", "LR", "FM", "FOC", "POC", "OV", "BC", "IV", "VC", "CM", "SOB")


def sequence_table(subset):
    """name -> (folder, start_frame, end_frame) for subset 'UAV123' or 'UAV20L', in table order."""
    return {name: tuple(row) for name, row in split_file("uav")[subset].items()}


class UAV:
    """UAV123 (123 sequences) or UAV20L (20 long sequences); all for testing."""

    splits = ("test",)
    default_split = "test"

    def __init__(self, name, subset):
        self.name = name
        self.subset = subset

    def official_names(self, split):
        return list(sequence_table(self.subset))

    def present_names(self, root, split):
        anno_dir = os.path.join(root, "anno", self.subset)
        if not os.path.isdir(anno_dir):
            raise UserError(f"{anno_dir}: {self.subset} annotation folder not found")
        return [n for n in self.official_names(split) if os.path.isfile(os.path.join(anno_dir, f"{n}.txt"))]

    def load(self, root, split, name):
        anno_dir = os.path.join(root, "anno", self.subset)
        gt_path = os.path.join(anno_dir, f"{name}.txt")
        gt = textfiles.read_boxes(gt_path)
        folder, start, stop = sequence_table(self.subset)[name]
        if stop - start + 1 != len(gt):
            raise UserError(f"{gt_path}: {len(gt)} rows, but {name} is frames {start}-{stop} of "
                            f"{folder} ({stop - start + 1} frames)")
        frames = FrameList.from_pattern(os.path.join(root, "data_seq", "UAV123", folder), "%06d.jpg", start, stop)
        attributes = read_flags(os.path.join(anno_dir, "att", f"{name}.txt"), ATTRIBUTES)
        return Sequence(name=name, ground_truth=gt, frames=frames, dataset=self.name,
                        attributes=attributes or (), info={"folder": folder, "frame_range": (start, stop)})
