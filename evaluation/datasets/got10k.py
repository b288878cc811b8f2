"""GOT-10k: ``<root>/{train,val,test}/list.txt`` and ``GOT-10k_<Split>_%06d/`` sequence folders.

A folder holds ``%08d.jpg`` frames, ``groundtruth.txt`` (test: the first row only),
``absence.label``, ``cover.label`` (visible ratio x 8), ``cut_by_image.label`` and ``meta_info.ini``.
"""

import glob
import os
import re

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

from ._common import all_visible, read_labels, split_file

# Trainer-side splits of train/ (pytracking/OSTrack ltr/data_specs): indices into the order of
# train/list.txt, where index 0 is GOT-10k_Train_000001.
INDEX_SPLITS = ("train_full", "vottrain", "votval", "ltrtrain", "ltrval")
N_SEQUENCES = {"train": 9335, "val": 180, "test": 180}


def _folder_split(split):
    return split if split in N_SEQUENCES else "train"


def parse_meta_info(path):
    """``key: value`` lines of meta_info.ini; resolution ``(W, H)`` becomes a tuple of ints."""
    info = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, sep, value = line.partition(":")
            if sep and not line.startswith("["):
                info[key.strip()] = value.strip()
    if "resolution" in info:
        match = re.fullmatch(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)", info["resolution"])
        if match is None:
            raise UserError(f"{path}: resolution {info['resolution']!r} is not '(W, H)'")
        info["resolution"] = (int(match.group(1)), int(match.group(2)))
    return info


class GOT10k:
    """GOT-10k val (local evaluation), test (server), train and its trainer-side splits.

    ``vot_exclude``: the 1000 train sequences that VOT rules forbid for training VOT entries.
    """

    name = "got10k"
    splits = ("val", "test", "train") + INDEX_SPLITS + ("vot_exclude",)
    default_split = "val"

    def official_names(self, split):
        if split in N_SEQUENCES:
            prefix = f"GOT-10k_{split.capitalize()}_"
            return [f"{prefix}{k:06d}" for k in range(1, N_SEQUENCES[split] + 1)]
        if split == "vot_exclude":
            return list(split_file("got10k")["vot_exclude"])
        return [f"GOT-10k_Train_{index + 1:06d}" for index in split_file("got10k")[split]]

    def present_names(self, root, split):
        split_dir = os.path.join(root, _folder_split(split))
        if not os.path.isdir(split_dir):
            raise UserError(f"{split_dir}: GOT-10k split folder not found")
        list_path = os.path.join(split_dir, "list.txt")
        if split in N_SEQUENCES and os.path.isfile(list_path):
            names = textfiles.read_text(list_path).split()  # the released order
        else:
            names = self.official_names(split)
        return [n for n in names if os.path.isdir(os.path.join(split_dir, n))]

    def load(self, root, split, name):
        folder = os.path.join(root, _folder_split(split), name)
        gt_path = os.path.join(folder, "groundtruth.txt")
        gt = textfiles.read_boxes(gt_path)
        first_frame_only = split == "test"
        labels = {}
        if not first_frame_only:
            for key in ("absence", "cover", "cut_by_image"):
                values = read_labels(os.path.join(folder, f"{key}.label"), len(gt))
                if values is not None:
                    labels[key] = values
        visible = all_visible(
            labels["absence"] == 0 if "absence" in labels else None,
            labels["cover"] > 0 if "cover" in labels else None,
        )
        meta_path = os.path.join(folder, "meta_info.ini")
        info = parse_meta_info(meta_path) if os.path.isfile(meta_path) else {}
        if first_frame_only:
            # Only the initial box is released: the frame count comes from the folder.
            info["first_frame_only"] = True
            frames = FrameList(lambda: sorted(glob.glob(os.path.join(glob.escape(folder), "*.jpg"))))
        else:
            frames = FrameList.from_pattern(folder, "%08d.jpg", 1, len(gt))
        return Sequence(name=name, ground_truth=gt, frames=frames, dataset=self.name,
                        visible=visible, labels=labels, info=info)
