"""TrackingNet: chunks ``TRAIN_0..TRAIN_11`` and ``TEST``, each ``<chunk>/anno/<vid>.txt`` and
``<chunk>/frames/<vid>/<k>.jpg`` (0-based, unpadded: sorted numerically). TEST annotations hold
the first frame only (the rest is evaluated by the server)."""

import os

from mimtrack.evaluation import textfiles
from mimtrack.evaluation.sequence import FrameList, Sequence
from mimtrack.errors import UserError

TRAIN_CHUNKS = tuple(f"TRAIN_{k}" for k in range(12))
CHUNKS = TRAIN_CHUNKS + ("TEST",)


def _numbered_frames(folder):
    """``<k>.jpg`` files of a folder in numeric order."""
    stems = [f[:-4] for f in os.listdir(folder) if f.endswith(".jpg") and f[:-4].isdigit()]
    return [os.path.join(folder, f"{stem}.jpg") for stem in sorted(stems, key=int)]


class TrackingNet:
    """``test`` = TEST; ``train`` = every TRAIN chunk present; or a chunk name / comma list of them."""

    name = "trackingnet"
    splits = ("test", "train") + CHUNKS
    default_split = "test"

    def chunks(self, root, split):
        if split == "test":
            return ["TEST"]
        if split == "train":
            return [c for c in TRAIN_CHUNKS if root is None or os.path.isdir(os.path.join(root, c))]
        chunks = split.split(",")
        unknown = [c for c in chunks if c not in CHUNKS]
        if unknown:
            raise UserError(f"trackingnet: unknown split/chunk {', '.join(unknown)} (known: test, train, "
                            f"{', '.join(CHUNKS)})")
        return chunks

    def accepts(self, split):
        return split in self.splits or all(c in CHUNKS for c in split.split(","))

    def official_names(self, split):
        return None  # the video lists are not packaged; the chunks present on disk define the split

    def present_names(self, root, split):
        names = []
        for chunk in self.chunks(root, split):
            anno_dir = os.path.join(root, chunk, "anno")
            if os.path.isdir(anno_dir):
                names += sorted(f[:-4] for f in os.listdir(anno_dir) if f.endswith(".txt"))
            elif os.path.isdir(os.path.join(root, chunk)):
                raise UserError(f"{anno_dir}: TrackingNet annotation folder not found")
        return names

    def load(self, root, split, name):
        for chunk in self.chunks(root, split):
            anno_path = os.path.join(root, chunk, "anno", f"{name}.txt")
            if os.path.isfile(anno_path):
                break
        gt = textfiles.read_boxes(anno_path)
        folder = os.path.join(root, chunk, "frames", name)
        info = {"chunk": chunk}
        if chunk == "TEST":
            info["first_frame_only"] = True
            frames = FrameList(lambda: _numbered_frames(folder))
        else:
            frames = FrameList.from_pattern(folder, "%d.jpg", 0, len(gt) - 1)
        return Sequence(name=name, ground_truth=gt, frames=frames, dataset=self.name, info=info)
