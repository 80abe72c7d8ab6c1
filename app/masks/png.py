"""Masks (and frames) as PNG files, as scripts send and receive them."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from app.errors import UserError
from app.media import limits

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class MaskFileError(UserError, ValueError):
    pass


def read_mask_png(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A PNG mask -> bool [H, W].

    Grey (8 or 16 bit): nonzero is the object. Colour: any nonzero colour channel is the object;
    with alpha, transparent pixels are background, and an image whose colour is all black
    carries the mask in its alpha alone.

    The size in the PNG's header is checked before decoding: against the project's pixel limit,
    and against `size` (width, height: the frame's) when given.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != PNG_SIGNATURE:
        raise MaskFileError(f"{path.name} is not a PNG; send the mask as a PNG (lossy formats such as "
                            "JPEG add stray pixels) where nonzero pixels are the object")
    if head[12:16] != b"IHDR":
        raise MaskFileError(f"{path.name} is a damaged PNG (no IHDR header); export the mask again")
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    limits.check_pixels(path.name, width, height, "a mask")
    if size is not None and (width, height) != tuple(size):
        raise MaskFileError(f"{path.name} is {width}x{height} but the frame is {size[0]}x{size[1]}; send a "
                            "mask of the frame's size; nothing was decoded or saved")
    img = cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)
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
    return write_png(mask.astype(np.uint8) * 255, path)


def write_png(image: np.ndarray, path: str | Path) -> Path:
    """Write a grey [H, W] or RGB [H, W, 3] uint8 image as a lossless PNG, atomically."""
    path = Path(path)
    bgr = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".png", bgr)
    if not ok:
        raise OSError(f"OpenCV could not encode {path.name} as PNG")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".partial")
    with os.fdopen(fd, "wb") as f:
        f.write(data.tobytes())
    os.replace(tmp, path)
    return path
