"""J&F (DAVIS) and cIoU/gIoU on cases small enough to compute by hand."""
import numpy as np
import pytest

from engine import metrics


def square(shape=(60, 80), top=20, left=30, side=10):
    m = np.zeros(shape, bool)
    m[top:top + side, left:left + side] = True
    return m


def test_identical_masks_score_one():
    m = square()
    assert metrics.jaccard(m, m) == 1.0 and metrics.f_measure(m, m) == 1.0
    r = metrics.jf_video(np.stack([m, m]), np.stack([m, m]))
    assert (r["J"], r["F"], r["J&F"], r["frames"]) == (1.0, 1.0, 1.0, 2)


def test_disjoint_masks_score_zero():
    a, b = square(left=5), square(left=50)
    assert metrics.jaccard(a, b) == 0.0
    assert metrics.f_measure(a, b) == 0.0  # 45 px apart, tolerance 1 px


def test_both_empty_is_perfect_and_one_empty_is_zero():
    empty = np.zeros((60, 80), bool)
    assert metrics.jaccard(empty, empty) == 1.0 and metrics.f_measure(empty, empty) == 1.0
    assert metrics.jaccard(square(), empty) == 0.0 and metrics.f_measure(square(), empty) == 0.0
    assert metrics.f_measure(empty, square()) == 0.0
    # A full mask has no contour (the image edge is not one), so F is 0 against an object.
    assert metrics.f_measure(np.ones((60, 80), bool), square()) == 0.0


def test_boundary_map_of_a_square_is_a_closed_one_pixel_ring():
    # Pixels where the mask changes to the right, below or diagonally below-right: for a
    # side-10 square at rows/cols 20..29/30..39 that is the ring of the 11x11 square from
    # (19, 29) to (29, 39): 4 * 10 = 40 pixels.
    b = metrics.boundary_map(square())
    ring = np.zeros((60, 80), bool)
    ring[19:30, 29:40] = True
    ring[20:29, 30:39] = False
    assert np.array_equal(b, ring) and b.sum() == 40
    # A mask touching the image edge has no contour along it.
    full_left = np.zeros((10, 10), bool)
    full_left[:, :5] = True
    assert np.array_equal(np.argwhere(metrics.boundary_map(full_left))[:, 1], [4] * 10)


def test_tolerance_follows_the_diagonal():
    assert metrics.boundary_tolerance((60, 80)) == 1      # ceil(0.008 * 100) = ceil(0.8)
    assert metrics.boundary_tolerance((480, 854)) == 8    # ceil(0.008 * 979.6) = ceil(7.84)
    assert metrics.boundary_tolerance((300, 400)) == 4    # ceil(0.008 * 500) = 4 exactly
    assert metrics.boundary_tolerance((60, 80), bound_th=3) == 3  # >= 1: pixels


def test_square_shifted_by_one_pixel():
    # 60x80 image: diagonal 100, tolerance ceil(0.8) = 1 px.
    gt = square(side=10)
    pred = square(side=10, left=31)
    # J: intersection 10 x 9 = 90, union 10 x 11 = 110.
    assert metrics.jaccard(pred, gt) == pytest.approx(90 / 110)
    # Every boundary pixel has a boundary pixel of the other mask 1 px to its side: F = 1.
    assert metrics.f_measure(pred, gt) == 1.0
    r = metrics.jf_video(pred[None], gt[None])
    assert r["J&F"] == pytest.approx((90 / 110 + 1) / 2)


def test_square_shifted_beyond_the_tolerance():
    # Shift 2 px with tolerance 1 (disk of radius 1 = the pixel and its 4 neighbours). The
    # boundaries are 40-pixel rings of 11x11 squares, gt's on columns 29..39, the prediction's
    # on 31..41. Unmatched prediction pixels: the far end of its top and bottom rows (column 41,
    # 2 px from column 39), the 9 inner pixels of its right side (column 41), and 7 of the 9 of
    # its left side (column 31: the two ends touch gt's top and bottom rows): 18 of 40.
    # Precision = 22/40 and, mirrored, recall = 22/40, so F = 0.55. J: 10 x 8 / (10 x 12).
    gt, pred = square(side=10), square(side=10, left=32)
    assert metrics.f_measure(pred, gt) == pytest.approx(22 / 40)
    assert metrics.jaccard(pred, gt) == pytest.approx(80 / 120)
    # With a 2-px tolerance (bound_th given in pixels) the same shift is forgiven.
    assert metrics.f_measure(pred, gt, bound_th=2) == 1.0


def test_tolerance_on_a_larger_image():
    # 300x400: diagonal 500, tolerance 4 px; a 4-px shift is within it, a 6-px one is not.
    gt = square((300, 400), 100, 100, 50)
    assert metrics.f_measure(square((300, 400), 100, 104, 50), gt) == 1.0
    assert metrics.f_measure(square((300, 400), 100, 106, 50), gt) < 1.0


def test_jf_is_the_mean_over_frames():
    gt = np.stack([square(), square(), np.zeros((60, 80), bool)])
    pred = np.stack([square(), np.zeros((60, 80), bool), np.zeros((60, 80), bool)])
    r = metrics.jf_video(pred, gt)
    assert r["J_frames"] == [1.0, 0.0, 1.0] and r["F_frames"] == [1.0, 0.0, 1.0]
    assert r["J"] == pytest.approx(2 / 3) and r["J&F"] == pytest.approx(2 / 3)


def test_jf_per_expression_is_keyed_by_id_even_for_equal_texts():
    texts = {7: "the square", 8: "the square"}  # the same words, two expressions
    gt = square()[None]
    preds = {7: gt.copy(), 8: np.zeros_like(gt)}
    r = metrics.jf_per_expression(preds, {7: gt, 8: gt})
    assert set(r["per_expression"]) == set(texts)
    assert r["per_expression"][7]["J&F"] == 1.0 and r["per_expression"][8]["J&F"] == 0.0
    assert r["overall"] == {"J": 0.5, "F": 0.5, "J&F": 0.5, "count": 2}
    with pytest.raises(ValueError, match="same expression ids"):
        metrics.jf_per_expression({7: gt}, {7: gt, 8: gt})
    with pytest.raises(ValueError, match="same shape"):
        metrics.jf_per_expression({7: gt[:, :10]}, {7: gt})


def test_ciou_and_giou_differ_when_sizes_differ():
    # A big object predicted perfectly (I = U = 400) and a 2-px one shifted by a pixel
    # (I = 1, U = 3): cIoU = 401 / 403, dominated by the big one; gIoU = (1 + 1/3) / 2.
    big = np.zeros((40, 40), bool)
    big[:20, :20] = True
    small_gt = np.zeros((40, 40), bool)
    small_gt[30, 30:32] = True
    small_pred = np.zeros((40, 40), bool)
    small_pred[30, 31:33] = True
    r = metrics.iou_per_expression({"a": big, "b": small_pred}, {"a": big, "b": small_gt})
    assert r["per_expression"]["b"] == {"I": 1, "U": 3, "IoU": pytest.approx(1 / 3)}
    assert r["overall"]["cIoU"] == pytest.approx(401 / 403)
    assert r["overall"]["gIoU"] == pytest.approx((1 + 1 / 3) / 2)
    assert metrics.ciou([big, small_pred], [big, small_gt]) == pytest.approx(401 / 403)
    assert metrics.giou([big, small_pred], [big, small_gt]) == pytest.approx(2 / 3)


def test_ignore_pixels_count_in_neither_intersection_nor_union():
    gt = np.zeros((10, 10), bool)
    gt[2:6, 2:6] = True                 # 16 px
    pred = np.zeros((10, 10), bool)
    pred[2:6, 4:8] = True               # 16 px, 8 shared: I = 8, U = 24
    assert metrics.intersection_union(pred, gt) == (8, 24)
    ignore = np.zeros((10, 10), bool)
    ignore[2:4, :] = True               # rows 2-3: removes 4 shared, 8 union pixels
    assert metrics.intersection_union(pred, gt, ignore) == (4, 12)
    r = metrics.iou_per_expression({1: pred, 2: gt}, {1: gt, 2: gt}, ignores={1: ignore})
    assert r["per_expression"][1]["IoU"] == pytest.approx(4 / 12)
    assert r["per_expression"][2] == {"I": 16, "U": 16, "IoU": 1.0}
    assert r["overall"]["cIoU"] == pytest.approx((4 + 16) / (12 + 16))
    # Ignoring everything a sample has leaves an empty union: IoU 1 for gIoU.
    everything = np.ones((10, 10), bool)
    r = metrics.iou_per_expression({1: pred}, {1: gt}, ignores={1: everything})
    assert r["per_expression"][1] == {"I": 0, "U": 0, "IoU": 1.0}
    with pytest.raises(ValueError, match="ignore mask"):
        metrics.intersection_union(pred, gt, ignore[:5])


def test_empty_sets():
    assert metrics.jf_per_expression({}, {})["overall"]["count"] == 0
    assert metrics.iou_per_expression({}, {})["overall"]["cIoU"] is None
