"""TNL2K: ``<root>/<seq>/{imgs/*.jpg|png, groundtruth.txt, language.txt}``."""

import os

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

from ._common import list_frames, read_optional_text, subfolders


def _image_files(folder):
    """jpg/png files of a folder (TNL2K mixes both extensions across sequences), in natural order."""
    return list_frames(folder, (".jpg", ".png"))


class TNL2K:
    """TNL2K; the sequences are the folders present under the root (the test set has 700)."""

    name = "tnl2k"
    splits = ("test",)
    default_split = "test"

    def official_names(self, split):
        return None  # no packaged list: the folders present define the benchmark

    def present_names(self, root, split):
        names = []
        for folder in subfolders(root):
            path = os.path.join(root, folder)
            if os.path.isfile(os.path.join(path, "groundtruth.txt")):
                names.append(folder)
            elif os.path.isdir(os.path.join(path, "imgs")):
                raise UserError(f"{os.path.join(path, 'groundtruth.txt')}: file not found")
        return names

    def load(self, root, split, name):
        folder = os.path.join(root, name)
        gt = textfiles.read_boxes(os.path.join(folder, "groundtruth.txt"))
        frames = FrameList(lambda: _image_files(os.path.join(folder, "imgs")))
        return Sequence(name=name, ground_truth=gt, frames=frames, dataset=self.name,
                        language=read_optional_text(os.path.join(folder, "language.txt")))
