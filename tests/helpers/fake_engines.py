"""Test engines, registered on import: load with `launch.py ... --engine-module tests.helpers.fake_engines`.

- fake-bright: the object is whatever is brighter than its frame's mean plus one standard
  deviation (a few percent of the frame: the test videos' square and white cells; deterministic, cheap;
  tests annotate their ground truth with the same rule, so it scores 1.0).
- fake-everything: every pixel is the object (deliberately bad; scores are easy to compute by
  hand: J = |G| / (H W), F = 0 since a full mask has no contour).
- fake-fail-2nd: fake-bright that raises on its second call in a process (an interrupted run).
- fake-video: fake-bright for videos only.

CALLS records (engine, expression) for every call in this process.
"""
from __future__ import annotations

import numpy as np

import engine
from bench.work_engine import BlurWork, bright  # noqa: F401 (tests use bright)

CALLS: list[tuple[str, str]] = []


class Bright(BlurWork):
    """The benchmark's engine (blurs, then brightness), recording its calls."""
    name = "fake-bright"

    def segment_video(self, frames, expression, progress=None):
        CALLS.append((self.name, expression))
        return super().segment_video(frames, expression, progress)


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


class VideoOnly(Bright):
    name = "fake-video"


ENGINES = {"fake-bright": (Bright, ("video", "image")), "fake-everything": (Everything, ("video", "image")),
           "fake-fail-2nd": (FailSecond, ("video", "image")), "fake-video": (VideoOnly, ("video",))}

for _name, (_factory, _kinds) in ENGINES.items():
    if _name not in engine.available_segmenters():  # importing twice (a test re-import) is harmless
        engine.register_engine(_name, _factory, kinds=_kinds, description=f"test engine {_name}")
