"""Mask corrections on small hand-built masks."""
import numpy as np
import pytest

from app.masks import ops as mask_ops


def square_ring(size=9, hole=slice(3, 6)):
    m = np.zeros((size, size), bool)
    m[1:-1, 1:-1] = True
    m[hole, hole] = False
    return m


def test_fill_holes_fills_a_ring():
    ring = square_ring()
    filled = mask_ops.fill_holes(ring)
    expected = np.zeros((9, 9), bool)
    expected[1:-1, 1:-1] = True
    assert np.array_equal(filled, expected)
    assert ring[4, 4] == False  # noqa: E712 - input untouched


def test_fill_holes_closes_a_diagonal_ring():
    # An 8-connected diamond: its inside touches the outside only diagonally, and background
    # is 4-connected, so the inside is a hole.
    diamond = np.zeros((7, 7), bool)
    for y, x in [(1, 3), (2, 2), (2, 4), (3, 1), (3, 5), (4, 2), (4, 4), (5, 3)]:
        diamond[y, x] = True
    filled = mask_ops.fill_holes(diamond)
    assert filled[2:5, 3].all() and filled[3, 2:5].all()
    assert filled.sum() == diamond.sum() + 5


def test_gap_touching_the_border_is_not_a_hole():
    u_shape = np.zeros((6, 6), bool)
    u_shape[:, 1] = u_shape[:, 4] = True
    u_shape[5, 1:5] = True  # open at the top row
    assert np.array_equal(mask_ops.fill_holes(u_shape), u_shape)
    assert not mask_ops.fill_holes(np.zeros((4, 4), bool)).any()
    assert mask_ops.fill_holes(np.ones((4, 4), bool)).all()


def test_remove_specks_keeps_the_blob():
    m = np.zeros((30, 30), bool)
    m[2:12, 2:12] = True                 # 100 px blob
    m[20, 20:23] = True                  # 3 px speck
    m[25, 5] = m[26, 6] = m[27, 7] = True  # 3 px diagonal speck (one 8-connected component)
    cleaned = mask_ops.remove_specks(m, min_area=64)
    expected = np.zeros_like(m)
    expected[2:12, 2:12] = True
    assert np.array_equal(cleaned, expected)
    assert np.array_equal(mask_ops.remove_specks(m, min_area=3), m)  # area == min_area stays
    assert np.array_equal(mask_ops.remove_specks(m, min_area=4), expected)
    assert np.array_equal(mask_ops.remove_specks(m, min_area=0), m)


def distance_to_polyline(shape, points):
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    best = np.full(shape, np.inf)
    pts = np.asarray(points, float)
    for p, q in zip(pts, pts[1:] if len(pts) > 1 else pts):
        d = q - p
        length2 = d @ d
        along = ((xx - p[0]) * d[0] + (yy - p[1]) * d[1]) / max(length2, 1e-12)
        t = np.clip(along, 0, 1)
        best = np.minimum(best, np.hypot(xx - p[0] - t * d[0], yy - p[1] - t * d[1]))
    return best


@pytest.mark.parametrize("points, radius", [
    ([(10, 12)], 1),
    ([(10, 12)], 5),
    ([(5, 5), (40, 30)], 1),
    ([(5, 5), (40, 30)], 3),
    ([(5, 40), (20, 8), (45, 20), (45, 44)], 4),
    ([(0, 0), (47, 0)], 2),           # along the border
    ([(-10, 20), (60, 25)], 6),       # runs off both sides
    ([(-1000, 30), (1000, 10)], 3),   # clipped far outside
])
def test_brush_matches_distance_to_the_stroke(points, radius):
    empty = np.zeros((48, 48), bool)
    painted = mask_ops.paint(empty, points, radius, True)
    d = distance_to_polyline(empty.shape, points)
    assert painted[d <= radius].all()           # everything within the radius
    assert not painted[d >= radius + 1].any()   # and at most a sub-pixel rim beyond it
    if len(points) == 1:
        assert np.array_equal(painted, d <= radius)  # a single dab is an exact disc
    assert not empty.any()


def test_eraser_removes_what_the_brush_paints():
    full = np.ones((32, 32), bool)
    stroke = [(3, 3), (28, 20)]
    erased = mask_ops.paint(full, stroke, 3, False)
    brushed = mask_ops.paint(np.zeros_like(full), stroke, 3, True)
    assert np.array_equal(erased, ~brushed)
    base = np.zeros((32, 32), bool)
    base[:, :4] = True
    assert np.array_equal(mask_ops.paint(base, stroke, 3, True), base | brushed)
    assert full.all()


def test_paint_accepts_float_points_and_arrays():
    a = mask_ops.paint(np.zeros((20, 20), bool), np.array([[4.4, 5.6], [15.0, 5.0]]), 2, True)
    b = mask_ops.paint(np.zeros((20, 20), bool), [(4, 6), (15, 5)], 2, True)
    assert np.array_equal(a, b)


def test_clear():
    m = square_ring()
    assert not mask_ops.clear(m).any() and mask_ops.clear(m).shape == m.shape and m.any()


@pytest.mark.parametrize("call, match", [
    (lambda: mask_ops.fill_holes(np.zeros((4, 4), np.uint8)), "must be bool.*mask > 0"),
    (lambda: mask_ops.clear(np.zeros((2, 4, 4), bool)), r"2-D bool array \[H,W\]"),
    (lambda: mask_ops.remove_specks([[True]]), "2-D bool array"),
    (lambda: mask_ops.remove_specks(np.zeros((4, 4), bool), min_area=-1), "min_area"),
    (lambda: mask_ops.paint(np.zeros((4, 4), bool), [(1, 1)], 0, True), "radius"),
    (lambda: mask_ops.paint(np.zeros((4, 4), bool), [], 2, True), r"\(x, y\) pairs"),
    (lambda: mask_ops.paint(np.zeros((4, 4), bool), [(1, 2, 3)], 2, True), r"\(x, y\) pairs"),
])
def test_validation_messages(call, match):
    with pytest.raises(ValueError, match=match):
        call()
