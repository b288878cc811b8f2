"""LaSOT and its extension subset: ``<root>/<category>/<category>-<n>/``.

Each sequence folder holds ``groundtruth.txt`` (x,y,w,h per frame), ``full_occlusion.txt`` and
``out_of_view.txt`` (one line of comma-separated 0/1 per frame), ``nlp.txt`` and ``img/%08d.jpg``.
"""

import os

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence

from ._common import all_visible, read_flags, read_labels, read_optional_text, split_file

# Column order of the LaSOT-matlab toolkit's annos/att/<seq>.txt files.
ATTRIBUTES = ("IV", "POC", "DEF", "MB", "CM", "ROT", "BC", "VC", "SV", "FOC", "FM", "OV", "LR", "ARC")


def _category(name):
    return name.rsplit("-", 1)[0]


def _category_order(name):
    category, number = name.rsplit("-", 1)
    return category, int(number)


class LaSOT:
    """LaSOT protocol II: test (280 sequences, 4 per category) and train (1120)."""

    name = "lasot"
    splits = ("test", "train", "all")
    default_split = "test"

    def official_names(self, split):
        lists = split_file("lasot")
        if split == "all":
            return sorted(lists["test"] + lists["train"], key=_category_order)
        return list(lists[split])

    def present_names(self, root, split):
        return [n for n in self.official_names(split) if os.path.isdir(os.path.join(root, _category(n), n))]

    def load(self, root, split, name):
        folder = os.path.join(root, _category(name), name)
        gt = textfiles.read_boxes(os.path.join(folder, "groundtruth.txt"))
        labels = {}
        for key in ("full_occlusion", "out_of_view"):
            values = read_labels(os.path.join(folder, f"{key}.txt"), len(gt))
            if values is not None:
                labels[key] = values
        visible = all_visible(*(values == 0 for values in labels.values()))
        # The LaSOT-matlab toolkit ships attribute flags next to the data in annos/att/ (or att/).
        attributes = None
        for att_dir in ("annos/att", "att"):
            attributes = read_flags(os.path.join(root, att_dir, f"{name}.txt"), ATTRIBUTES)
            if attributes is not None:
                break
        return Sequence(
            name=name,
            ground_truth=gt,
            frames=FrameList.from_pattern(os.path.join(folder, "img"), "%08d.jpg", 1, len(gt)),
            dataset=self.name,
            visible=visible,
            language=read_optional_text(os.path.join(folder, "nlp.txt")),
            attributes=attributes or (),
            labels=labels,
            info={"category": _category(name)},
        )


class LaSOTExtension(LaSOT):
    """LaSOT extension subset: 15 new categories x 10 sequences, all for testing."""

    name = "lasot_ext"
    splits = ("test",)
    default_split = "test"

    def official_names(self, split):
        return list(split_file("lasot_ext")["test"])
