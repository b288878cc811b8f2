"""Builders of tiny benchmark datasets in the official on-disk layouts (for tests).

Every builder takes a root folder and ``sequences``: a dict name -> spec, where
the spec is a dict with at least ``gt`` ((N, 4) x, y, w, h; NaN rows allowed
where the benchmark allows them) or simply the (N, 4) array itself. Only the
annotation files are written unless ``frames=True``, which writes small real
JPEG images so that a tracker can run on the dataset.
"""

import hashlib
import os

import numpy as np

IMAGE_SIZE = (64, 48)  # (W, H) of fabricated frames


def tree_digest(folder):
    """SHA-256 over the names and bytes of every file below ``folder``, in a fixed order: equal iff the trees are."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for name in sorted(filenames):
            h.update(name.encode())
            with open(os.path.join(dirpath, name), "rb") as f:
                h.update(f.read())
    return h.hexdigest()

# OTB100 frame ranges (1-based, inclusive); the GT rows cover only the range.
OTB_RANGES = {"David": (300, 770), "BlurCar1": (247, 988), "BlurCar3": (3, 359), "BlurCar4": (18, 397),
              "Football1": (1, 74), "Freeman3": (1, 460), "Freeman4": (1, 283), "Diving": (1, 215)}
# These folders hold only the in-range images, numbered from the range start.
_OTB_FOLDERS_FROM_START = {"BlurCar1", "BlurCar3", "BlurCar4"}


def random_boxes(rng, n, image_size=IMAGE_SIZE):
    """A plausible (n, 4) track: a box of random size drifting inside the image."""
    width, height = image_size
    size = rng.uniform(0.15, 0.4, size=2) * (width, height)
    centre = rng.uniform(size / 2, (width, height) - size / 2)
    steps = rng.normal(0.0, 0.02 * min(width, height), size=(n, 2))
    steps[0] = 0
    centres = np.clip(centre + np.cumsum(steps, axis=0), size / 2, (width, height) - size / 2)
    scale = np.exp(np.cumsum(rng.normal(0.0, 0.01, size=(n, 1)), axis=0))
    sizes = size * np.clip(scale, 0.7, 1.4)
    return np.round(np.hstack([centres - sizes / 2, sizes]), 2)


# ---------------------------------------------------------------- writing helpers
def _spec(value):
    spec = dict(value) if isinstance(value, dict) else {"gt": value}
    spec["gt"] = np.asarray(spec["gt"], dtype=np.float64).reshape(-1, 4)
    return spec


def _number(value):
    if np.isnan(value):
        return "NaN"
    return "%d" % value if float(value).is_integer() else repr(float(value))


def write_table(path, rows, delimiter=","):
    """Write a numeric table, one row per line (shortest exact text for each value)."""
    rows = np.asarray(rows, dtype=np.float64)
    rows = rows.reshape(len(rows), -1)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(delimiter.join(_number(v) for v in row) + "\n" for row in rows)


def _write_text(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def write_frames(paths, image_size=IMAGE_SIZE, seed=0):
    """Write small real JPEG frames: a gradient with noise, different in each frame."""
    import cv2

    width, height = image_size
    rng = np.random.default_rng(seed)
    gradient = np.add.outer(np.arange(height) * 2, np.arange(width) * 3)[..., None] + np.array([0, 60, 120])
    for k, path in enumerate(paths):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        image = (gradient + 5 * k + rng.integers(0, 30, size=(height, width, 3))) % 256
        if not cv2.imwrite(path, image.astype(np.uint8)):
            raise OSError(f"could not write {path}")


def _numbered(folder, pattern, start, stop):
    return [os.path.join(folder, pattern % k) for k in range(start, stop + 1)]


# ---------------------------------------------------------------- benchmarks
def make_lasot(root, sequences, *, frames=False, image_size=IMAGE_SIZE):
    """LaSOT: ``<root>/<cat>/<cat>-<n>/{groundtruth.txt, full_occlusion.txt, out_of_view.txt, nlp.txt, img/}``.

    Spec keys: gt, full_occlusion (N,) 0/1, out_of_view (N,) 0/1, nlp (str).
    """
    for name, value in sequences.items():
        spec = _spec(value)
        n = len(spec["gt"])
        folder = os.path.join(root, name.rsplit("-", 1)[0], name)
        write_table(os.path.join(folder, "groundtruth.txt"), spec["gt"])
        for key in ("full_occlusion", "out_of_view"):  # one comma-separated line each
            flags = np.asarray(spec.get(key, np.zeros(n)), dtype=np.int64)
            _write_text(os.path.join(folder, f"{key}.txt"), ",".join(map(str, flags)) + "\n")
        _write_text(os.path.join(folder, "nlp.txt"), spec.get("nlp", f"the target of {name}") + "\n")
        if frames:
            write_frames(_numbered(os.path.join(folder, "img"), "%08d.jpg", 1, n), image_size)


def make_lasot_ext(root, sequences, *, frames=False, image_size=IMAGE_SIZE):
    """LaSOT extension subset (e.g. 'atv-1'): the LaSOT per-sequence layout."""
    make_lasot(root, sequences, frames=frames, image_size=image_size)


def make_got10k(root, split, sequences, *, frames=False, image_size=IMAGE_SIZE):
    """GOT-10k ``<root>/<split>/{list.txt, <name>/...}``; names like 'GOT-10k_Val_000001'.

    Spec keys: gt, absence, cover (0..8), cut_by_image, resolution (W, H), object_class.
    For split 'test' only the first GT row is written and no label files (as released).
    list.txt holds the union of the names already listed and the new ones, sorted.
    """
    split_dir = os.path.join(root, split)
    for name, value in sequences.items():
        spec = _spec(value)
        n = len(spec["gt"])
        folder = os.path.join(split_dir, name)
        write_table(os.path.join(folder, "groundtruth.txt"), spec["gt"][:1] if split == "test" else spec["gt"])
        if split != "test":
            defaults = {"absence": np.zeros(n), "cover": np.full(n, 8), "cut_by_image": np.zeros(n)}
            for key, default in defaults.items():
                write_table(os.path.join(folder, f"{key}.label"), np.asarray(spec.get(key, default)).reshape(-1, 1))
        resolution = tuple(spec.get("resolution", image_size))
        meta = {"url": "https://www.youtube.com/watch?v=fabricated", "begin": "00:00:01", "end": "00:00:09",
                "anno_fps": "10Hz", "object_class": spec.get("object_class", "ball"),
                "motion_class": "rolling", "major_class": "object", "root_class": "object",
                "motion_adverb": "slowly", "resolution": f"({resolution[0]}, {resolution[1]})"}
        _write_text(os.path.join(folder, "meta_info.ini"),
                    "[METAINFO]\n" + "".join(f"{k}: {v}\n" for k, v in meta.items()))
        if frames:
            write_frames(_numbered(folder, "%08d.jpg", 1, n), image_size)
    list_path = os.path.join(split_dir, "list.txt")
    listed = set(open(list_path).read().split()) if os.path.isfile(list_path) else set()
    _write_text(list_path, "".join(f"{name}\n" for name in sorted(listed | set(sequences))))


def make_trackingnet(root, chunk, sequences, *, frames=False, image_size=IMAGE_SIZE):
    """TrackingNet ``<root>/<chunk>/anno/<vid>.txt`` and ``frames/<vid>/<k>.jpg`` (0-based).

    For chunk 'TEST' only the first GT row is written (as released).
    """
    for name, value in sequences.items():
        gt = _spec(value)["gt"]
        write_table(os.path.join(root, chunk, "anno", f"{name}.txt"), gt[:1] if chunk == "TEST" else gt)
        if frames:
            write_frames(_numbered(os.path.join(root, chunk, "frames", name), "%d.jpg", 0, len(gt) - 1), image_size)


def make_otb(root, sequences, *, delimiter=",", frames=False, image_size=IMAGE_SIZE):
    """OTB100 ``<root>/<Seq>/{groundtruth_rect.txt, img/%04d.jpg}``.

    'Jogging.1' / 'Jogging.2' write ``groundtruth_rect.1.txt`` / ``.2.txt``; 'Human4' writes an
    empty ``.1`` and its boxes to ``.2`` as released. Sequences with a frame range (David...)
    take GT rows covering the range only.
    """
    for name, value in sequences.items():
        gt = _spec(value)["gt"]
        folder_name, _, target = name.partition(".")
        folder = os.path.join(root, folder_name)
        if folder_name == "Human4":
            _write_text(os.path.join(folder, "groundtruth_rect.1.txt"), "")
            target = "2"
        anno = f"groundtruth_rect.{target}.txt" if target else "groundtruth_rect.txt"
        write_table(os.path.join(folder, anno), gt, delimiter)
        start, stop = OTB_RANGES.get(folder_name, (1, len(gt)))
        if stop - start + 1 != len(gt):
            raise ValueError(f"{name}: frame range {start}-{stop} needs {stop - start + 1} GT rows, got {len(gt)}")
        if frames:
            first = start if folder_name in _OTB_FOLDERS_FROM_START else 1
            pattern = "%05d.jpg" if folder_name == "Board" else "%04d.jpg"
            write_frames(_numbered(os.path.join(folder, "img"), pattern, first, stop), image_size)


def make_uav123(root, sequences, *, frames=False, subset="UAV123", image_size=IMAGE_SIZE):
    """UAV123/UAV20L ``<root>/anno/<subset>/<seq>.txt`` (NaN rows allowed).

    Frames go to ``data_seq/UAV123/<folder>/%06d.jpg`` over the sequence's range in the
    official table, so the GT must have one row per frame of that range.
    """
    from mimtrack.evaluation.datasets.uav import sequence_table

    table = sequence_table(subset)
    for name, value in sequences.items():
        gt = _spec(value)["gt"]
        write_table(os.path.join(root, "anno", subset, f"{name}.txt"), gt)
        if frames:
            folder, start, stop = table[name]
            write_frames(_numbered(os.path.join(root, "data_seq", "UAV123", folder), "%06d.jpg", start, stop),
                         image_size)


def make_nfs(root, sequences, *, layout="official", frames=False, image_size=IMAGE_SIZE):
    """NfS 30 fps, ``layout='official'`` or ``'pytracking'``.

    official: ``<root>/<seq>/30/<seq>.txt`` rows ``id xmin ymin xmax ymax frame lost occluded
    generated "label"`` with frame = 1 + 8k (240 fps frame ids), and ``<root>/<seq>/30/<seq>/%05d.jpg``.
    Spec key ``fps240=True`` writes the 240 fps annotation instead (8 rows per 30 fps frame,
    frame ids stepping by 1; the extra rows hold shifted boxes), as some released files do.
    pytracking: ``<root>/anno/nfs_<seq>.txt`` (tab x,y,w,h) and ``<root>/sequences/<seq>/%05d.jpg``.
    """
    for name, value in sequences.items():
        spec = _spec(value)
        gt = spec["gt"]
        if layout == "pytracking":
            write_table(os.path.join(root, "anno", f"nfs_{name}.txt"), gt, "\t")
            image_dir = os.path.join(root, "sequences", name)
        elif layout == "official":
            boxes, frame_ids = gt, 1 + 8 * np.arange(len(gt))
            if spec.get("fps240"):
                boxes = np.repeat(gt, 8, axis=0) + np.tile(np.arange(8), len(gt))[:, None]
                frame_ids = 1 + np.arange(len(boxes))
            xyxy = np.hstack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
            label = spec.get("label", "object")
            lines = [f"1 {' '.join(_number(v) for v in row)} {f} 0 0 0 \"{label}\"\n"
                     for row, f in zip(xyxy, frame_ids)]
            _write_text(os.path.join(root, name, "30", f"{name}.txt"), "".join(lines))
            image_dir = os.path.join(root, name, "30", name)
        else:
            raise ValueError(f"unknown NfS layout {layout!r}")
        if frames:
            write_frames(_numbered(image_dir, "%05d.jpg", 1, len(gt)), image_size)


def make_tnl2k(root, sequences, *, frames=False, image_size=IMAGE_SIZE):
    """TNL2K ``<root>/<seq>/{groundtruth.txt, language.txt, imgs/%05d.jpg}``. Spec keys: gt, language."""
    for name, value in sequences.items():
        spec = _spec(value)
        folder = os.path.join(root, name)
        write_table(os.path.join(folder, "groundtruth.txt"), spec["gt"])
        _write_text(os.path.join(folder, "language.txt"), spec.get("language", f"the target of {name}") + "\n")
        if frames:
            write_frames(_numbered(os.path.join(folder, "imgs"), "%05d.jpg", 1, len(spec["gt"])), image_size)
