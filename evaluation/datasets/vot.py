"""VOT (vot-toolkit format): ``<root>/list.txt`` and one folder per sequence.

A sequence folder holds ``sequence`` (``key=value`` lines: ``channels.color=color/%08d.jpg``, optional
``width``/``height``/``length``), the frames, ``groundtruth.txt`` (one region per frame: ``x,y,w,h``, an 8-value
polygon, a ``m...`` mask or a special code), per-frame ``*.tag``/``*.label`` (0/1) and ``*.value`` (numbers,
``anchor.value`` drives multistart). Without a ``sequence`` file the frames are ``%08d.jpg`` beside the ground
truth (the toolkit's legacy layout). As in ``vot/dataset/common.py``: the frame count is ``length`` or the
frames on disk, a shorter ground truth is padded with unknown (special 0) rows, the image size is
``width``/``height`` or the first frame's.

``root`` is the folder holding ``list.txt``: a workspace's ``sequences/``.
"""

import os
import struct

import numpy as np

from mimtrack.evaluation import vot
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

DEFAULT_CHANNEL = os.path.join("color", "%08d.jpg")


def read_properties(path):
    """``key=value`` lines (vot.utilities.read_properties)."""
    properties = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep:
                properties[key.strip()] = value.strip()
    return properties


def image_size(path):
    """(width, height) from a JPEG or PNG header, without decoding the image."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
            if head[:8] == b"\x89PNG\r\n\x1a\n":
                return struct.unpack(">II", head[16:24])
            if head[:2] == b"\xff\xd8":
                f.seek(2)
                while True:
                    marker = f.read(4)
                    if len(marker) < 4 or marker[0] != 0xFF:
                        break
                    kind, length = marker[1], struct.unpack(">H", marker[2:])[0]
                    if kind in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                        height, width = struct.unpack(">xHH", f.read(5))
                        return width, height
                    f.seek(length - 2, os.SEEK_CUR)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    raise UserError(f"{path}: cannot read the image size (not a JPEG or PNG file)")


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _read_per_frame(folder, suffixes, parse, length):
    """{name: values} of the per-frame files with these suffixes, padded to ``length``."""
    columns = {}
    for entry in sorted(os.listdir(folder)):
        stem, suffix = os.path.splitext(entry)
        if suffix in suffixes:
            path = os.path.join(folder, entry)
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f.read().splitlines()]
            try:
                values = [parse(line) for line in lines]
            except ValueError:
                raise UserError(f"{path}: per-frame values must be numbers") from None
            columns[stem] = values
    return columns


class VOT:
    """Sequences in the vot-toolkit layout; ``list.txt`` names them."""

    name = "vot"
    splits = ("all",)
    default_split = "all"

    def official_names(self, split):
        return None  # the list.txt of the root defines the dataset

    def present_names(self, root, split):
        list_path = os.path.join(root, "list.txt")
        if not os.path.isfile(list_path):
            raise UserError(f"{list_path}: file not found (--root is the folder holding list.txt, e.g. a "
                            f"workspace's sequences/)")
        with open(list_path, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip()]
        missing = [n for n in names if not os.path.isdir(os.path.join(root, n))]
        if missing:
            raise UserError(f"{list_path}: sequence folder(s) not found: {', '.join(missing[:5])}")
        return names

    def load(self, root, split, name):
        folder = os.path.join(root, name)
        metadata_path = os.path.join(folder, "sequence")
        if os.path.isfile(metadata_path):
            metadata = read_properties(metadata_path)
            pattern = os.path.join(folder, *metadata.get("channels.color", DEFAULT_CHANNEL).split("/"))
        else:
            metadata, pattern = {}, os.path.join(folder, "%08d.jpg")
        if not os.path.splitext(pattern)[1]:
            pattern = os.path.join(pattern, "%08d.jpg")
        regions = vot.read_regions(os.path.join(folder, metadata.get("groundtruth", "groundtruth.txt")))
        length = _int_or_none(metadata.get("length"))
        if length is None:
            length = 0
            while os.path.isfile(pattern % (length + 1)):
                length += 1
            length = length or len(regions)   # annotations without frames: the ground truth's length
        regions = regions[:length] + [vot.Region.special(vot.UNKNOWN)] * (length - len(regions))
        width, height = _int_or_none(metadata.get("width")), _int_or_none(metadata.get("height"))
        if width is None or height is None:
            first = pattern % 1
            width, height = image_size(first) if os.path.isfile(first) else (None, None)
        boxes = np.array([r.box() or [np.nan] * 4 for r in regions], dtype=np.float64).reshape(-1, 4)
        tags = _read_per_frame(folder, (".tag", ".label"), lambda v: v == "1", length)
        values = _read_per_frame(folder, (".value",), lambda v: float(v) if v else 0.0, length)
        for key, column in values.items():
            if len(column) > length:
                raise UserError(f"{os.path.join(folder, key + '.value')}: {len(column)} values for {length} frames")
            column.extend([0.0] * (length - len(column)))
        labels = {key: np.array(column[:length] + [False] * (length - len(column)), dtype=bool)
                  for key, column in tags.items()}
        labels.update({key: np.array(column, dtype=np.float64) for key, column in values.items()})
        info = {"regions": regions, "size": (width, height) if width else None, "folder": folder,
                "tags": sorted(tags), "values": sorted(values)}
        directory, file_pattern = os.path.split(pattern)
        return Sequence(name=name, ground_truth=boxes, dataset=self.name, labels=labels, info=info,
                        frames=FrameList.from_pattern(directory, file_pattern, 1, length))
