"""Mask overlay rendering and RGBA layer conversion."""

import numpy as np
import pytest

from app.masks.overlay import render_overlay

RED, YELLOW = (255, 64, 64), (255, 255, 0)


@pytest.fixture
def frame():
    return np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)


def square(top=20, left=30, size=20, shape=(64, 80)):
    m = np.zeros(shape, bool)
    m[top:top + size, left:left + size] = True
    return m


def test_fill_contour_and_background(frame):
    mask = square()
    before = frame.copy()
    out = render_overlay(frame, mask, opacity=0.25, color=RED, contour_color=YELLOW, contour_px=2)
    assert np.array_equal(frame, before)  # input untouched
    assert out.dtype == np.uint8 and out.shape == frame.shape

    # Contour: the 2-px inner ring of the square, at full opacity.
    ring = mask.copy()
    ring[22:38, 32:48] = False
    assert (out[ring] == YELLOW).all()
    # Interior: round(frame * 0.75 + color * 0.25).
    interior = np.zeros_like(mask)
    interior[22:38, 32:48] = True
    exact = frame[interior] * 0.75 + np.array(RED) * 0.25
    assert np.abs(out[interior] - exact).max() <= 0.5 + 1e-6
    # Everything outside the mask is the frame.
    assert np.array_equal(out[~mask], frame[~mask])


def test_blend_arithmetic_on_known_values():
    frame = np.full((10, 10, 3), (100, 200, 40), np.uint8)
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    out = render_overlay(frame, mask, opacity=0.5, color=(0, 100, 240), contour_px=0)
    assert (out[mask] == (50, 150, 140)).all()
    out = render_overlay(frame, mask, opacity=1.0, color=(0, 100, 240), contour_px=0)
    assert (out[mask] == (0, 100, 240)).all() and (out[~mask] == (100, 200, 40)).all()


def test_outline_only_and_zero_opacity_keep_the_interior(frame):
    mask = square()
    interior = np.zeros_like(mask)
    interior[21:39, 31:49] = True  # contour_px=1 leaves this
    for kwargs in ({"outline_only": True}, {"opacity": 0.0}):
        out = render_overlay(frame, mask, contour_px=1, contour_color=YELLOW, **kwargs)
        assert np.array_equal(out[interior], frame[interior])
        assert (out[mask & ~interior] == YELLOW).all()
        assert np.array_equal(out[~mask], frame[~mask])


def test_holes_get_contours_and_stay_clear(frame):
    mask = square()
    mask[27:33, 37:43] = False  # 6x6 hole in the middle
    out = render_overlay(frame, mask, opacity=0.5, contour_px=1, contour_color=YELLOW)
    around_hole = np.zeros_like(mask)
    around_hole[26:34, 36:44] = True
    around_hole &= mask
    assert around_hole.sum() == 64 - 36
    assert (out[around_hole] == YELLOW).all()
    assert np.array_equal(out[27:33, 37:43], frame[27:33, 37:43])


def test_frame_edge_is_not_a_contour(frame):
    mask = np.zeros((64, 80), bool)
    mask[:10, :10] = True  # touches the top-left corner
    out = render_overlay(frame, mask, opacity=0.0, contour_px=1, contour_color=YELLOW)
    assert (out[9, :10] == YELLOW).all() and (out[:10, 9] == YELLOW).all()
    assert np.array_equal(out[:9, :9], frame[:9, :9])


def test_no_mask_or_empty_mask_returns_a_copy(frame):
    for mask in (None, np.zeros((64, 80), bool)):
        out = render_overlay(frame, mask)
        assert out is not frame and np.array_equal(out, frame)


@pytest.mark.parametrize("kwargs, match", [
    ({"frame": np.zeros((8, 8, 3), np.float32)}, "uint8"),
    ({"frame": np.zeros((8, 8), np.uint8)}, r"\[H,W,3\]"),
    ({"mask": np.zeros((8, 8), np.uint8)}, "must be bool.*mask > 0"),
    ({"mask": np.zeros((8, 9), bool)}, "does not match"),
    ({"opacity": 1.5}, "between 0 and 1"),
    ({"contour_px": -1}, "contour_px"),
    ({"color": (300, 0, 0)}, "three 0-255 values"),
])
def test_validation(kwargs, match):
    args = {"frame": np.zeros((8, 8, 3), np.uint8), "mask": np.zeros((8, 8), bool), **kwargs}
    with pytest.raises(ValueError, match=match):
        render_overlay(args.pop("frame"), args.pop("mask"), **args)
