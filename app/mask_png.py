"""Masks as PNG files, as scripts send and receive them."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.store import StoreError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MaskFileError(StoreError, ValueError):
    pass


def read_mask_png(path: str | Path) -> np.ndarray:
    """A PNG mask -> bool [H, W].

    Grey (8 or 16 bit): nonzero is the object. Colour: any nonzero colour channel is the object;
    with alpha, transparent pixels are background, and an image whose colour is all black
    carries the mask in its alpha alone.
    """
    path = Path(path)
    data = np.fromfile(str(path), np.uint8)
    if data[:8].tobytes() != PNG_SIGNATURE:
        raise MaskFileError(f"{path.name} is not a PNG; send the mask as a PNG (lossy formats such as "
                            "JPEG add stray pixels) where nonzero pixels are the object")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise MaskFileError(f"{path.name} is a damaged PNG; export the mask again")
    if img.ndim == 2:
        return img != 0
    colour = (img[..., :3] != 0).any(axis=2)
    if img.shape[2] < 4:
        return colour
    alpha = img[..., 3] != 0
    return alpha if not colour.any() else colour & alpha


def write_mask_png(mask: np.ndarray, path: str | Path) -> Path:
    """Write a 0/255 grey PNG atomically (readers never see half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    with os.fdopen(fd, "wb") as f:
        f.write(cv2.imencode(".png", mask.astype(np.uint8) * 255)[1].tobytes())
    os.replace(tmp, path)
    return path
