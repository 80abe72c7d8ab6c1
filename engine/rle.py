"""Masks <-> COCO compressed RLE, through pycocotools.

The one codec: the store keeps every mask as COCO RLE (so that export is a copy, not a
re-encoding), tracks keep their frames in it (engine/track_masks.py), and the demo datasets write it.
"""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils


def encode(mask: np.ndarray) -> dict:
    """bool/uint8 [H, W] -> {"size": [h, w], "counts": str} (JSON-ready)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask must be 2-D [H, W]; got shape {mask.shape}")
    # pycocotools wants uint8 in column-major order; anything else encodes garbage.
    rle = mask_utils.encode(np.asfortranarray(mask.astype(bool).astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict) -> np.ndarray:
    """COCO RLE (counts as str or bytes) -> bool [H, W]."""
    counts = rle["counts"]
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    return mask_utils.decode({"size": list(rle["size"]), "counts": counts}).astype(bool)


