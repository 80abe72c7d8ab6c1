"""EngineService: the one object that owns the accelerator.

It loads segmenters on demand and caches them, runs every model call under one lock (two
requests never share a model's per-run state or race for GPU memory), and turns cancel()
into `Cancelled`. Inputs and outputs are checked here, so every engine gets the same
teaching error messages and the UI never sees a mask of the wrong shape.

Cancel: cancel() sets an Event. The progress callable handed to `segment_video` raises
Cancelled when the Event is set, so segmenters that report progress stop at their next
report; the Event is also checked after loading and after the model returns, which covers
image segmenters (no progress) and engines that never report. Each call clears the Event
once it holds the lock, so a cancel aimed at one run never poisons the next.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .bounds import BOUNDS, Recent
from .checks import check_expression, check_frames, check_image, describe
from .registry import (
    Ability,
    Cancelled,
    ProgressFn,
    Segmenter,
    available_segmenters,
    engine_info,
    load_segmenter,
    pick_device,
)
from .track_masks import TrackCandidate


@dataclass
class Proposal:
    """One model run on one media: bool [T,H,W] masks (T=1 for an image), and for engines that
    offer them the alternatives, the engine's pick first: for an image the top candidates
    (masks, scores) (FlowSeg, SAM 3); for a video the instances each tracked through the clip
    (`tracks`, TrackCandidate: SAM 3), of which `masks` is the first's."""
    masks: np.ndarray
    candidates: Optional[tuple[np.ndarray, np.ndarray]] = None
    tracks: Optional[list[TrackCandidate]] = None


class EngineService:
    def __init__(self, device: Optional[str] = None, paths: Optional[dict] = None):
        """`paths`: default model paths per engine name, e.g. {"flowrvs": {"wan_dir": ...}};
        keyword paths given to a call override them."""
        self._device_arg = device
        self._device: Optional[str] = None
        self._default_paths = {name: dict(p) for name, p in (paths or {}).items()}
        self._cache: dict[tuple, Segmenter] = {}
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._sam_last = Recent(BOUNDS.answers)  # object key -> SAM's last answer, for sam_choose

    @property
    def device(self) -> str:
        # Resolved on first use: pick_device may import torch, which the UI should not pay
        # for at startup.
        if self._device is None:
            self._device = pick_device(self._device_arg)
        return self._device

    def cancel(self) -> None:
        """Ask the running call (if any) to stop; it raises Cancelled at its next check."""
        self._cancel.set()

    def load(self, name: str, **paths) -> None:
        """Load (and cache) a segmenter now, so a missing weight fails before any frame is decoded."""
        with self._lock:
            self._load(name, paths)

    def run(self, name: str, kind: str, frames: np.ndarray, expression: str,
            progress: Optional[ProgressFn] = None, **paths) -> Proposal:
        """The one way a media goes through an engine: frames uint8 [T,H,W,3] RGB, as an array or
        an engine.Clip (an image is T=1) -> Proposal. For an image, an engine's candidates come
        along when it offers them; an empty alternative is dropped (it would be no one-click fix),
        the pick never is."""
        if kind == "video":
            return self._run_video(name, frames, expression, progress, paths)
        found = self.candidates(name, frames[0], expression, **paths)
        if found is None:
            return Proposal(self.segment_image(name, frames[0], expression, **paths)[None])
        masks, scores = found
        keep = [0] + [i for i in range(1, len(masks)) if masks[i].any()]
        return Proposal(masks[:1], (masks[keep], scores[keep]))

    def segment_video(self, name: str, frames: np.ndarray, expression: str,
                      progress: Optional[ProgressFn] = None, **paths) -> np.ndarray:
        """frames uint8 [T,H,W,3] RGB -> bool [T,H,W]."""
        _check_video_call(name, frames, expression)
        out = self._locked_call(name, paths, lambda segmenter: segmenter.segment_video(
            _frames_for(engine_info(name), frames), expression, progress=self._forward(progress)))
        return _check_output(name, out, frames.shape[:3], "segment_video")

    def _run_video(self, name, frames, expression, progress, paths) -> Proposal:
        """An engine that follows several instances (video_candidates) offers them all; others
        give their one track."""
        _check_video_call(name, frames, expression)

        info = engine_info(name)

        def call(segmenter):
            clip, report = _frames_for(info, frames), self._forward(progress)
            if info.can(Ability.VIDEO_CANDIDATES):
                return segmenter.video_candidates(clip, expression, progress=report)
            return segmenter.segment_video(clip, expression, progress=report)
        out = self._locked_call(name, paths, call)
        if isinstance(out, np.ndarray):
            return Proposal(_check_output(name, out, frames.shape[:3], "segment_video"))
        if not isinstance(out, list) or not all(isinstance(c, TrackCandidate) and c.track.num_frames == len(frames)
                                                and c.track.shape == frames.shape[1:3] for c in out):
            raise RuntimeError(f"engine {name!r} broke the video_candidates contract: expected a list of "
                               f"TrackCandidate over {len(frames)} frames of {list(frames.shape[1:3])}")
        if not out:
            return Proposal(np.zeros(frames.shape[:3], bool))
        return Proposal(out[0].track.array(), tracks=out)

    def segment_image(self, name: str, image: np.ndarray, expression: str,
                      **paths) -> np.ndarray:
        """image uint8 [H,W,3] RGB -> bool [H,W]."""
        check_image(image)
        check_expression(expression)
        _check_kind(name, "image")
        out = self._locked_call(name, paths, lambda segmenter: segmenter.segment_image(image, expression))
        return _check_output(name, out, image.shape[:2], "segment_image")

    def candidates(self, name: str, image: np.ndarray, expression: str, k: int = 5,
                   **paths) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k candidate masks (bool [k,H,W]) and scores, best first, from an engine that
        offers them (FlowSeg); None for engines that do not."""
        check_image(image)
        check_expression(expression)
        _check_kind(name, "image")
        if not engine_info(name).can(Ability.CANDIDATES):
            return None
        with self._lock:
            self._cancel.clear()
            out = self._load(name, paths).candidates(image, expression, k=k)
        masks = np.asarray(getattr(out, "masks", out[0] if isinstance(out, tuple) else None))
        scores = np.asarray(getattr(out, "scores", out[1] if isinstance(out, tuple) else None), np.float32)
        if masks.dtype != bool or masks.ndim != 3 or masks.shape[1:] != image.shape[:2] or len(scores) != len(masks):
            raise RuntimeError(f"engine {name!r} broke the candidates contract: expected bool [k,H,W] masks "
                               f"and k scores, got {describe(masks)} and {describe(scores)}")
        return masks, scores

    # -- interactive correction and tracking (the "sam2" engine: Ability.INTERACTIVE, TRACKING) --
    # No expression goes in: the studio's box/click tools and propagation call these verbs.
    # Paths come from paths={"sam2": {"model": ...}}.

    def paths(self) -> dict:
        """The default model paths per engine (a copy), e.g. {"sam2": {"model": ...}}."""
        return {name: dict(p) for name, p in self._default_paths.items()}

    def sam_configured(self) -> bool:
        """Whether SAM 2 weights are named (by paths or $FLOWLABEL_SAM_MODEL); not whether they load."""
        from .registry import model_path
        return bool(model_path("sam2", "model").value(self._default_paths.get("sam2", {}).get("model")))

    def sam_prepare(self, key, image: np.ndarray) -> None:
        """Embed a frame now (as it is shown), so the click after it answers fast."""
        check_image(image)
        with self._lock:
            self._sam().prepare(key, image)

    def sam_click(self, key, image: np.ndarray, obj, x: float, y: float, positive: bool,
                  current: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Refine object `obj` on the frame with one click -> (masks bool [K,H,W] best first, scores)."""
        check_image(image)
        with self._lock:
            found = self._sam().click(key, image, obj, x, y, positive, current=current)
            self._sam_last[obj] = found
        return found.masks, found.scores

    def sam_box(self, key, image: np.ndarray, obj, box) -> tuple[np.ndarray, np.ndarray]:
        """Restart object `obj` from a box -> (masks bool [K,H,W] best first, scores)."""
        check_image(image)
        with self._lock:
            found = self._sam().box(key, image, obj, box)
            self._sam_last[obj] = found
        return found.masks, found.scores

    def sam_choose(self, obj, index: int) -> None:
        """The annotator took alternative `index` of the last answer: later clicks refine it."""
        with self._lock:
            if obj in self._sam_last:
                self._sam().choose(obj, self._sam_last[obj], index)

    def sam_track(self, get_frame, num_frames: int, start: int, on_step, progress: Optional[ProgressFn] = None,
                  **options) -> None:
        """Track with SAM 2's memory (engine.sam2.tracker.track's options); on_step(step) gets each
        TrackStep as it comes. Cancel raises Cancelled at the next frame."""
        with self._lock:
            self._cancel.clear()
            sam = self._sam()
            for step in sam.track(get_frame, num_frames, start, progress=self._forward(progress), **options):
                on_step(step)
            self._raise_if_cancelled()

    # -- internals --

    def _locked_call(self, name: str, paths: dict, call):
        """call(segmenter) under the lock, with a cancel checked before and after (a cancel aimed
        at an earlier run is cleared first)."""
        with self._lock:
            self._cancel.clear()
            segmenter = self._load(name, paths)
            self._raise_if_cancelled()
            out = call(segmenter)
            self._raise_if_cancelled()
        return out

    # (call these with the lock held)

    def _sam(self):
        return self._load("sam2", {})

    def _load(self, name: str, paths: dict) -> Segmenter:
        merged = {**self._default_paths.get(name, {}), **paths}
        key = (name, self.device, tuple(sorted((k, str(v)) for k, v in merged.items())))
        if key not in self._cache:
            self._cache[key] = load_segmenter(name, device=self.device, **merged)
        return self._cache[key]

    def _forward(self, progress: Optional[ProgressFn]) -> ProgressFn:
        def report(fraction: float, message: str = "") -> None:
            self._raise_if_cancelled()
            if progress is not None:
                progress(fraction, message)
        return report

    def _raise_if_cancelled(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("segmentation cancelled")


def _frames_for(info, frames):
    """A Clip for engines that read frame by frame (Ability.STREAMS_FRAMES), else the whole array."""
    return frames if info.can(Ability.STREAMS_FRAMES) else np.asarray(frames)


def _check_video_call(name: str, frames: np.ndarray, expression: str) -> None:
    check_frames(frames)
    check_expression(expression)
    _check_kind(name, "video")


def _check_kind(name: str, kind: str) -> None:
    if kind not in engine_info(name).kinds:  # raises UnknownEngineError first
        others = available_segmenters(kind)
        raise ValueError(f"engine {name!r} does not segment {kind}s; engines that do: "
                         f"{', '.join(others) or 'none'}")


def _check_output(name: str, out, shape: tuple, method: str) -> np.ndarray:
    if not isinstance(out, np.ndarray) or out.dtype != np.bool_ or out.shape != tuple(shape):
        raise RuntimeError(f"engine {name!r} broke the segmenter contract: {method} must "
                           f"return a bool array of shape {list(shape)}, returned "
                           f"{describe(out)}")
    return out
