"""Correction tools on one frame: box -> mask, click refinement, polygons, edge smoothing, IoU.

Pure NumPy/OpenCV. Images are RGB uint8 [H, W, 3] (as the frame cache returns them); masks are
bool [H, W], in and out; inputs are never modified. Points and boxes are pixel coordinates
(x, y), x to the right, y down.

GrabCut works on a crop around the box or the mask (plus a margin), never on the whole frame:
the colour models then describe the object's surroundings, and a 1080p frame costs what the
crop costs.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from app.masks.ops import _check as _check_mask

MARGIN = 0.5  # crop margin around the box / mask, as a share of its larger side (at least 16 px)
GRABCUT_SEED = 0
GRABCUT_SIDE = 480  # px: larger crops are segmented downscaled (edges within ~1 px of that scale)


def box_to_mask(image: np.ndarray, box: Sequence[float], iterations: int = 5) -> np.ndarray:
    """GrabCut initialised with the rectangle `box` = (x0, y0, x1, y1): pixels x0 <= x < x1,
    y0 <= y < y1 may be the object, everything outside is background.

    Corners may come in either order (a box dragged up-left); the box must lie inside the image,
    be at least 2 px wide and tall, and leave some background outside it.
    """
    image = _check_image(image)
    _check_iterations(iterations)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = _check_box(box, width, height)
    if (x0, y0, x1, y1) == (0, 0, width, height):
        raise ValueError("the box covers the whole image, so GrabCut has no background to learn "
                         "from; draw the box tighter around the object")
    labels = np.full((height, width), cv2.GC_BGD, np.uint8)
    labels[y0:y1, x0:x1] = cv2.GC_PR_FGD
    return _grabcut(image, labels, (x0, y0, x1, y1), iterations)


def refine_with_clicks(image: np.ndarray, mask: np.ndarray, positives: Sequence[Sequence[float]] = (),
                       negatives: Sequence[Sequence[float]] = (), radius: int | None = None,
                       iterations: int = 5) -> np.ndarray:
    """Refine `mask` with positive clicks (add the region around them) and negative clicks
    (remove the region around them), as a SAM user expects: positives never remove mask pixels
    and negatives never add any.

    Positives first: GrabCut (mask mode: the mask probable object, the rest probable
    background, a disc of `radius` px around each click definitely object) proposes; only the
    new pixels connected to a clicked disc and within reach of it are added (see _reach).
    Then negatives, the same way round: only mask pixels GrabCut calls background, connected to
    a negative disc, are removed. Clicked discs are honoured whatever GrabCut decides (a disc
    with both kinds of click: negatives win). Default radius: 1% of the image's shorter side,
    at least 2 px. Clicks must lie inside the image.
    """
    image = _check_image(image)
    mask = _check_mask(mask)
    height, width = image.shape[:2]
    if mask.shape != (height, width):
        raise ValueError(f"the mask is shape {list(mask.shape)} but the image is {[height, width]}; "
                         "send the mask of this frame")
    _check_iterations(iterations)
    if radius is None:
        radius = max(2, min(height, width) // 100)
    if not isinstance(radius, (int, np.integer)) or isinstance(radius, bool) or radius < 1:
        raise ValueError(f"radius must be an integer >= 1 (pixels), got {radius!r}")
    positives = _check_points(positives, width, height, "positive clicks")
    negatives = _check_points(negatives, width, height, "negative clicks")
    pos_discs = _discs(positives, (height, width), radius)
    neg_discs = _discs(negatives, (height, width), radius)

    result = mask.copy()
    if positives:  # grow only: the new region GrabCut finds around the clicks
        result |= _region_at(image, result, pos_discs, radius, iterations, grow=True)
    if negatives:  # shrink only: the part of the mask around the clicks that GrabCut calls background
        result &= ~_region_at(image, result, neg_discs, radius, iterations, grow=False)
    result |= pos_discs
    result &= ~neg_discs
    return result


def _region_at(image, mask, discs, radius, iterations, grow) -> np.ndarray:
    """The pixels clicks of one kind add (grow) or remove: GrabCut's verdict on a crop around
    the mask and the clicks, kept only where it changes the mask, near a clicked disc (see
    _reach) and connected to one. So a + click never removes mask pixels and a - click never
    adds any, as a SAM user expects."""
    labels = np.where(mask, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    labels[discs] = cv2.GC_FGD if grow else cv2.GC_BGD
    ys, xs = np.nonzero(mask | discs)
    fg = _grabcut(image, labels, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1), iterations)
    changed = (fg & ~mask) if grow else (mask & ~fg)
    changed &= _near(discs, _reach(mask, radius))
    if not changed.any():
        return changed
    _, parts = cv2.connectedComponents(changed.view(np.uint8), connectivity=8)
    near = cv2.dilate(discs.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    touching = np.unique(parts[near & changed])
    return np.isin(parts, touching[touching > 0])


def polygon_to_mask(shape: Sequence[int], points: Sequence[Sequence[float]]) -> np.ndarray:
    """Fill the polygon `points` [(x, y), ...] (at least 3 vertices, rounded to whole pixels)
    on an all-False mask of `shape` (H, W). Edges and vertices are inside; the polygon may
    extend past the image (it is clipped)."""
    height, width = _check_shape(shape)
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be a sequence of (x, y) pairs, got shape {list(pts.shape)}")
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite numbers")
    canvas = np.zeros((height, width), np.uint8)
    cv2.fillPoly(canvas, [np.rint(pts).astype(np.int32)], 1)
    return canvas.view(bool)


def polygons_to_mask(shape: Sequence[int], polygons: Sequence[Sequence[Sequence[float]]]) -> np.ndarray:
    """Union of polygon_to_mask over `polygons` (what mask_to_polygons returns)."""
    result = np.zeros(_check_shape(shape), bool)
    for points in polygons:
        result |= polygon_to_mask(shape, points)
    return result


def mask_to_polygons(mask: np.ndarray, tolerance: float = 0.0) -> list[list[tuple[int, int]]]:
    """Outer outlines of the mask's 8-connected parts, for editing: one list of (x, y) vertices
    per part (centres of its boundary pixels), largest part first.

    Holes are not represented (polygon_to_mask of the outlines fills them) and parts thinner
    than 3 vertices (single pixels, 1-px lines) are left out: keep the mask (RLE) as the truth
    and use polygons as an editing view. tolerance > 0 simplifies outlines (Douglas-Peucker,
    in px).
    """
    m = _check_mask(mask)
    if not isinstance(tolerance, (int, float, np.integer, np.floating)) or tolerance < 0:
        raise ValueError(f"tolerance must be a number >= 0 (pixels), got {tolerance!r}")
    contours, _ = cv2.findContours(m.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    contours = sorted(contours, key=lambda c: -cv2.contourArea(c))
    polygons = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, float(tolerance), closed=True)
        if len(contour) >= 3:
            polygons.append([(int(x), int(y)) for x, y in contour[:, 0]])
    return polygons


def smooth_edges(mask: np.ndarray, radius: int = 2) -> np.ndarray:
    """Morphological opening then closing with a disc of `radius` px: removes spurs, bumps and
    parts thinner than about 2*radius+1 px, fills notches and holes narrower than that, and
    keeps holes wider than that. Objects touching the image border stay on it."""
    m = _check_mask(mask)
    if not isinstance(radius, (int, np.integer)) or isinstance(radius, bool) or radius < 0:
        raise ValueError(f"radius must be an integer >= 0 (pixels), got {radius!r}")
    if radius == 0:
        return m.copy()
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    # Pad with replicated edges so the border acts as a continuation of the mask, not as
    # background (closing) or foreground (opening).
    padded = cv2.copyMakeBorder(m.view(np.uint8), radius, radius, radius, radius, cv2.BORDER_REPLICATE)
    out = cv2.morphologyEx(padded, cv2.MORPH_OPEN, kernel, borderType=cv2.BORDER_REPLICATE)
    out = cv2.morphologyEx(out, cv2.MORPH_CLOSE, kernel, borderType=cv2.BORDER_REPLICATE)
    return out[radius:-radius, radius:-radius].astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape; two empty masks give 1.0."""
    a, b = _check_mask(a), _check_mask(b)
    if a.shape != b.shape:
        raise ValueError(f"masks differ in shape: {list(a.shape)} and {list(b.shape)}")
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


# -- internals --------------------------------------------------------------------------------
def _grabcut(image, labels, box, iterations) -> np.ndarray:
    """Run GrabCut (mask mode) on a crop around `box` (x0, y0, x1, y1) plus a margin, at most
    GRABCUT_SIDE px on its longer side (GrabCut's time grows with the pixel count: a 1080x1080
    crop takes seconds); pixels outside the crop keep their label's side. Returns the bool
    object mask at full resolution."""
    height, width = labels.shape
    x0, y0, x1, y1 = (int(v) for v in box)
    margin = max(16, int(MARGIN * max(x1 - x0, y1 - y0)))
    cx0, cy0 = max(0, x0 - margin), max(0, y0 - margin)
    cx1, cy1 = min(width, x1 + margin), min(height, y1 + margin)
    crop = labels[cy0:cy1, cx0:cx1]
    result = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    patch = image[cy0:cy1, cx0:cx1]
    scale = min(1.0, GRABCUT_SIDE / max(crop.shape))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        patch = cv2.resize(patch, size, interpolation=cv2.INTER_AREA)
        crop = _shrink_labels(crop, size)
    crop = np.ascontiguousarray(crop)
    is_fg = (crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD)
    if is_fg.all() or not is_fg.any():
        return result  # one colour model would be empty: GrabCut cannot run, keep the labels
    # OpenCV's GrabCut wants BGR; its colour models do not care about channel order.
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut's k-means draws from OpenCV's per-thread RNG: seeded, the same box or click gives
    # the same mask whatever ran before it in this thread (the page, a script, a test).
    cv2.setRNGSeed(GRABCUT_SEED)
    cv2.grabCut(np.ascontiguousarray(patch), crop, None, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_MASK)
    fg = ((crop == cv2.GC_FGD) | (crop == cv2.GC_PR_FGD))
    if scale < 1.0:
        fg = cv2.resize(fg.view(np.uint8).astype(np.float32), (cx1 - cx0, cy1 - cy0),
                        interpolation=cv2.INTER_LINEAR) >= 0.5
    result[cy0:cy1, cx0:cx1] = fg
    return result


def _shrink_labels(labels, size) -> np.ndarray:
    """GrabCut labels at a smaller size: a small pixel is definite background (or else definite
    object) if any definite pixel of that kind falls in it, else probable object if at least
    half of it was, else probable background."""
    def share(value):
        return cv2.resize((labels == value).view(np.uint8).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    small = np.where(share(cv2.GC_PR_FGD) + share(cv2.GC_FGD) >= 0.5, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    small[share(cv2.GC_FGD) > 0] = cv2.GC_FGD
    small[share(cv2.GC_BGD) > 0] = cv2.GC_BGD
    return small


def _reach(mask, radius) -> int:
    """How far from a click its region may reach: half the mask's larger side (a click refines
    the object at the object's own scale), at least 16 px and four click radii."""
    if not mask.any():
        return max(16, 4 * radius)
    ys, xs = np.nonzero(mask)
    return max(16, 4 * radius, int(max(xs.max() - xs.min(), ys.max() - ys.min()) + 1) // 2)


def _near(discs, reach) -> np.ndarray:
    """Pixels within `reach` px (a square) of a clicked disc."""
    side = 2 * reach + 1
    return cv2.dilate(discs.view(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (side, side))).view(bool)


def _discs(points, shape, radius) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    for x, y in points:
        cv2.circle(canvas, (int(round(x)), int(round(y))), int(radius), 1, thickness=-1)
    return canvas.view(bool)


def _check_image(image) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        got = list(image.shape) if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"image must be an RGB array [H, W, 3], got {got}")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8, got {image.dtype}")
    return image


def _check_iterations(iterations) -> None:
    if not isinstance(iterations, (int, np.integer)) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")


def _check_shape(shape) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (height, width), got {shape!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"shape must be (height, width) with both >= 1, got {shape!r}")
    return height, width


def _check_box(box, width, height) -> tuple[int, int, int, int]:
    try:
        coords = [float(v) for v in box]
    except (TypeError, ValueError):
        raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}") from None
    if len(coords) != 4 or not np.isfinite(coords).all():
        raise ValueError(f"box must be four finite numbers (x0, y0, x1, y1), got {box!r}")
    x0, x1 = sorted(round(v) for v in coords[0::2])
    y0, y1 = sorted(round(v) for v in coords[1::2])
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise ValueError(f"box {tuple(box)} reaches outside the {width}x{height} image "
                         f"(x in 0..{width}, y in 0..{height})")
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"box {tuple(box)} is {x1 - x0}x{y1 - y0} px; draw a box at least 2x2 px "
                         "around the object")
    return x0, y0, x1, y1


def _check_points(points, width, height, what) -> list[tuple[float, float]]:
    points = list(points) if points is not None else []
    pts = np.asarray(points if points else np.zeros((0, 2)), dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"{what} must be a sequence of (x, y) pairs, got shape {list(pts.shape)}")
    if not np.isfinite(pts).all():
        raise ValueError(f"{what} must be finite numbers")
    outside = ~((pts[:, 0] >= 0) & (pts[:, 0] <= width - 1) & (pts[:, 1] >= 0) & (pts[:, 1] <= height - 1))
    if outside.any():
        x, y = pts[np.argmax(outside)]
        raise ValueError(f"{what}: ({x:g}, {y:g}) is outside the {width}x{height} image")
    return [tuple(p) for p in pts]
