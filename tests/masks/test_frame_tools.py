"""Correction tools on one frame, on synthetic images whose true object is known."""
import time

import cv2
import numpy as np
import pytest

from app.masks.frame_tools import (
    box_to_mask,
    mask_iou,
    mask_to_polygons,
    polygon_to_mask,
    polygons_to_mask,
    refine_with_clicks,
    smooth_edges,
)

W, H = 160, 120
CENTRE, RADIUS = (80, 60), 28


def disc_scene(seed=0):
    """An orange, lightly textured disc on a blue-green textured background; (image, disc mask)."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 3)).astype(np.float32), (0, 0), 1.5)
    image = np.empty((H, W, 3), np.float32)
    image[:] = (40, 110, 150)
    image += noise / noise.std() * 25
    disc = np.zeros((H, W), np.uint8)
    cv2.circle(disc, CENTRE, RADIUS, 1, -1)
    disc = disc.view(bool)
    image[disc] = np.array((230, 140, 40), np.float32) + noise[disc] / noise.std() * 12
    return np.clip(image, 0, 255).astype(np.uint8), disc


@pytest.fixture(scope="module")
def scene():
    image, disc = disc_scene()
    image.flags.writeable = disc.flags.writeable = False  # as the frame cache hands frames out
    return image, disc


# -- box_to_mask ------------------------------------------------------------------------------
def test_box_around_the_disc_gives_the_disc(scene):
    image, disc = scene
    x, y = CENTRE
    box = (x - RADIUS - 8, y - RADIUS - 6, x + RADIUS + 9, y + RADIUS + 7)
    t0 = time.perf_counter()
    mask = box_to_mask(image, box)
    print(f"\nbox_to_mask IoU {mask_iou(mask, disc):.3f} in {(time.perf_counter() - t0) * 1000:.0f} ms")
    assert mask.dtype == bool and mask.shape == disc.shape
    assert mask_iou(mask, disc) >= 0.9
    assert not mask[:, :box[0]].any() and not mask[:, box[2]:].any()  # nothing outside the box


def test_box_corners_in_any_order(scene):
    image, disc = scene
    x, y = CENTRE
    a = box_to_mask(image, (x - 40, y - 36, x + 40, y + 36))
    b = box_to_mask(image, (x + 40, y + 36, x - 40, y - 36))
    assert np.array_equal(a, b) and mask_iou(a, disc) >= 0.9


@pytest.mark.parametrize("box, message", [
    ((10, 10, 10, 50), "draw a box at least 2x2 px"),
    ((10, 10, 11, 50), "draw a box at least 2x2 px"),
    ((-5, 10, 40, 50), "reaches outside the 160x120 image"),
    ((10, 10, 40, 121), "reaches outside the 160x120 image"),
    ((0, 0, 160, 120), "covers the whole image"),
    ((1, 2, 3), "box must be four finite numbers"),
    ((1, 2, 3, float("nan")), "box must be four finite numbers"),
    ("abcd", "box must be (x0, y0, x1, y1)"),
])
def test_bad_boxes_are_refused(scene, box, message):
    with pytest.raises(ValueError) as err:
        box_to_mask(scene[0], box)
    assert message in str(err.value)


def test_bad_images_are_refused():
    with pytest.raises(ValueError, match=r"image must be an RGB array \[H, W, 3\]"):
        box_to_mask(np.zeros((20, 20), np.uint8), (2, 2, 10, 10))
    with pytest.raises(ValueError, match="image must be uint8"):
        box_to_mask(np.zeros((20, 20, 3), np.float32), (2, 2, 10, 10))
    with pytest.raises(ValueError, match="iterations must be an integer >= 1"):
        box_to_mask(np.zeros((20, 20, 3), np.uint8), (2, 2, 10, 10), iterations=0)


# -- refine_with_clicks -----------------------------------------------------------------------
def test_a_negative_click_removes_a_wrongly_included_region(scene):
    image, disc = scene
    wrong = disc.copy()
    wrong[20:50, 100:140] = True  # a slab of background stuck to the disc's upper right
    assert mask_iou(wrong, disc) < 0.8
    refined = refine_with_clicks(image, wrong, negatives=[(128, 30)])
    print(f"\nnegative click: IoU {mask_iou(wrong, disc):.3f} -> {mask_iou(refined, disc):.3f}")
    assert not refined[30, 128]
    assert mask_iou(refined, disc) >= 0.9
    assert not refined[20:50, 115:140].any()


def test_a_positive_click_adds_a_missed_part(scene):
    image, disc = scene
    missed = disc.copy()
    missed[:, :CENTRE[0]] = False  # the left half of the disc was missed
    assert mask_iou(missed, disc) < 0.6
    refined = refine_with_clicks(image, missed, positives=[(CENTRE[0] - 15, CENTRE[1])])
    print(f"\npositive click: IoU {mask_iou(missed, disc):.3f} -> {mask_iou(refined, disc):.3f}")
    assert refined[CENTRE[1], CENTRE[0] - 15]
    assert mask_iou(refined, disc) >= 0.9


def test_clicks_are_honoured_even_against_the_colours(scene):
    image, disc = scene
    x, y = CENTRE
    # Positive on plain background, negative in the middle of the disc: GrabCut's colour models
    # disagree with both, but the clicked discs must end up as clicked.
    refined = refine_with_clicks(image, disc, positives=[(10, 10)], negatives=[(x, y)], radius=3)
    assert refined[10, 10] and refined[10, 13] and refined[13, 10]
    assert not refined[y, x] and not refined[y + 3, x]
    assert mask_iou(refined, disc) >= 0.9  # the rest of the object survives


def test_clicks_on_an_empty_mask(scene):
    # Clicks refine a mask; they do not find an object from nothing (draw a box for that).
    image, disc = scene
    empty = np.zeros_like(disc)
    grown = refine_with_clicks(image, empty, positives=[CENTRE], radius=4)
    assert grown[CENTRE[1], CENTRE[0] + 4] and grown.sum() >= 49
    assert not refine_with_clicks(image, empty, negatives=[CENTRE]).any()


def test_large_crops_are_segmented_downscaled(scene, monkeypatch):
    # At 1080p a big object's crop is shrunk to GRABCUT_SIDE px; the result comes back full size
    # and clicked discs are still honoured pixel for pixel.
    import app.masks.frame_tools as frame_tools
    monkeypatch.setattr(frame_tools, "GRABCUT_SIDE", 48)
    image, disc = scene
    x, y = CENTRE
    assert mask_iou(box_to_mask(image, (x - 40, y - 36, x + 40, y + 36)), disc) >= 0.9
    wrong = disc.copy()
    wrong[20:50, 100:140] = True
    refined = refine_with_clicks(image, wrong, positives=[(5, 5)], negatives=[(128, 30), (x, y)], radius=1)
    assert mask_iou(refined, disc) >= 0.9
    assert refined[5, 5] and not refined[30, 128] and not refined[y, x]
    assert refined[y, x + 8]  # the negative click does not take its surroundings with it


def test_no_clicks_leaves_the_mask_alone(scene):
    image, disc = scene
    assert np.array_equal(refine_with_clicks(image, disc), disc)


def test_the_input_mask_is_not_modified(scene):
    image, disc = scene
    before = disc.copy()
    refine_with_clicks(image, disc, positives=[(5, 5)], negatives=[CENTRE])
    assert np.array_equal(disc, before)


@pytest.mark.parametrize("kwargs, message", [
    (dict(positives=[(160, 10)]), "positive clicks: (160, 10) is outside the 160x120 image"),
    (dict(negatives=[(3, -1)]), "negative clicks: (3, -1) is outside"),
    (dict(positives=[(1, 2, 3)]), "positive clicks must be a sequence of (x, y) pairs"),
    (dict(positives=[(1, 2)], radius=0), "radius must be an integer >= 1"),
    (dict(mask=np.zeros((10, 10), bool)), "the mask is shape [10, 10] but the image is [120, 160]"),
    (dict(mask=np.zeros((120, 160), np.uint8)), "mask must be bool"),
])
def test_bad_clicks_are_refused(scene, kwargs, message):
    image, disc = scene
    args = dict(mask=disc)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        refine_with_clicks(image, **args)
    assert message in str(err.value)


# -- polygons ---------------------------------------------------------------------------------
def test_polygon_round_trip_is_exact():
    shape = (60, 80)
    pentagon = [(10, 30), (30, 5), (60, 12), (70, 45), (25, 55)]
    mask = polygon_to_mask(shape, pentagon)
    assert mask.dtype == bool and mask.shape == shape and mask.sum() > 1000
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 1 and all(isinstance(v, int) for p in polygons[0] for v in p)
    back = polygon_to_mask(shape, polygons[0])
    assert mask_iou(back, mask) > 0.98
    assert np.array_equal(back, mask)


def test_rectangle_polygon_is_four_corners():
    mask = np.zeros((20, 30), bool)
    mask[5:10, 3:20] = True
    (polygon,) = mask_to_polygons(mask)
    assert sorted(polygon) == [(3, 5), (3, 9), (19, 5), (19, 9)]
    assert np.array_equal(polygon_to_mask(mask.shape, polygon), mask)


def test_several_parts_holes_and_specks():
    mask = np.zeros((40, 40), bool)
    mask[2:12, 2:12] = True
    mask[20:38, 15:38] = True
    mask[25:30, 20:25] = False  # a hole: outlines do not carry it
    mask[0, 39] = True          # a single pixel: not a polygon
    polygons = mask_to_polygons(mask)
    assert len(polygons) == 2 and len(polygons[0]) >= 4
    assert polygon_to_mask(mask.shape, polygons[0]).sum() == 18 * 23  # largest first, hole filled
    union = polygons_to_mask(mask.shape, polygons)
    assert np.array_equal(union, (mask | _hole(mask.shape)) & ~_speck(mask.shape))
    assert mask_to_polygons(np.zeros((5, 5), bool)) == []


def _hole(shape):
    m = np.zeros(shape, bool)
    m[25:30, 20:25] = True
    return m


def _speck(shape):
    m = np.zeros(shape, bool)
    m[0, 39] = True
    return m


def test_simplified_outlines_stay_close():
    circle = np.zeros((100, 100), np.uint8)
    cv2.circle(circle, (50, 50), 40, 1, -1)
    circle = circle.view(bool)
    exact = mask_to_polygons(circle)[0]
    simple = mask_to_polygons(circle, tolerance=1.0)[0]
    assert len(simple) < len(exact) / 2
    assert mask_iou(polygon_to_mask(circle.shape, simple), circle) > 0.97


def test_polygon_clipped_to_the_image_and_validated():
    mask = polygon_to_mask((10, 10), [(-5, -5), (20, -5), (20, 3.6), (-5, 3.6)])
    assert mask[:5].all() and not mask[5:].any()
    with pytest.raises(ValueError, match="a polygon needs at least 3 points, got 2"):
        polygon_to_mask((10, 10), [(1, 1), (5, 5)])
    with pytest.raises(ValueError, match=r"points must be a sequence of \(x, y\) pairs"):
        polygon_to_mask((10, 10), [1, 2, 3])
    with pytest.raises(ValueError, match="shape must be"):
        polygon_to_mask((10,), [(1, 1), (5, 5), (1, 5)])


# -- smooth_edges -----------------------------------------------------------------------------
def test_smooth_edges_removes_spurs_and_keeps_a_10px_hole():
    mask = np.zeros((60, 60), bool)
    mask[10:50, 10:50] = True
    mask[25:35, 25:35] = False   # 10 px hole: kept
    mask[30, 50:58] = True       # 1 px spur sticking out: removed
    mask[5:10, 20] = True        # another spur, vertical
    mask[40, 15] = False         # 1 px pit: filled
    smooth = smooth_edges(mask, radius=2)
    assert not smooth[30, 51:58].any() and not smooth[5:9, 20].any()
    assert not smooth[26:34, 26:34].any()  # the hole is still there
    assert smooth[40, 15]
    assert smooth[15:45, 15:24].all()
    assert mask_iou(smooth, mask) > 0.95
    assert np.array_equal(smooth_edges(mask, radius=0), mask)


def test_smooth_edges_keeps_objects_on_the_border():
    mask = np.zeros((30, 30), bool)
    mask[:, :12] = True
    assert np.array_equal(smooth_edges(mask, radius=3), mask)
    assert smooth_edges(np.ones((8, 8), bool), radius=2).all()
    with pytest.raises(ValueError, match="radius must be an integer >= 0"):
        smooth_edges(mask, radius=1.5)


# -- mask_iou ---------------------------------------------------------------------------------
def test_mask_iou_hand_cases():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    assert mask_iou(a, b) == 1.0           # both empty
    a[0, :2] = True
    assert mask_iou(a, b) == 0.0
    b[0, 1:3] = True
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(a, a) == 1.0
    with pytest.raises(ValueError, match=r"masks differ in shape: \[4, 4\] and \[4, 5\]"):
        mask_iou(a, np.zeros((4, 5), bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        mask_iou(a, b.astype(np.uint8))
