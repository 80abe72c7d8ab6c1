"""Mask corrections for the editor. Pure NumPy/OpenCV: bool [H,W] in, new bool [H,W] out.

Connectivity: foreground components are 8-connected (a diagonal step joins two pixels);
background is then 4-connected, the complementary choice, so an 8-connected ring with
diagonal steps still closes its hole.
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Set background regions that do not reach the image border (4-connected) to True.
    A gap that touches the border is not a hole."""
    m = _check(mask)
    # Pad by one background pixel so a single flood fill from the corner reaches every
    # border-connected background region.
    padded = np.pad(m.view(np.uint8), 1)
    cv2.floodFill(padded, None, (0, 0), 1, flags=4)
    return m | (padded[1:-1, 1:-1] == 0)


def remove_specks(mask: np.ndarray, min_area: int = 64) -> np.ndarray:
    """Drop 8-connected components with fewer than `min_area` pixels."""
    m = _check(mask)
    if not isinstance(min_area, (int, np.integer)) or min_area < 0:
        raise ValueError(f"min_area must be an integer >= 0 (pixels), got {min_area!r}")
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m.view(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False  # label 0 is the background
    return keep[labels]


# The largest brush the page offers; the server holds every caller to it (a radius is a
# padded canvas's margin: unbounded, it would allocate without limit).
MAX_BRUSH_RADIUS = 200


def paint(mask: np.ndarray, points: Iterable, radius: int, value: bool) -> np.ndarray:
    """Brush (value=True) or eraser (value=False) along the polyline `points` of (x, y).

    The stroke covers every pixel whose centre lies within `radius` of the polyline (round
    caps and joins), and along segments at most a sub-pixel rim more; a single point
    stamps an exact disc. Points are rounded to whole pixels and may lie outside
    the image (the stroke is clipped).
    """
    m = _check(mask)
    if not isinstance(radius, (int, np.integer)) or not 1 <= radius <= MAX_BRUSH_RADIUS:
        raise ValueError(f"radius must be a whole number of pixels in 1..{MAX_BRUSH_RADIUS}, got {radius!r}")
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"points must be a non-empty sequence of (x, y) pairs, got shape "
                         f"{list(pts.shape)}")
    pts = np.rint(pts).astype(int)
    # OpenCV rounds the point where it clips a line to the canvas, which shifts a stroke
    # coming from outside by up to a pixel; a padded canvas and 4 fractional bits for
    # lines keep that error off the visible pixels.
    pad = int(radius) + 1
    canvas = np.zeros((m.shape[0] + 2 * pad, m.shape[1] + 2 * pad), np.uint8)
    pts += pad
    # A disc at every vertex gives exact round caps and joins. Between them, a thick line of
    # width 2r covers every pixel within r of the segment, plus a rim < 1 px wide.
    for x, y in pts:
        cv2.circle(canvas, (int(x), int(y)), int(radius), 1, thickness=-1)
    for (x0, y0), (x1, y1) in zip(pts[:-1] * 16, pts[1:] * 16):
        cv2.line(canvas, (int(x0), int(y0)), (int(x1), int(y1)), 1, 2 * int(radius), shift=4)
    stroke = canvas[pad:-pad, pad:-pad].view(bool)
    return m | stroke if value else m & ~stroke


def clear(mask: np.ndarray) -> np.ndarray:
    """All False, same shape."""
    return np.zeros(_check(mask).shape, bool)


def _check(mask) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        got = list(mask.shape) if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"mask must be a 2-D bool array [H,W], got {got}")
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be bool, got {mask.dtype}; convert with `mask > 0`")
    return np.ascontiguousarray(mask)
