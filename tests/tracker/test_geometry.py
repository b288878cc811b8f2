import math

import numpy as np
import pytest
import torch

from mimtrack.errors import UserError
from mimtrack.tracker.geometry import box_to_crop, clip_box, crop_square, hann2d, map_box_back


def _coordinate_image(height, width):
    """Pixel (y, x) holds (y + 1, x + 1, 7): every pixel says where it came from; 0 means padding."""
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([yy + 1, xx + 1, np.full_like(yy, 7)], axis=-1).astype(np.uint8)


def test_crop_inside_image_is_an_exact_copy():
    image = _coordinate_image(40, 50)
    # box centre (20.5, 15.5), sqrt(4*4) * 2 = 8 -> crop 8 px, x1 = round(16.5) = 16 (banker's), y1 = round(11.5) = 12
    crop, resize_factor, mask = crop_square(image, [18.5, 13.5, 4, 4], 2.0, 8)
    assert resize_factor == 1.0
    assert crop.shape == (8, 8, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, image[12:20, 16:24])
    assert not mask.any()


def test_crop_padding_quirk_left_top_and_right_bottom():
    image = _coordinate_image(10, 12)
    # centre (10, 8), side ceil(sqrt(36) * 1) = 6 -> x1 = 7, x2 = 13 > W = 12; y1 = 5, y2 = 11 > H = 10.
    crop, _, mask = crop_square(image, [7, 5, 6, 6], 1.0, 6)
    # Right pad is x2 - W + 1 = 2: columns 7..10 are image, and image column 11 (the last one) is black too.
    np.testing.assert_array_equal(crop[0, :, 1], [8, 9, 10, 11, 0, 0])
    np.testing.assert_array_equal(crop[:, 0, 0], [6, 7, 8, 9, 0, 0])    # rows 5..8, then 2 black rows
    assert (crop[4:, :] == 0).all() and (crop[:, 4:] == 0).all()
    np.testing.assert_array_equal(mask, (np.arange(6)[:, None] >= 4) | (np.arange(6)[None, :] >= 4))

    # Left/top: centre (1, 2), side 4 -> x1 = round(-1) = -1, y1 = 0; one black column on the left only.
    crop, _, mask = crop_square(image, [0, 1, 2, 2], 2.0, 4)
    np.testing.assert_array_equal(crop[0, :, 1], [0, 1, 2, 3])
    np.testing.assert_array_equal(crop[:, 1, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(mask[0], [True, False, False, False])


def test_crop_side_resize_factor_and_interpolation():
    image = np.zeros((100, 100, 3), dtype=np.uint8)
    image[:, 50:] = 200
    # sqrt(10 * 40) * 4 = 80 -> 80 px crop resized to 40: factor 0.5, cv2 INTER_LINEAR averages the edge.
    crop, resize_factor, _ = crop_square(image, [45, 30, 10, 40], 4.0, 40)
    assert resize_factor == 0.5
    # x1 = round(50 - 40) = 10: image column 50 is crop column 40, i.e. resized column 20.
    assert (crop[:, :20] == 0).all() and (crop[:, 20:] == 200).all()
    # Non-integer sides round up: sqrt(3 * 3) * 1.5 = 4.5 -> 5.
    _, resize_factor, _ = crop_square(image, [10, 10, 3, 3], 1.5, 10)
    assert resize_factor == 10 / 5


def test_crop_far_outside_is_black_and_bad_boxes_raise():
    image = _coordinate_image(20, 20)
    crop, _, mask = crop_square(image, [-200, -200, 4, 4], 2.0, 16)
    assert crop.shape == (16, 16, 3) and not crop.any() and mask.all()
    for bad in ([0, 0, 0, 5], [0, 0, 5, -1], [0, 0, float("nan"), 5]):
        with pytest.raises(UserError):
            crop_square(image, bad, 2.0, 16)


def test_hann2d_size_4_by_hand():
    # k = 1..4, 0.5 * (1 - cos(2 pi k / 5)): the 1-D window is [a, b, b, a].
    a = 0.5 * (1 - math.cos(2 * math.pi / 5))       # 0.3454915
    b = 0.5 * (1 - math.cos(4 * math.pi / 5))       # 0.9045085
    expected = np.outer([a, b, b, a], [a, b, b, a])
    window = hann2d(4)
    assert window.shape == (4, 4) and window.dtype == torch.float32
    np.testing.assert_allclose(window.numpy(), expected, rtol=1e-6)
    assert window.min() > 0    # no zero border


def test_clip_box_margin():
    assert clip_box([-5, -5, 20, 30], 100, 200) == [0.0, 0.0, 15.0, 25.0]
    assert clip_box([195, 50, 20, 20], 100, 200) == [190.0, 50.0, 10.0, 20.0]    # x1 <= W - 10, w >= 10
    assert clip_box([-50, 98, 45, 2], 100, 200) == [0.0, 90.0, 10.0, 10.0]       # x2 >= 10, h >= 10
    assert clip_box([10, 20, 30, 40], 100, 200) == [10.0, 20.0, 30.0, 40.0]


def test_map_box_back_by_hand():
    # prev centre (100, 50); search 256 at resize factor 2 -> the crop covers 128 image px, corner at (36, -14).
    box = map_box_back([64, 64, 10, 20], [90, 40, 20, 20], 2.0, 256)
    assert box == [100 - 5, 50 - 10, 10, 20]


@pytest.mark.parametrize("box, prev, factor", [
    ([120.0, 80.0, 30.0, 50.0], [110.0, 70.0, 40.0, 40.0], 4.0),
    ([37.25, 12.5, 8.0, 3.5], [30.0, 10.0, 10.0, 6.0], 4.0),
])
def test_training_to_inference_round_trip_is_half_a_crop_pixel_off(box, prev, factor):
    """A box mapped into the crop (training convention) and back (inference) moves by -0.5 / resize_factor."""
    search_size = 256
    crop_sz = math.ceil(math.sqrt(prev[2] * prev[3]) * factor)
    resize_factor = search_size / crop_sz
    x, y, w, h = box_to_crop(box, prev, resize_factor, search_size)
    in_crop = [(x + w / 2) / resize_factor, (y + h / 2) / resize_factor, w / resize_factor, h / resize_factor]
    back = map_box_back(in_crop, prev, resize_factor, search_size)
    gap = 0.5 / resize_factor
    np.testing.assert_allclose(back, [box[0] - gap, box[1] - gap, box[2], box[3]], atol=1e-9)
    # With the inference convention (centre at size / 2) the round trip is exact.
    np.testing.assert_allclose(map_box_back([v + (0.5 / resize_factor if i < 2 else 0) for i, v in
                                             enumerate(in_crop)], prev, resize_factor, search_size), box, atol=1e-9)


def test_box_to_crop_by_hand():
    # Same box as the crop reference, crop 64 -> 128 (factor 2): centred at (127 / 2), size doubled.
    out = box_to_crop([10, 20, 16, 8], [10, 20, 16, 8], 2.0, 128)
    np.testing.assert_allclose(out, [63.5 - 16, 63.5 - 8, 32, 16])
