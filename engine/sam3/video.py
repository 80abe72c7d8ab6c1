"""SAM 3 on a video, as SAM 3 itself is built: the concept detector finds the expression's best
instance on the first frame where it scores above the threshold, then a SAM 2-family tracker (the
SAM 3 tracker, or any SAM 2 video model) carries that instance forward with its memory.

Frames before the first detection stay empty (the detector found nothing there); frames where the
tracker's object score says "not present" are empty too. Frames are read one at a time; progress
is reported once per frame, detection and tracking alike, and its Cancelled stops the run.
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from engine.sam2.tracker import track


def segment_video(detector, tracker_model, normalization, frames: np.ndarray, expression: str,
                  progress: Optional[Callable[[float, str], None]] = None) -> np.ndarray:
    """frames uint8 [T, H, W, 3] -> the best instance's track, bool [T, H, W]."""
    total = len(frames)
    out = np.zeros(frames.shape[:3], bool)
    report = progress or (lambda fraction, message: None)
    for start in range(total):
        report(start / total, f"looking for {expression!r} in frame {start}")
        seed = detector.segment_image(frames[start], expression)
        if seed.any():
            break
    else:
        report(1.0, "the concept was not found in any frame")
        return out
    out[start] = seed
    if start + 1 < total:
        def tracking(fraction: float, message: str) -> None:
            report((start + 1 + fraction * (total - start - 1)) / total, message)
        for step in track(tracker_model, lambda i: frames[i], total, start, seed_mask=seed, progress=tracking,
                          normalization=normalization):
            out[step.frame] = step.mask
    report(1.0, "done")
    return out
