"""`bench-work`, the batch benchmark's engine, registered on import
(`--engine-module bench.work_engine`): brightness masks after `iterations` Gaussian blurs per
frame, a CPU cost like a small model's that a Ray actor cannot shortcut."""
from __future__ import annotations

import cv2
import numpy as np

import engine

NAME = "bench-work"


def bright(frames: np.ndarray) -> np.ndarray:
    """bool [T,H,W]: pixels whose channel mean is above their frame's mean + 1 std."""
    grey = frames.mean(axis=3)
    return grey > grey.mean(axis=(1, 2), keepdims=True) + grey.std(axis=(1, 2), keepdims=True)


class BlurWork:
    def __init__(self, device=None, iterations: int = 0):
        self.device, self.iterations = device, int(iterations)

    def segment_video(self, frames, expression, progress=None):
        for i, frame in enumerate(frames):
            for _ in range(self.iterations):
                frame = cv2.GaussianBlur(frame, (9, 9), 0)
            if progress:
                progress((i + 1) / len(frames), f"frame {i}")
        return bright(frames)

    def segment_image(self, image, expression):
        return self.segment_video(image[None], expression)[0]


if NAME not in engine.available_segmenters():  # a second import (Ray worker, test) is harmless
    engine.register_engine(NAME, BlurWork, description="benchmark engine: blurs, then brightness")
