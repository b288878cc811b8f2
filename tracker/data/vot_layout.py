"""Writing sequences in the vot-toolkit layout (what ``mimtrack.evaluation.datasets.vot`` and ``vot`` read).

``<out>/list.txt``, ``<out>/<seq>/sequence`` (``channels.color=color/%08d.jpg``, fps, name, width, height,
length), ``<out>/<seq>/color/%08d.jpg``, ``groundtruth.txt`` (``x,y,w,h`` rows), ``anchor.value`` (multistart
anchors: forwards from frame 1 and every ``ANCHOR_SPACING`` frames, backwards from the last frame, as VOT2020+
sequences have) and optional ``<tag>.tag`` files.
"""

import os
import shutil

import numpy as np

from mimtrack.fileio import write_text_atomic

ANCHOR_SPACING = 50


def anchor_column(n, spacing=ANCHOR_SPACING):
    """1 at frames 0, spacing, 2 spacing, ...; -1 at the last frame (a backward run); 0 elsewhere."""
    anchor = np.zeros(n, dtype=int)
    anchor[::spacing] = 1
    if n > 1:
        anchor[-1] = -1
    return anchor


def write_sequence_files(folder, name, boxes, size, tags=None, fps=30):
    """The annotation files of one sequence whose frames are (or will be) ``folder/color/%08d.jpg``."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    n = len(boxes)
    write_text_atomic(os.path.join(folder, "sequence"),
                      f"channels.color=color/%08d.jpg\nformat=default\nfps={fps}\nname={name}\n"
                      f"width={size[0]}\nheight={size[1]}\nlength={n}\n")
    write_text_atomic(os.path.join(folder, "groundtruth.txt"),
                      "".join(",".join(f"{v:.10g}" for v in row) + "\n" for row in boxes))
    write_text_atomic(os.path.join(folder, "anchor.value"), "".join(f"{v}\n" for v in anchor_column(n)))
    for tag, flags in (tags or {}).items():
        write_text_atomic(os.path.join(folder, f"{tag}.tag"), "".join(f"{int(bool(f))}\n" for f in flags))


def write_list(out, names):
    """``list.txt``: the names already listed there, then the new ones."""
    path = os.path.join(out, "list.txt")
    listed = open(path).read().split() if os.path.isfile(path) else []
    write_text_atomic(path, "".join(f"{n}\n" for n in listed + [n for n in names if n not in listed]))


def convert_sequences(sequences, out):
    """Copy benchmark sequences (``mimtrack.evaluation.sequence.Sequence`` with JPEG frames and x,y,w,h ground truth,
    e.g. OTB ones) into the VOT layout under ``out``; returns the names written."""
    import cv2

    from mimtrack.evaluation.datasets.vot import image_size

    names = []
    for sequence in sequences:
        folder = os.path.join(out, sequence.name)
        frames = list(sequence.frames)
        for k, source in enumerate(frames, start=1):
            target = os.path.join(folder, "color", "%08d.jpg" % k)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if source.lower().endswith((".jpg", ".jpeg")):
                shutil.copyfile(source, target)
            else:
                cv2.imwrite(target, cv2.imread(source, cv2.IMREAD_COLOR))
        write_sequence_files(folder, sequence.name, sequence.ground_truth[:len(frames)],
                             image_size(os.path.join(folder, "color", "00000001.jpg")))
        names.append(sequence.name)
    write_list(out, names)
    return names


def write_synthetic(out, name, video):
    """One ``mimtrack.tracker.data.synthetic.SyntheticVideo`` as a VOT sequence (``make-synthetic --format vot``); frames
    where less than half of the target is visible are tagged ``occlusion``."""
    from mimtrack.tracker.data.synthetic import _render_video

    folder = os.path.join(out, name)
    gt, in_view, visible = _render_video(video, [os.path.join(folder, "color", "%08d.jpg" % (k + 1))
                                                 for k in range(video.n)])
    write_sequence_files(folder, name, gt, (video.width, video.height), tags={"occlusion": visible < 0.5})
