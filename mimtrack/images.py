"""Images, the one place for what every package assumes about them: the file extensions we read, the ImageNet
normalisation the backbones were trained with, and decoding to RGB (OpenCV decodes BGR; the networks see RGB)."""

import os

import cv2
import numpy as np

from mimtrack.errors import UserError

# What OpenCV decodes and people store frames / photos / datasets as (checked lower-cased).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")

# ImageNet statistics (timm's IMAGENET_DEFAULT_MEAN / _STD): every backbone here was pre-trained with them.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def is_image_name(name):
    """True for a visible file name with an image extension."""
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def decode_rgb(data):
    """Encoded image bytes -> RGB uint8 (H, W, 3), or None when they are empty or not an image."""
    if not data:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_image_rgb(path):
    """Read an image file as an RGB uint8 array; a missing or undecodable file is a one-line UserError."""
    image = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UserError(f"{path}: cannot read the image (missing, unreadable or not an image format OpenCV decodes)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
