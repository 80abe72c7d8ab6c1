"""Test engines, registered on import: load with `launch.py ... --engine-module tests.fake_engines`.

- fake-bright: the object is whatever is brighter than its frame's mean plus one standard
  deviation (a few percent of the frame: the test videos' square and white cells; deterministic, cheap;
  tests annotate their ground truth with the same rule, so it scores 1.0).
- fake-everything: every pixel is the object (deliberately bad; scores are easy to compute by
  hand: J = |G| / (H W), F = 0 since a full mask has no contour).
- fake-fail-2nd: fake-bright that raises on its second call in a process (an interrupted run).
- fake-work: fake-bright after `iterations` Gaussian blurs per frame: a CPU cost like a small
  model's, for benchmarks (`iterations` is passed as an engine path, default 0).
- fake-video: fake-bright for videos only.

CALLS records (engine, expression) for every call in this process.
"""
from __future__ import annotations

import cv2
import numpy as np

import engine

CALLS: list[tuple[str, str]] = []


def bright(frames: np.ndarray) -> np.ndarray:
    """bool [T,H,W]: pixels whose channel mean is above their frame's mean + 1 std."""
    grey = frames.mean(axis=3)
    return grey > grey.mean(axis=(1, 2), keepdims=True) + grey.std(axis=(1, 2), keepdims=True)


class Bright:
    name = "fake-bright"

    def __init__(self, device=None, iterations: int = 0):
        self.device, self.iterations = device, int(iterations)

    def segment_video(self, frames, expression, progress=None):
        CALLS.append((self.name, expression))
        for i, frame in enumerate(frames):
            for _ in range(self.iterations):
                frame = cv2.GaussianBlur(frame, (9, 9), 0)
            if progress:
                progress((i + 1) / len(frames), f"frame {i}")
        return bright(frames)

    def segment_image(self, image, expression):
        return self.segment_video(image[None], expression)[0]


class Everything(Bright):
    name = "fake-everything"

    def segment_video(self, frames, expression, progress=None):
        CALLS.append((self.name, expression))
        return np.ones(frames.shape[:3], bool)


class FailSecond(Bright):
    name = "fake-fail-2nd"
    calls = 0

    def segment_video(self, frames, expression, progress=None):
        FailSecond.calls += 1
        if FailSecond.calls == 2:
            raise RuntimeError("fake-fail-2nd: simulated crash on the second expression")
        return super().segment_video(frames, expression, progress)


class Work(Bright):
    name = "fake-work"


class VideoOnly(Bright):
    name = "fake-video"


ENGINES = {"fake-bright": (Bright, ("video", "image")), "fake-everything": (Everything, ("video", "image")),
           "fake-fail-2nd": (FailSecond, ("video", "image")), "fake-work": (Work, ("video", "image")),
           "fake-video": (VideoOnly, ("video",))}

for _name, (_factory, _kinds) in ENGINES.items():
    if _name not in engine.available_segmenters():  # importing twice (a test re-import) is harmless
        engine.register_segmenter(_name, _factory, kinds=_kinds, description=f"test engine {_name}")
