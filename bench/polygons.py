"""Exact polygons (the RefCOCO export's segmentations) for 1080p masks: time and size per mask.

    python bench/polygons.py
"""
from __future__ import annotations

import time

import cv2
import numpy as np

from app.formats._polygons import exact_polygons


def masks(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.random((270, 480)), (0, 0), 8)
    blobs = cv2.resize((smooth > np.quantile(smooth, 0.7)).astype(np.uint8), (1920, 1080),
                       interpolation=cv2.INTER_NEAREST).astype(bool)
    ring = np.zeros((1080, 1920), np.uint8)
    cv2.circle(ring, (960, 540), 400, 1, -1)
    cv2.circle(ring, (960, 540), 200, 0, -1)
    return {"blobs with holes": blobs, "a ring": ring.astype(bool),
            "blobs, 1% speckled": blobs ^ (rng.random(blobs.shape) < 0.01)}


def main() -> None:
    for name, mask in masks().items():
        start = time.perf_counter()
        polygons = exact_polygons(mask)
        ms = (time.perf_counter() - start) * 1000
        numbers = sum(len(p) for p in polygons)
        print(f"{name:22s} {ms:8.1f} ms  {len(polygons):6d} polygons  {numbers:9,d} numbers")


if __name__ == "__main__":
    main()
