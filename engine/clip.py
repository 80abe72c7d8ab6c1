"""A video's frames, read one at a time when an engine asks for them.

Engines that go through a clip frame by frame (Ability.STREAMS_FRAMES, declared at registration: SAM 3)
get a Clip, so a long video never sits in memory whole: 900 frames of 1080p are 5.6 GB as one
array. Every other engine gets `np.asarray(clip)`, the [T,H,W,3] array it always had.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


class Clip:
    """uint8 [T, H, W, 3] RGB frames behind `read(i)`: len(), .shape, clip[i] (one frame), clip[a:b]
    and np.asarray(clip) (stacked)."""
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, read: Callable[[int], np.ndarray], num_frames: int, height: int, width: int):
        if num_frames < 1 or height < 1 or width < 1:
            raise ValueError(f"a clip needs frames of some size, got {num_frames} frames of {width}x{height}")
        self._read = read
        self.shape = (int(num_frames), int(height), int(width), 3)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return np.stack([self[i] for i in range(*index.indices(len(self)))])
        index = int(index)
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} is outside the clip (frames 0..{len(self) - 1})")
        frame = self._read(index % len(self))
        if frame.dtype != np.uint8 or frame.shape != self.shape[1:]:
            raise ValueError(f"frame {index % len(self)} is {frame.dtype} {list(frame.shape)}, not uint8 "
                             f"{list(self.shape[1:])} like the clip; the video's frames must share one size")
        return frame

    def __array__(self, dtype=None, copy=None):
        out = self[:]
        return out if dtype is None else out.astype(dtype)
