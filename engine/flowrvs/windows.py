"""Long videos: overlapping windows of 4k+1 frames and linear-ramp blending of probabilities.

The release runs a whole clip in one pass, so memory grows with its length. Here a clip
longer than the window is cut into windows of exactly `window` frames (a 4k+1 count, so no
padding is needed), spaced evenly with at least `overlap` shared frames. A frame covered by
several windows gets the weighted mean of their probabilities, each window's weight ramping
linearly from 1/(o+1) to 1 across the o frames it shares with a neighbour. A frame covered
by one window gets exactly that window's probability, so one window covering the whole clip
reproduces the unwindowed result bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

CPU_WINDOW = 81          # Wan2.1's native clip length (4*20+1); CPU memory is rarely the limit
MIN_WINDOW = 5
MAX_AUTO_WINDOW = 161


def check_window(window: int) -> int:
    if not isinstance(window, (int, np.integer)) or isinstance(window, bool) or window < 1 \
            or (window - 1) % 4 != 0:
        raise ValueError(f"window must be a frame count of the form 4k+1 (1, 5, 9, 17, 33, 81, "
                         f"...), got {window!r}")
    return int(window)


def default_overlap(window: int) -> int:
    return (window - 1) // 4


@dataclass(frozen=True)
class Window:
    start: int
    stop: int                 # exclusive
    weights: np.ndarray       # float64 [stop - start]

    def __len__(self) -> int:
        return self.stop - self.start


def plan_windows(num_frames: int, window: int, overlap: int) -> list[Window]:
    """Evenly spaced windows covering [0, num_frames); consecutive ones share >= overlap frames."""
    window = check_window(window)
    if num_frames <= window:
        return [Window(0, num_frames, np.ones(num_frames))]
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be between 0 and window-1={window - 1}, got {overlap}")
    count = math.ceil((num_frames - overlap) / (window - overlap))
    starts = [(k * (num_frames - window)) // (count - 1) for k in range(count)]
    windows = []
    for k, start in enumerate(starts):
        stop = start + window
        idx = np.arange(start, stop)
        w = np.ones(window)
        if k > 0:                                      # ramp up across the previous overlap
            shared = starts[k - 1] + window - start
            if shared > 0:
                w = np.minimum(w, (idx - start + 1) / (shared + 1))
        if k + 1 < count:                              # ramp down across the next overlap
            shared = stop - starts[k + 1]
            if shared > 0:
                w = np.minimum(w, (stop - idx) / (shared + 1))
        windows.append(Window(start, stop, w))
    return windows


class Blender:
    """Collects per-window frame probabilities and writes finished frames into `out`.

    out: float32 [T,H,W] (probabilities) or bool [T,H,W] (prob > threshold).
    """

    def __init__(self, out: np.ndarray, threshold: float):
        self.out = out
        self.threshold = threshold
        self._pending: dict[int, list] = {}

    def add(self, index: int, prob: np.ndarray, weight: float) -> None:
        self._pending.setdefault(index, []).append((float(weight), prob))

    def finish_before(self, index: int) -> None:
        """Frames < index get no more contributions: blend and write them."""
        for i in sorted(k for k in self._pending if k < index):
            parts = self._pending.pop(i)
            if len(parts) == 1:
                prob = parts[0][1]
            else:
                total = sum(w for w, _ in parts)
                prob = sum(w * p.astype(np.float64) for w, p in parts) / total
            if self.out.dtype == np.bool_:
                self.out[i] = prob > self.threshold
            else:
                self.out[i] = prob

    def finish(self) -> None:
        self.finish_before(len(self.out))
