"""ImageNet-layout folders (``DIR/train/<class>/*``, ``DIR/val/<class>/*``) and their timm transforms."""

import os

import torch
from PIL import Image

from mimtrack.errors import UserError
from mimtrack.images import is_image_name as is_image



def list_class_folders(root):
    """``root/<class>/<image>`` -> (sorted class names, [(path, class index)]); UserError on a bad layout."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise UserError(f"image folder not found: {root}")
    entries = sorted(os.listdir(root))
    classes = [e for e in entries if os.path.isdir(os.path.join(root, e)) and not e.startswith(".")]
    if not classes:
        loose = [e for e in entries if is_image(e)]
        what = f"{len(loose)} images but no class subfolders" if loose else "no class subfolders"
        raise UserError(f"{root}: {what} (expected {root}/<class>/<image>)")
    samples = []
    for index, name in enumerate(classes):
        folder = os.path.join(root, name)
        files = sorted(f for f in os.listdir(folder) if is_image(f))
        samples.extend((os.path.join(folder, f), index) for f in files)
    if not samples:
        raise UserError(f"{root}: no images in its {len(classes)} class folders")
    return classes, samples


def load_image_folder_splits(data_dir):
    """``DIR/train`` and ``DIR/val`` -> (classes, train samples, val samples); val classes must be train's."""
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise UserError(f"--data {data_dir}: folder not found")
    for split in ("train", "val"):
        if not os.path.isdir(os.path.join(data_dir, split)):
            raise UserError(f"--data {data_dir}: no '{split}' folder (expected {split}/<class>/<image>)")
    classes, train = list_class_folders(os.path.join(data_dir, "train"))
    val_classes, val = list_class_folders(os.path.join(data_dir, "val"))
    unknown = sorted(set(val_classes) - set(classes))
    if unknown:
        raise UserError(f"{os.path.join(data_dir, 'val')}: class folder {unknown[0]!r} is not in train/ "
                        f"({len(unknown)} unknown)")
    index = {name: i for i, name in enumerate(classes)}
    val = [(path, index[val_classes[label]]) for path, label in val]
    return classes, train, val


def read_rgb(path):
    """PIL RGB image; an unreadable file is a one-line UserError naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable image ({exc})") from None


class ImageListDataset(torch.utils.data.Dataset):
    """[(path, label)] -> (transformed image, label)."""

    def __init__(self, samples, transform):
        self.samples = list(samples)
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        path, label = self.samples[index]
        return self.transform(read_rgb(path)), label


def _posterize_zero_bits_is_black(posterize):
    def safe_posterize(img, bits_to_keep, **kwargs):
        if bits_to_keep <= 0:  # keep no bit: every channel value becomes 0
            return Image.new(img.mode, img.size)
        return posterize(img, bits_to_keep, **kwargs)

    safe_posterize.zero_bits_safe = True
    return safe_posterize


def patch_timm_posterize():
    """Make timm's RandAugment posterize ops accept 0 bits again.

    timm's ``PosterizeIncreasing`` maps magnitude 10 to "keep 0 bits" (``4 - int(level / 10 * 4)``, timm
    ``data/auto_augment.py``), which older Pillow turned into a black image; Pillow 13 raises "bits must be between
    or equal to 1 and 8". MAE-Lite's ``rand-m10-mstd0.5-inc1`` draws magnitude 10 for about half of its samples, so
    every fine-tuning run would stop in its first batches. Idempotent; changes nothing for 1-8 bits.
    """
    from timm.data import auto_augment

    for name in ("Posterize", "PosterizeIncreasing", "PosterizeOriginal"):
        op = auto_augment.NAME_TO_OP.get(name)
        if op is not None and not getattr(op, "zero_bits_safe", False):
            auto_augment.NAME_TO_OP[name] = _posterize_zero_bits_is_black(op)


def build_transforms(model_cfg, data_cfg, augment=True):
    """(train transform, eval transform) from timm's create_transform.

    ``augment=False`` (linear probing): RandomResizedCrop + flip only, as MAE's linprobe.
    """
    from timm.data import create_transform

    patch_timm_posterize()

    common = dict(input_size=model_cfg.img_size, interpolation=data_cfg.interpolation,
                  mean=tuple(data_cfg.mean), std=tuple(data_cfg.std))
    if augment:
        train = create_transform(is_training=True, auto_augment=data_cfg.auto_augment,
                                 color_jitter=data_cfg.color_jitter, re_prob=data_cfg.reprob,
                                 re_mode="pixel", re_count=1, **common)
    else:
        train = create_transform(is_training=True, auto_augment=None, color_jitter=None, re_prob=0.0, **common)
    val = create_transform(is_training=False, crop_pct=data_cfg.crop_pct, **common)
    return train, val
