import numpy as np
import pytest

from mimtrack.evaluation import metrics


def boxes(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def test_iou_hand_cases_and_conventions():
    pred = boxes([0, 0, 10, 10], [0, 0, 10, 10], [30, 30, 5, 5], [0, 0, 20, 10])
    gt = boxes([5, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10])
    expected = [50 / 150, 1.0, 0.0, 0.5]
    np.testing.assert_allclose(metrics.box_iou(pred, gt), expected, rtol=0, atol=1e-15)
    # The +1 pixel convention cancels: same IoU.
    np.testing.assert_allclose(metrics.box_iou(pred, gt, pixel=True), expected, rtol=0, atol=1e-15)
    # got10k: eps in the union and clipping to [0, 1].
    odd = boxes([0, 0, -2, -3])  # negative size: area w*h = 6, as in the references
    ref = boxes([0, 0, 10, 10])
    assert metrics.box_iou(odd, ref)[0] == pytest.approx(0 / (6 + 100))
    eps = np.finfo(float).eps
    tiny = boxes([0, 0, 1e-9, 1e-9])
    assert metrics.box_iou(tiny, tiny, eps=eps, clip=True)[0] == pytest.approx(1e-18 / (1e-18 + eps))
    # negative sizes never intersect: IoU 0 whatever the (odd) union
    assert metrics.box_iou(boxes([0, 0, -2, 3]), ref)[0] == pytest.approx(0.0)
    assert metrics.box_iou(boxes([0, 0, -20, 30]), ref, eps=eps, clip=True)[0] == 0.0
    assert np.isnan(metrics.box_iou(boxes([np.nan] * 4), ref)[0])


def test_center_errors():
    pred = boxes([3, 4, 10, 20])
    gt = boxes([0, 0, 10, 20])
    error, norm_error = metrics.center_errors(pred, gt)
    assert error[0] == 5.0
    assert norm_error[0] == pytest.approx(np.sqrt(0.3**2 + 0.2**2))
    # got10k divides the offset by max(1, size): a 0.5 px wide GT counts as 1 px.
    small = boxes([0, 0, 0.5, 0.5])
    assert metrics.center_errors(boxes([3, 4, 0.5, 0.5]), small, style="got10k")[1][0] == 5.0
    assert metrics.center_errors(boxes([3, 4, 0.5, 0.5]), small)[1][0] == 10.0


def test_row_tests():
    rows = boxes([1, 1, 1, 1], [0, 1, 1, 1], [1, 1, 1, np.nan], [1, 1, -1, 1])
    np.testing.assert_array_equal(metrics.all_positive(rows), [True, False, False, False])
    np.testing.assert_array_equal(metrics.any_nan(rows), [False, False, True, False])


def brute_counts(values, thresholds, compare, ids, n):
    op = {">": np.greater, ">=": np.greater_equal, "<=": np.less_equal}[compare]
    out = np.zeros((n, len(thresholds)), dtype=np.int64)
    for v, i in zip(values, ids):
        out[i] += op(v, thresholds)
    return out


@pytest.mark.parametrize("compare", [">", ">=", "<="])
def test_threshold_counts_equal_brute_force(compare):
    rng = np.random.default_rng(0)
    thresholds = metrics.IOU_THRESHOLDS
    values = np.concatenate(
        [rng.random(300), thresholds, [-1.0, np.inf, -np.inf, np.nan, np.nan, 1.0, 0.0]]
    )  # values exactly on thresholds included
    ids = rng.integers(0, 4, len(values))
    got = metrics.threshold_counts(values, thresholds, compare, ids, 4)
    np.testing.assert_array_equal(got, brute_counts(values, thresholds, compare, ids, 4))


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize(
    "thresholds",
    [metrics.IOU_THRESHOLDS, metrics.PYTRACKING_NORM_THRESHOLDS, metrics.TRACKINGNET_PIXEL_THRESHOLDS,
     metrics.GOT10K_THRESHOLDS, np.array([0.0, 0.01, 0.5, 0.51, 3.0]), np.array([2.0])],
)
def test_threshold_slots_equal_searchsorted(thresholds, side):
    rng = np.random.default_rng(3)
    span = thresholds[-1] - thresholds[0] + 1
    values = np.concatenate([
        rng.uniform(thresholds[0] - 1, thresholds[-1] + 1, 2000) * rng.choice([1, 1e-9, 1e3], 2000),
        thresholds, np.nextafter(thresholds, np.inf), np.nextafter(thresholds, -np.inf),
        rng.integers(-2, 60, 100) * span / 50, [-1.0, np.inf, -np.inf, np.nan, 0.0],
    ])
    np.testing.assert_array_equal(
        metrics.threshold_slots(values, thresholds, side), np.searchsorted(thresholds, values, side=side)
    )


def test_perfect_tracker_auc_is_20_over_21():
    curve = metrics.success_curve(np.ones(7))
    assert metrics.curve_auc(curve) == pytest.approx(20 / 21, abs=1e-15)
    assert curve[-1] == 0.0
    np.testing.assert_array_equal(metrics.precision_curve([0.0, 60.0]), np.full(51, 0.5))


def test_threshold_grids_match_references():
    assert len(metrics.IOU_THRESHOLDS) == 21 and metrics.IOU_THRESHOLDS[10] == 0.5
    np.testing.assert_array_equal(metrics.PIXEL_THRESHOLDS, np.arange(51))
    assert metrics.NORM_THRESHOLDS[20] == pytest.approx(0.2)
    assert metrics.GOT10K_THRESHOLDS[75] == 0.75
    # pytracking builds arange(51) / 100, which differs from linspace in the last bit somewhere.
    assert (metrics.PYTRACKING_NORM_THRESHOLDS != metrics.NORM_THRESHOLDS).any()


def test_forward_fill_equals_sequential_repair():
    rng = np.random.default_rng(1)
    rows = rng.random((50, 4))
    replace = rng.random(50) < 0.4
    replace[0] = False
    expected = rows.copy()
    for i in range(1, len(rows)):
        if replace[i]:
            expected[i] = expected[i - 1]
    np.testing.assert_array_equal(metrics.forward_fill(rows, replace), expected)


def test_clip_to_image():
    clipped = metrics.clip_to_image(boxes([-5, 90, 20, 20], [95, 10, 20, 5]), 100, 100)
    np.testing.assert_array_equal(clipped, boxes([0, 90, 20, 10], [95, 10, 5, 5]))


def test_trackingnet_errors_hand_case():
    gt = boxes([0, 0, 10, 10])
    pred = boxes([0, 0, 20, 10])
    iou, distance, norm_distance = metrics.trackingnet_errors(pred, gt)
    # +1 convention: right edges 9 and 19, intersection 10 x 10; union 100 + 200 - 100.
    assert iou[0] == 0.5
    # centres x + (w + 1) / 2: 5.5 vs 10.5
    assert distance[0] == 5.0 and norm_distance[0] == 0.5
    # pandas max/min skip NaN: a NaN x still gives a finite IoU (the devkit's behaviour).
    iou, distance, _ = metrics.trackingnet_errors(boxes([np.nan, 0, 10, 10]), gt)
    assert iou[0] == 1.0 and np.isnan(distance[0])


def test_trapezoid_area():
    assert metrics.trapezoid_area(np.ones(21)) == pytest.approx(1.0)
    assert metrics.trapezoid_area(np.linspace(0, 1, 21)) == pytest.approx(0.5)
