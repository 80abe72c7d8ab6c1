"""Drawing masks over frames, and converting masks to/from image-editor RGBA layers.

Pure NumPy/OpenCV. Rendering works inside the mask's bounding box only, so its cost follows
the mask's size rather than the frame's: a 1080p frame with a large blob takes ~10-15 ms.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

Color = tuple[int, int, int]


# Each object's colour, by its place in the expression (RGB): the page's masks, the legend, the
# candidate thumbnails and rendered clips all read this one table (the page gets it as hex).
OBJECT_COLOURS = ((255, 0, 255), (255, 212, 0), (0, 229, 255), (255, 107, 0), (124, 255, 0), (155, 92, 255),
                  (255, 45, 85), (0, 255, 156))


def object_colour(k: int) -> tuple[int, int, int]:
    return OBJECT_COLOURS[k % len(OBJECT_COLOURS)]


def hex_colour(rgb) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)

def render_overlay(frame: np.ndarray, mask: Optional[np.ndarray] = None, *,
                   opacity: float = 0.5, color: Color = (255, 64, 64),
                   outline_only: bool = False, contour_color: Color = (255, 255, 0),
                   contour_px: int = 2, inplace: bool = False) -> np.ndarray:
    """Return a new uint8 RGB image (or `frame` itself, drawn on, when `inplace`): `frame` with
    `mask` tinted and outlined.

    Inside the mask each pixel becomes round(frame * (1 - opacity) + color * opacity),
    unless `outline_only`. The contour is the mask's inner boundary: mask pixels within
    `contour_px` (chessboard distance) of a background pixel, holes included, painted in
    `contour_color` at full opacity. The frame's edge is not a boundary: the object goes on
    outside the picture. `contour_px=0` draws no contour. `frame` is modified only if `inplace`
    (clip rendering draws on frames it owns, saving a full-frame copy per object).
    """
    _check_frame(frame)
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be between 0 and 1, got {opacity}")
    if not isinstance(contour_px, (int, np.integer)) or contour_px < 0:
        raise ValueError(f"contour_px must be an integer >= 0, got {contour_px!r}")
    color = _check_color(color, "color")
    contour_color = _check_color(contour_color, "contour_color")
    out = frame if inplace else frame.copy()
    if mask is None:
        return out
    m = _check_mask(mask, frame.shape[:2], "mask").view(np.uint8)  # bool -> 0/1, no copy
    x, y, w, h = cv2.boundingRect(m)
    if w == 0:
        return out
    # Pad the box so erosion sees the background around the mask; clipped at the frame edge,
    # where erode's default border (max value) keeps the edge from counting as a boundary.
    H, W = m.shape
    x0, y0 = max(x - contour_px, 0), max(y - contour_px, 0)
    x1, y1 = min(x + w + contour_px, W), min(y + h + contour_px, H)
    # roi is a view: cv2 writes through it (row strides are fine), so no ROI-sized copies.
    roi, m_roi = out[y0:y1, x0:x1], m[y0:y1, x0:x1]

    if opacity > 0 and not outline_only:
        # Per-channel affine map = frame * (1 - a) + color * a, rounded once, no tint image.
        affine = np.hstack([np.eye(3) * (1.0 - opacity), np.array(color)[:, None] * opacity])
        cv2.copyTo(cv2.transform(roi, affine), m_roi, roi)
    if contour_px > 0:
        kernel = np.ones((2 * contour_px + 1,) * 2, np.uint8)
        edge = cv2.subtract(m_roi, cv2.erode(m_roi, kernel))
        roi[edge.view(bool)] = contour_color
    return out


def _check_frame(frame) -> None:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        shape = list(frame.shape) if isinstance(frame, np.ndarray) else type(frame).__name__
        raise ValueError(f"frame must be an RGB array of shape [H,W,3], got {shape}")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8, got {frame.dtype}")


def _check_mask(mask, shape, what: str) -> np.ndarray:
    if not isinstance(mask, np.ndarray) or mask.ndim != 2:
        got = list(mask.shape) if isinstance(mask, np.ndarray) else type(mask).__name__
        raise ValueError(f"{what} must be a 2-D bool array [H,W], got {got}")
    if mask.dtype != np.bool_:
        raise ValueError(f"{what} must be bool, got {mask.dtype}; convert with `{what} > 0`")
    if shape is not None and mask.shape != tuple(shape):
        raise ValueError(f"{what} shape {list(mask.shape)} does not match the frame's "
                         f"{list(shape)}")
    return np.ascontiguousarray(mask)


def _check_color(color, what: str) -> Color:
    c = tuple(int(v) for v in color)
    if len(c) != 3 or not all(0 <= v <= 255 for v in c):
        raise ValueError(f"{what} must be three 0-255 values (R, G, B), got {color!r}")
    return c
