"""Masks as COCO polygons, and polygons from a dataset checked before pycocotools sees them.

pycocotools rasterises each polygon by the even-odd rule on pixel centres (a pixel is inside
when a vertical line through its centre crosses the outline an odd number of times above it),
and merges the polygons of one annotation by union. exact_polygons() uses that to write any
mask exactly, holes included: one polygon per part, its outer outline followed by each hole's
outline, joined to it by a bridge walked there and back (the two walks rasterise to the same
crossings, which cancel). Outlines run a quarter pixel inside the border, traced on the mask
upsampled 2x so that one-pixel parts and lines get an area. Every mask is checked by
rasterising it back; a mask the outlines would not reproduce is written as one rectangle per
run of pixels in a column, which always does.

Both loaders of the field read the result: pycocotools (annToMask merges the polygons) and
refer.py's getMask (decodes each polygon and sums them; parts never overlap, so the sum is
0 or 1).

checked_polygons() refuses coordinates off the image, too few points, and outlines so long
that the rasteriser would allocate without bound (see app/media/limits.py).
"""
from __future__ import annotations

import math

import cv2
import numpy as np
from pycocotools import mask as mask_utils

from app.media import limits


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Union of the polygons, as pycocotools rasterises them. Only for checked polygons."""
    if not polygons:
        return np.zeros((height, width), bool)
    return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))).astype(bool)


def _summed(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """uint8 [H, W]: how many of the polygons cover each pixel, as refer.py's getMask sums them.

    Each polygon is rasterised on its own bounding box (shifting by whole pixels changes
    nothing in pycocotools' rasteriser), so thousands of small parts cost their own size,
    not thousands of whole-image merges."""
    total = np.zeros((height, width), np.uint8)
    for poly in polygons:
        xy = np.asarray(poly, np.float64).reshape(-1, 2)
        x0, y0 = (max(int(np.floor(v)) - 1, 0) for v in xy.min(axis=0))
        x1 = min(int(np.ceil(xy[:, 0].max())) + 1, width)
        y1 = min(int(np.ceil(xy[:, 1].max())) + 1, height)
        shifted = (xy - (x0, y0)).ravel().tolist()
        part = mask_utils.decode(mask_utils.frPyObjects([shifted], y1 - y0, x1 - x0))[:, :, 0]
        total[y0:y1, x0:x1] += part
    return total


def _outlines(mask: np.ndarray, mode: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    h, w = mask.shape
    up = cv2.resize(np.asarray(mask, np.uint8), (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    contours, hierarchy = cv2.findContours(up, mode, cv2.CHAIN_APPROX_SIMPLE)
    points = [(c.reshape(-1, 2) + 0.5) / 2 for c in contours]
    return points, None if hierarchy is None else hierarchy[0]


def outer_polygons(mask: np.ndarray) -> list[list[float]]:
    """The outer outline of each part; holes are dropped (filled)."""
    points, _ = _outlines(mask, cv2.RETR_EXTERNAL)
    return [p.ravel().tolist() for p in points if len(p) >= 3]


def _parts_with_holes(mask: np.ndarray) -> list[list[float]]:
    points, hierarchy = _outlines(mask, cv2.RETR_CCOMP)  # two levels: parts, and their holes
    polygons = []
    for i, outer in enumerate(points):
        if hierarchy[i][3] != -1:
            continue  # a hole; it joins its part below
        walk = [outer, outer[:1]]
        hole = hierarchy[i][2]
        while hole != -1:
            walk += [points[hole], points[hole][:1], outer[:1]]
            hole = hierarchy[hole][0]
        xy = np.concatenate(walk[:-1])
        keep = np.any(xy != np.roll(xy, 1, axis=0), axis=1)  # no edge of length 0 (pycocotools divides by it)
        polygons.append(xy[keep].ravel().tolist())
    return polygons


def _column_runs(mask: np.ndarray) -> list[list[float]]:
    polygons = []
    for x in range(mask.shape[1]):
        column = np.concatenate([[0], mask[:, x].astype(np.int8), [0]])
        edges = np.flatnonzero(np.diff(column))
        for y0, y1 in zip(edges[::2], edges[1::2]):
            x0, x1, top, bottom = x + 0.25, x + 0.75, y0 + 0.25, y1 - 0.25
            polygons.append([x0, top, x1, top, x1, bottom, x0, bottom])
    return polygons


def exact_polygons(mask: np.ndarray) -> list[list[float]]:
    """Polygons that pycocotools and refer.py rasterise to exactly `mask` (none for an empty one)."""
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    if not mask.any():
        return []
    for build in (_parts_with_holes, _column_runs):
        polygons = build(mask)
        if np.array_equal(_summed(polygons, h, w), mask):  # 0/1 and equal: both loaders get the mask
            return polygons
    raise RuntimeError("no polygons reproduce this mask exactly; export it as RLE (coco)")


def checked_polygons(seg: list, height: int, width: int) -> tuple[list[list[float]] | None, str | None]:
    """A dataset's polygons -> (polygons, None), or (None, why) before pycocotools is called."""
    polygons, outline = [], 0.0
    low_x, low_y = -limits.POLYGON_MARGIN, -limits.POLYGON_MARGIN
    high_x, high_y = width + limits.POLYGON_MARGIN, height + limits.POLYGON_MARGIN
    for j, poly in enumerate(seg):
        if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                        for v in poly)):
            return None, f"polygon {j} must be a list of at least 3 x, y pairs of numbers"
        xy = np.asarray(poly, np.float64).reshape(-1, 2)
        off = (xy[:, 0] < low_x) | (xy[:, 0] > high_x) | (xy[:, 1] < low_y) | (xy[:, 1] > high_y)
        if off.any():
            x, y = xy[np.argmax(off)]
            return None, (f"polygon {j} has the point ({x:g}, {y:g}) outside the {width}x{height} image "
                          f"(x must be in {low_x:g}..{high_x:g}, y in {low_y:g}..{high_y:g})")
        steps = np.abs(np.diff(np.vstack([xy, xy[:1]]), axis=0)).max(axis=1)
        outline += float(steps.sum())
        polygons.append([float(v) for v in poly])
    problem = limits.POLYGON_OUTLINE.exceeded(math.ceil(outline / (2 * (width + height))))
    return (None, f"the polygons' outline is too long: {problem}") if problem else (polygons, None)
