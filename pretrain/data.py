"""Unlabelled images for pre-training: an ImageNet-layout folder or an LMDB, with MAE / MoCo-v3 augmentation.

Accepted layouts of ``--data DIR``: ``DIR/train/<class>/*.jpg`` (ImageNet), ``DIR/train/*.jpg``, or an LMDB
whose values are encoded images (keys: any names; keys starting with ``__`` hold metadata and are skipped): the
file ``mimtrack pack-lmdb`` writes (``--data X.lmdb``, every frame of it an image) or a ``data.mdb`` folder at
``DIR/train`` or ``DIR`` (opened by :func:`mimtrack.lmdbfile.open_lmdb`).

Randomness is per sample: image ``i`` of epoch ``e`` is augmented with a generator seeded from
(seed, e, i), so a run resumed mid-epoch sees exactly the crops an uninterrupted run would, whatever the
number of loader workers. Unreadable images are skipped (the batch is smaller) and reported by name.
"""

import os

import torch
from PIL import Image, ImageFilter
from torchvision import transforms
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from mimtrack.errors import UserError
from mimtrack.images import IMAGE_EXTENSIONS, IMAGENET_MEAN, IMAGENET_STD, decode_rgb
from mimtrack.lmdbfile import open_lmdb

LAYOUT_HINT = "expected DIR/train/<class>/*.jpg, DIR/train/*.jpg or an LMDB (X.lmdb from pack-lmdb, or data.mdb)"


def _is_lmdb(path):
    return os.path.isfile(os.path.join(path, "data.mdb"))


def _list_images(folder):
    """Sorted image paths directly in ``folder`` and one level of sub-folders below it."""
    paths = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
        for entry in entries:
            if entry.is_dir():
                paths += [os.path.join(entry.path, n) for n in sorted(os.listdir(entry.path))
                          if n.lower().endswith(IMAGE_EXTENSIONS)]
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(entry.path)
    except OSError as exc:
        raise UserError(f"{folder}: cannot list images ({exc.strerror or exc})") from None
    return paths


def decode_image(data):
    """Encoded bytes -> RGB uint8 tensor (3, H, W), or None when they are not a readable image."""
    image = decode_rgb(data)
    return None if image is None else torch.from_numpy(image).permute(2, 0, 1)


class ImageSource:
    """The list of images under ``--data DIR`` and byte access to each; picklable for loader workers."""

    def __init__(self, root):
        root = os.fspath(root)
        if os.path.isfile(root):   # an LMDB file (what pack-lmdb writes)
            self.lmdb_path = root
        elif not os.path.isdir(root):
            raise UserError(f"--data {root}: not a folder ({LAYOUT_HINT})")
        else:
            train = os.path.join(root, "train")
            self.lmdb_path = train if _is_lmdb(train) else root if _is_lmdb(root) else None
        if self.lmdb_path:
            self.names = self._lmdb_keys()
            where = self.lmdb_path
        else:
            where = os.path.join(root, "train") if os.path.isdir(os.path.join(root, "train")) else root
            self.names = _list_images(where)
        if not self.names:
            raise UserError(f"--data {where}: no images found ({LAYOUT_HINT})")
        self.where = where

    def _open(self):
        # One environment per file and process (mimtrack.lmdbfile), its size checked against the header: no bus
        # error when truncated. Not kept here: it is closed before a fork and reopened on the next call.
        return open_lmdb(self.lmdb_path)

    def _lmdb_keys(self):
        import lmdb

        try:
            with self._open().begin() as txn:
                keys = [k.decode("utf-8", "replace") for k in txn.cursor().iternext(keys=True, values=False)]
        except lmdb.Error as exc:  # corrupt or foreign file
            raise UserError(f"--data {self.lmdb_path}: not a readable LMDB ({exc})") from None
        except UserError as exc:
            raise UserError(f"--data {exc}") from None
        return [k for k in keys if not k.startswith("__")]

    def __len__(self):
        return len(self.names)

    def read(self, index):
        """The encoded bytes of image ``index`` (b"" when the file cannot be read)."""
        name = self.names[index]
        if self.lmdb_path:
            with self._open().begin() as txn:
                return txn.get(name.encode("utf-8")) or b""
        try:
            with open(name, "rb") as f:
                return f.read()
        except OSError:
            return b""

    def check_readable(self, probe=8):
        """UserError when none of the first ``probe`` images decodes (a folder of non-images)."""
        count = min(probe, len(self))
        if not any(decode_image(self.read(i)) is not None for i in range(count)):
            raise UserError(f"--data {self.where}: none of the first {count} images can be decoded "
                            f"(e.g. {self.names[0]})")


class RandomResizedCrop:
    """RandomResizedCrop with timm's "random" interpolation option (bilinear or bicubic per crop)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation="bicubic"):
        self.size, self.scale, self.ratio, self.interpolation = size, tuple(scale), tuple(ratio), interpolation

    def __call__(self, image):
        top, left, h, w = transforms.RandomResizedCrop.get_params(image, self.scale, self.ratio)
        mode = self.interpolation
        if mode == "random":
            mode = ("bilinear", "bicubic")[int(torch.randint(2, ()))]
        return TF.resized_crop(image, top, left, h, w, [self.size, self.size], InterpolationMode(mode),
                               antialias=True)


def _to_normalised(image):
    return TF.normalize(image.float().div_(255.0), IMAGENET_MEAN, IMAGENET_STD)


def mae_transform(img_size, scale, ratio, interpolation, hflip):
    """MAE-lite: RandomResizedCrop + horizontal flip, nothing else; ImageNet normalisation."""
    return transforms.Compose([RandomResizedCrop(img_size, scale, ratio, interpolation),
                               transforms.RandomHorizontalFlip(hflip), _to_normalised])


class PILGaussianBlur:
    """MoCo-v3's blur: PIL's Gaussian filter with a radius drawn uniformly from ``sigma``."""

    def __init__(self, sigma=(0.1, 2.0)):
        self.sigma = sigma

    def __call__(self, image):
        radius = self.sigma[0] + float(torch.rand(())) * (self.sigma[1] - self.sigma[0])
        return image.filter(ImageFilter.GaussianBlur(radius=radius))


def mocov3_transforms(img_size, scale, ratio, interpolation):
    """MoCo-v3's two asymmetric BYOL views: colour jitter, grayscale, blur (always / 10 %), solarise (20 %).
    They run on PIL images: colour jitter on tensors is several times slower."""
    def view(blur_p, solarize_p):
        return transforms.Compose([
            Image.fromarray,
            RandomResizedCrop(img_size, scale, ratio, interpolation),
            transforms.RandomApply([transforms.ColorJitter(0.4, 0.4, 0.2, 0.1)], p=0.8),
            transforms.RandomGrayscale(p=0.2),
            transforms.RandomApply([PILGaussianBlur((0.1, 2.0))], p=blur_p),
            transforms.RandomSolarize(128, p=solarize_p),
            transforms.RandomHorizontalFlip(),
            TF.pil_to_tensor,
            _to_normalised,
        ])
    return view(1.0, 0.0), view(0.1, 0.2)


def sample_seed(seed, epoch, index):
    """A distinct 63-bit generator seed per (run seed, epoch, image)."""
    return ((seed * 1_000_003 + epoch) * 2_147_483_647 + index) % (2 ** 63)


class PretrainDataset(torch.utils.data.Dataset):
    """Indexed by ``(index, seed)`` pairs from :class:`EpochSampler`; yields (image or views, name or None)."""

    def __init__(self, source, transform, two_views=None):
        self.source = source
        self.transform = transform
        self.two_views = two_views  # (transform1, transform2) for contrastive methods

    def __len__(self):
        return len(self.source)

    def __getitem__(self, key):
        index, seed = key
        image = decode_image(self.source.read(index))
        if image is None:
            return None, self.source.names[index]
        with torch.random.fork_rng(devices=[]):  # augment with this sample's own draw, then restore
            torch.manual_seed(seed)
            if self.two_views:
                array = image.permute(1, 2, 0).numpy()
                return (self.two_views[0](array), self.two_views[1](array)), None
            return self.transform(image), None


def collate_skipping(batch):
    """Stack the readable samples; -> (images or (views1, views2) or None, [names of skipped images])."""
    skipped = [name for sample, name in batch if sample is None]
    samples = [sample for sample, _ in batch if sample is not None]
    if not samples:
        return None, skipped
    if isinstance(samples[0], tuple):
        return tuple(torch.stack(v) for v in zip(*samples)), skipped
    return torch.stack(samples), skipped


class EpochSampler(torch.utils.data.Sampler):
    """This process's share of the epoch's permutation (seeded by seed + epoch), whole batches only
    (drop-last), starting after ``start_batch`` batches (resuming mid-epoch); yields (index, sample seed)."""

    def __init__(self, size, batch_size, seed, epoch, rank=0, world_size=1, start_batch=0):
        self.size, self.batch_size, self.seed, self.epoch = size, batch_size, seed, epoch
        self.rank, self.world_size, self.start_batch = rank, world_size, start_batch

    def batches_per_epoch(self):
        return self.size // (self.batch_size * self.world_size)

    def __len__(self):
        return (self.batches_per_epoch() - self.start_batch) * self.batch_size

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        mine = order[self.rank:self.batches_per_epoch() * self.batch_size * self.world_size:self.world_size]
        for index in mine[self.start_batch * self.batch_size:]:
            yield index, sample_seed(self.seed, self.epoch, index)


def build_dataset(cfg, data_dir):
    """The dataset for ``cfg`` (PretrainConfig): one MAE view, or MoCo-v3's two views."""
    source = ImageSource(data_dir)
    source.check_readable()
    d, size = cfg.data, cfg.model.img_size
    if cfg.method == "mocov3":
        return PretrainDataset(source, None, two_views=mocov3_transforms(size, d.scale, d.ratio, d.interpolation))
    return PretrainDataset(source, mae_transform(size, d.scale, d.ratio, d.interpolation, d.hflip))
