"""``mimtrack make-synthetic``: a small tracking dataset in an official layout, for tests, demos and smoke runs.

Each sequence shows a textured target (random texture and shape) moving smoothly over a textured background,
changing scale and brightness, crossing behind an occluder, leaving the image for a while (absent frames) and
accompanied by distractors made from the target's own texture. Deterministic per seed; numpy and OpenCV only.

    mimtrack make-synthetic --format got10k --out /tmp/got10k --sequences 40 --frames 100 --size 320x240
"""

import json
import math
import os

import cv2
import numpy as np

from mimtrack.errors import UserError

FORMATS = ("lasot", "got10k", "coco", "otb", "vot")
DEFAULT_SPLITS = {"lasot": "train", "got10k": "train", "coco": "train2017", "otb": "", "vot": ""}
JPEG_QUALITY = 90


# ---------------------------------------------------------------- rendering
def random_texture(rng, height, width):
    """Colour blobs (smooth noise at two scales) plus stripes and fine grain: trackable, different every time."""
    texture = np.zeros((height, width, 3), dtype=np.float32)
    for cells, weight in ((3, 0.6), (9, 0.3)):
        grid = rng.random((cells, cells, 3)).astype(np.float32)
        texture += weight * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 16)
    yy, xx = np.mgrid[:height, :width]
    texture += 0.25 * np.sin((xx * math.cos(angle) + yy * math.sin(angle)) * (2 * np.pi / period))[..., None]
    texture += rng.normal(0, 0.04, size=texture.shape).astype(np.float32)
    return np.clip(texture * 255, 0, 255).astype(np.uint8)


def ellipse_mask(height, width):
    """A 0/1 mask of the ellipse filling a height x width patch."""
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.ellipse(mask, (width // 2, height // 2), (max(1, width // 2), max(1, height // 2)), 0, 0, 360, 1, -1)
    return mask


def smooth_path(rng, n, amplitude, periods=(20, 80)):
    """(n,) sum of two random sinusoids: smooth, bounded motion."""
    t = np.arange(n)
    path = np.zeros(n)
    for _ in range(2):
        path += amplitude / 2 * np.sin(2 * np.pi * t / rng.uniform(*periods) + rng.uniform(0, 2 * np.pi))
    return path


def paste(frame, patch, mask, x, y):
    """Draw ``patch`` where ``mask`` is set with its top-left at integer (x, y), clipped to the frame."""
    h, w = mask.shape
    fh, fw = frame.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return
    region = frame[y0:y1, x0:x1]
    sub_mask = mask[y0 - y:y1 - y, x0 - x:x1 - x].astype(bool)
    region[sub_mask] = patch[y0 - y:y1 - y, x0 - x:x1 - x][sub_mask]


def _intersection(a, b):
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


class SyntheticVideo:
    """One sequence: ``render(k)`` -> (BGR frame, full box [x, y, w, h] of the target, possibly outside the
    image). ``labels()`` gives the per-frame GT clipped to the image and the visible fractions."""

    def __init__(self, rng, n_frames, size, absence=True, occlusion=True, distractors=2):
        self.n, (self.width, self.height) = n_frames, size
        self.background = random_texture(rng, self.height, self.width)
        side = min(self.width, self.height)
        base = rng.uniform(0.15, 0.3) * side
        aspect = math.exp(rng.uniform(-0.5, 0.5))
        self.base_size = np.array([base * aspect, base / aspect])
        self.texture = random_texture(rng, 64, 64)
        self.shape_is_ellipse = rng.random() < 0.5
        margin = self.base_size.max()
        centre = rng.uniform([margin, margin], [self.width - margin, self.height - margin])
        self.cx = centre[0] + smooth_path(rng, n_frames, 0.25 * self.width)
        self.cy = centre[1] + smooth_path(rng, n_frames, 0.25 * self.height)
        self.cx = np.clip(self.cx, margin / 2, self.width - margin / 2)
        self.cy = np.clip(self.cy, margin / 2, self.height - margin / 2)
        self.scale = np.exp(smooth_path(rng, n_frames, 0.5, periods=(40, 120)))
        self.brightness = 1 + smooth_path(rng, n_frames, 0.3, periods=(30, 90))
        if absence and n_frames >= 30:
            # Leave through the nearest side and come back: a smooth push of up to one image width.
            start, length = int(rng.integers(n_frames // 3, n_frames - 15)), int(rng.integers(8, 15))
            t = np.arange(n_frames)
            ramp = np.clip(np.minimum(t - start, start + length - t) / 4, 0, 1)
            side_sign = -1 if self.cx[start] < self.width / 2 else 1
            self.cx = self.cx + side_sign * ramp * (self.width / 2 + margin * 2)
        self.occluder = None
        if occlusion and n_frames >= 25:
            # A wide bar sweeping horizontally through the target's path over ~20 frames.
            k = int(rng.integers(5, n_frames - 15))
            h = int(self.base_size[1] * self.scale[k] * 1.6) + 4
            w = int(self.base_size[0] * self.scale[k] * 1.2) + 4
            y = int(self.cy[k] - h / 2)
            xs = self.cx[k] - w / 2 + np.linspace(-self.width, self.width, 40)[np.clip(np.arange(n_frames) - k + 20,
                                                                                          0, 39)]
            self.occluder = (random_texture(rng, h, w), y, xs.astype(int))
        self.distractors = []
        for _ in range(distractors):
            tint = rng.uniform(0.8, 1.2, size=3)
            dx = rng.uniform(0, self.width) + smooth_path(rng, n_frames, 0.3 * self.width)
            dy = rng.uniform(0, self.height) + smooth_path(rng, n_frames, 0.3 * self.height)
            self.distractors.append((np.clip(self.texture * tint, 0, 255).astype(np.uint8), dx, dy,
                                     rng.uniform(0.7, 1.1)))

    def _object(self, texture, cx, cy, w, h, brightness=1.0):
        w, h = max(2, int(round(w))), max(2, int(round(h)))
        patch = cv2.resize(texture, (w, h), interpolation=cv2.INTER_LINEAR)
        if brightness != 1.0:
            patch = np.clip(patch * brightness, 0, 255).astype(np.uint8)
        mask = ellipse_mask(h, w) if self.shape_is_ellipse else np.ones((h, w), np.uint8)
        return patch, mask, int(round(cx - w / 2)), int(round(cy - h / 2))

    def box(self, k):
        w, h = np.maximum(2, np.round(self.base_size * self.scale[k]))
        return np.array([round(self.cx[k] - w / 2), round(self.cy[k] - h / 2), w, h], dtype=np.float64)

    def occluder_box(self, k):
        if self.occluder is None:
            return None
        texture, y, xs = self.occluder
        return np.array([xs[k], y, texture.shape[1], texture.shape[0]], dtype=np.float64)

    def render(self, k):
        frame = self.background.copy()
        w, h = self.base_size * self.scale[k]
        for texture, dx, dy, rel in self.distractors:
            paste(frame, *self._object(texture, dx[k], dy[k], w * rel, h * rel))
        box = self.box(k)
        patch, mask, _, _ = self._object(self.texture, 0, 0, box[2], box[3], self.brightness[k])
        paste(frame, patch, mask, int(box[0]), int(box[1]))
        occluder = self.occluder_box(k)
        if occluder is not None:
            texture = self.occluder[0]
            paste(frame, texture, np.ones(texture.shape[:2], np.uint8), int(occluder[0]), int(occluder[1]))
        return frame, box

    def labels(self):
        """(gt (N, 4) clipped to the image, 0 rows when out of view; in-view fraction; visible fraction)."""
        image = (0, 0, self.width, self.height)
        gt, in_view, visible = np.zeros((self.n, 4)), np.zeros(self.n), np.zeros(self.n)
        for k in range(self.n):
            box = self.box(k)
            area = box[2] * box[3]
            inside = _intersection(box, image)
            in_view[k] = inside / area
            if inside > 0:
                x0, y0 = max(box[0], 0), max(box[1], 0)
                x1, y1 = min(box[0] + box[2], self.width), min(box[1] + box[3], self.height)
                gt[k] = (x0, y0, x1 - x0, y1 - y0)
                occluder = self.occluder_box(k)
                hidden = _intersection(gt[k], occluder) if occluder is not None else 0
                visible[k] = (inside - hidden) / area
        return gt, in_view, visible



# ---------------------------------------------------------------- layouts
def _write_jpeg(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise UserError(f"{path}: cannot write the image")


def _write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def _rows(values, fmt="%g"):
    return "".join(",".join(fmt % v for v in np.atleast_1d(row)) + "\n" for row in values)


def _render_video(video, paths):
    for k, path in enumerate(paths):
        _write_jpeg(path, video.render(k)[0])
    return video.labels()


def write_lasot(out, name, video):
    """LaSOT: ``<out>/<category>/<name>/{img/%08d.jpg, groundtruth.txt, full_occlusion.txt, out_of_view.txt,
    nlp.txt}``; out-of-view frames have a 0,0,0,0 box, fully hidden ones full_occlusion 1."""
    folder = os.path.join(out, name.rsplit("-", 1)[0], name)
    gt, in_view, visible = _render_video(video, [os.path.join(folder, "img", "%08d.jpg" % (k + 1))
                                                 for k in range(video.n)])
    out_of_view = (in_view == 0).astype(int)
    full_occlusion = ((visible < 0.05) & (in_view > 0)).astype(int)
    _write_text(os.path.join(folder, "groundtruth.txt"), _rows(gt))
    _write_text(os.path.join(folder, "full_occlusion.txt"), ",".join(map(str, full_occlusion)) + "\n")
    _write_text(os.path.join(folder, "out_of_view.txt"), ",".join(map(str, out_of_view)) + "\n")
    _write_text(os.path.join(folder, "nlp.txt"), "a textured object moving among look-alikes\n")


def write_got10k(out, name, video, split):
    """GOT-10k: ``<out>/<split>/<name>/{%08d.jpg, groundtruth.txt, absence.label, cover.label (visible
    fraction x 8), cut_by_image.label, meta_info.ini}``; test: the first box only, no labels."""
    folder = os.path.join(out, split, name)
    gt, in_view, visible = _render_video(video, [os.path.join(folder, "%08d.jpg" % (k + 1)) for k in range(video.n)])
    _write_text(os.path.join(folder, "groundtruth.txt"), _rows(gt[:1] if split == "test" else gt, "%.4f"))
    if split != "test":
        _write_text(os.path.join(folder, "absence.label"), _rows((in_view == 0).astype(int), "%d"))
        _write_text(os.path.join(folder, "cover.label"), _rows(np.round(8 * np.clip(visible, 0, 1)), "%d"))
        _write_text(os.path.join(folder, "cut_by_image.label"), _rows(((in_view > 0) & (in_view < 1)).astype(int), "%d"))
    meta = {"url": "synthetic", "begin": "00:00:00", "end": "00:00:10", "anno_fps": "10Hz",
            "object_class": "textured object", "motion_class": "moving", "major_class": "object",
            "root_class": "object", "motion_adverb": "smoothly",
            "resolution": f"({video.width}, {video.height})"}
    _write_text(os.path.join(folder, "meta_info.ini"), "[METAINFO]\n" + "".join(f"{k}: {v}\n" for k, v in meta.items()))


def write_otb(out, name, video):
    """OTB: ``<out>/<name>/{img/%04d.jpg, groundtruth_rect.txt}`` (no absence: the target stays in view)."""
    folder = os.path.join(out, name)
    gt, _, _ = _render_video(video, [os.path.join(folder, "img", "%04d.jpg" % (k + 1)) for k in range(video.n)])
    _write_text(os.path.join(folder, "groundtruth_rect.txt"), _rows(gt, "%d"))


def write_coco(out, split, images, size, seed):
    """COCO: ``<out>/annotations/instances_<split>.json`` and ``<out>/images/<split>/%012d.jpg``; 1-4 textured
    objects per image, one annotation each, and a crowd annotation on every 5th image (to be ignored)."""
    width, height = size
    records, annotations = [], []
    for image_id in range(1, images + 1):
        rng = np.random.default_rng([seed, image_id])
        frame = random_texture(rng, height, width)
        for _ in range(int(rng.integers(1, 5))):
            w, h = rng.uniform(0.1, 0.4) * width, rng.uniform(0.1, 0.4) * height
            x, y = rng.uniform(0, width - w), rng.uniform(0, height - h)
            box = [int(round(x)), int(round(y)), max(2, int(round(w))), max(2, int(round(h)))]
            patch = cv2.resize(random_texture(rng, 48, 48), (box[2], box[3]))
            paste(frame, patch, ellipse_mask(box[3], box[2]) if rng.random() < 0.5 else np.ones(patch.shape[:2],
                                                                                                 np.uint8), *box[:2])
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                                "bbox": [float(v) for v in box], "area": float(box[2] * box[3])})
        if image_id % 5 == 0:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "iscrowd": 1,
                                "bbox": [0.0, 0.0, float(width), float(height)], "area": float(width * height)})
        file_name = "%012d.jpg" % image_id
        _write_jpeg(os.path.join(out, "images", split, file_name), frame)
        records.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
    data = {"images": records, "annotations": annotations,
            "categories": [{"id": 1, "name": "object", "supercategory": "object"}]}
    _write_text(os.path.join(out, "annotations", f"instances_{split}.json"), json.dumps(data))
    return [r["file_name"] for r in records]


def sequence_names(fmt, count, split):
    if fmt == "lasot":
        from mimtrack.evaluation.datasets._common import split_file

        names = split_file("lasot")[split]
        if count > len(names):
            raise UserError(f"--sequences {count}: LaSOT {split} has only {len(names)} sequence names")
        return names[:count]
    if fmt == "got10k":
        return [f"GOT-10k_{split.capitalize()}_{k:06d}" for k in range(1, count + 1)]
    return [f"Synthetic{k:03d}" for k in range(1, count + 1)]


def make_synthetic(fmt, out, sequences=10, frames=100, size=(320, 240), seed=0, split=None, photos=None,
                   overwrite=False, target_aspect=None, distractors=None, distractor_reach=None):
    """Write the dataset; returns the sequence (COCO: image) names written. ``photos``: a folder of photographs
    to cut targets, backgrounds, distractors and occluders from (:class:`mimtrack.tracker.data.photos.PhotoVideo`)
    instead of drawing procedural textures; ``target_aspect``: with ``photos``, the (low, high) range of the targets'
    width / height, ``distractors`` the (low, high) range of look-alike distractors per sequence and
    ``distractor_reach`` how many target sides from the target they stay (see
    :class:`~mimtrack.tracker.data.photos.PhotoVideo`; defaults 0.33-2.46, 0-3 and anywhere).

    The target (``out``; GOT-10k: ``out/<split>``, so the splits can share a root) must be empty or absent: new
    ground truth written over an old dataset's frames would not match them. ``overwrite`` deletes it first.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    split = split or DEFAULT_SPLITS[fmt]
    if fmt == "lasot" and split not in ("train", "test"):
        raise UserError(f"--split {split!r}: LaSOT splits are train and test")
    if fmt == "got10k" and split not in ("train", "val", "test"):
        raise UserError(f"--split {split!r}: GOT-10k folders are train, val and test")
    if sequences < 1 or frames < 1 or min(size) < 16:
        raise UserError(f"need --sequences >= 1, --frames >= 1 and a size of at least 16x16 "
                        f"(got {sequences}, {frames}, {size[0]}x{size[1]})")
    if target_aspect is not None:
        if photos is None:
            raise UserError("--target-aspect applies to photo sequences (--photos DIR) only")
        low, high = target_aspect
        if not (0 < low <= high) or not all(math.isfinite(v) for v in target_aspect):
            raise UserError(f"--target-aspect {low} {high}: expected 0 < LOW <= HIGH (width / height)")
    if distractors is not None:
        if photos is None:
            raise UserError("--distractors applies to photo sequences (--photos DIR) only")
        if not 0 <= distractors[0] <= distractors[1]:
            raise UserError(f"--distractors {distractors[0]} {distractors[1]}: expected 0 <= MIN <= MAX")
    if distractor_reach is not None:
        if photos is None:
            raise UserError("--distractor-reach applies to photo sequences (--photos DIR) only")
        if not (math.isfinite(distractor_reach) and distractor_reach > 0):
            raise UserError(f"--distractor-reach {distractor_reach}: expected a number > 0 (target sides)")
    out = os.fspath(out)
    bank = None
    if photos is not None:
        if fmt == "coco":
            raise UserError("--photos writes video layouts (lasot, got10k, otb); for still-image pairs from photos "
                            "train with --data photos=DIR")
        from .photos import PhotoBank

        bank = PhotoBank(photos)
    _clear_target(os.path.join(out, split) if fmt == "got10k" else out, out, overwrite)
    if fmt == "coco":
        return write_coco(out, split, sequences, size, seed)
    names = sequence_names(fmt, sequences, split)
    for index, name in enumerate(names):
        rng = np.random.default_rng([seed, index])
        absence = fmt not in ("otb", "vot")
        if bank is not None:
            from .photos import PhotoVideo

            video = PhotoVideo(rng, frames, size, bank, absence=absence, target_aspect=target_aspect,
                               distractors=distractors, distractor_reach=distractor_reach)
        else:
            video = SyntheticVideo(rng, frames, size, absence=absence)
        if fmt == "lasot":
            write_lasot(out, name, video)
        elif fmt == "got10k":
            write_got10k(out, name, video, split)
        elif fmt == "vot":
            from mimtrack.tracker.data import vot_layout

            vot_layout.write_synthetic(out, name, video)
        else:
            write_otb(out, name, video)
    if fmt == "vot":
        from mimtrack.tracker.data import vot_layout

        vot_layout.write_list(out, names)
    if fmt == "got10k":
        list_path = os.path.join(out, split, "list.txt")
        listed = set(open(list_path).read().split()) if os.path.isfile(list_path) else set()
        _write_text(list_path, "".join(f"{n}\n" for n in sorted(listed | set(names))))
    return names


# ---------------------------------------------------------------- command line
def _size(text):
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 320x240") from None
    return width, height


def _clear_target(target, out, overwrite):
    """UserError when ``target`` holds anything (unless ``overwrite``: then it is deleted)."""
    import shutil

    if os.path.exists(target) and not os.path.isdir(target):
        raise UserError(f"--out {out}: {target} is a file, not a folder")
    if not os.path.isdir(target) or not os.listdir(target):
        return
    if not overwrite:
        raise UserError(f"--out {out}: {target} is not empty (new ground truth over old frames would not match "
                        f"them); choose an empty folder or pass --overwrite to replace its content")
    resolved = os.path.realpath(target)
    if resolved in (os.path.realpath(os.sep), os.path.realpath(os.path.expanduser("~"))):
        raise UserError(f"--out {out} --overwrite: refusing to delete {resolved}")
    shutil.rmtree(target)


def add_arguments(parser):
    parser.add_argument("--format", required=True, choices=FORMATS, help="the official layout to write")
    parser.add_argument("--out", required=True, help="dataset root folder")
    parser.add_argument("--sequences", type=int, default=10, help="sequences (COCO: images); default 10")
    parser.add_argument("--frames", type=int, default=100, help="frames per sequence; default 100")
    parser.add_argument("--size", default="320x240", help="frame size WxH; default 320x240")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split", default=None,
                        help="lasot train|test, got10k train|val|test, coco e.g. train2017 (default: the first)")
    parser.add_argument("--photos", default=None, metavar="DIR",
                        help="cut targets and scenes from the photos in DIR (e.g. from 'mimtrack collect-photos') "
                             "instead of procedural textures")
    parser.add_argument("--target-aspect", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                        help="with --photos: range of the targets' width / height, drawn log-uniformly "
                             "(default 0.33 2.46; e.g. 0.2 2.0 for more people-shaped targets)")
    parser.add_argument("--distractors", type=int, nargs=2, default=None, metavar=("MIN", "MAX"),
                        help="with --photos: look-alike distractors per sequence (default 0 3)")
    parser.add_argument("--distractor-reach", type=float, default=None, metavar="R",
                        help="with --photos: keep the distractors within R target sides of the target "
                             "(default: anywhere in the frame)")
    parser.add_argument("--overwrite", action="store_true",
                        help="delete what --out (GOT-10k: its split folder) holds first; without it a non-empty "
                        "target is an error")


def run(args):
    names = make_synthetic(args.format, args.out, args.sequences, args.frames, _size(args.size), args.seed,
                           args.split, args.photos, overwrite=args.overwrite, target_aspect=args.target_aspect,
                           distractors=args.distractors, distractor_reach=args.distractor_reach)
    unit = "images" if args.format == "coco" else f"sequences x {args.frames} frames"
    print(f"{args.out}: {len(names)} {args.format} {unit}")
    return 0
