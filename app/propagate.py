"""Mask propagation through a video with dense optical flow (OpenCV DIS). Pure NumPy/OpenCV.

One step, frame t -> t+1 (t-1 when going backward):
1. Grey frames, downscaled so the longer side is at most `flow_side` px (flow is smooth; the
   mask itself is warped at full resolution).
2. Flow b from the new frame to the old one, and flow f from the old frame to the new one.
3. The new mask pulls from the old one by backward mapping: new(p) = old(p + b(p)), with
   cv2.remap on a float mask and a threshold at 0.5, so the mask neither grows nor shrinks by
   a rounding rule repeated every frame.
4. Confidence is the share of the new mask's pixels whose flow is trustworthy: forward and
   backward flow agree (|b(p) + f(p + b(p))|^2 <= 0.01 (|b|^2 + |f|^2) + 0.5, the test of
   Sundaram et al., ECCV 2010) and the pixel looks like the one it came from (grey difference
   <= `PHOTO_TOL`). An object that vanishes, is occluded or is replaced fails both.

Why DIS and not Farneback: on the test clip (textured patch moving 3 px/frame over texture)
both keep IoU >= 0.97 for 10 frames, but at 1080p DIS (preset MEDIUM at 640 px) takes a
fraction of Farneback's time per frame, and DIS's variational refinement keeps motion
boundaries sharper. Figures in tests/test_propagate.py and the commit message.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Mapping

import cv2
import numpy as np

from app.frame_tools import mask_iou
from app.mask_ops import _check as _check_mask

DIRECTIONS = ("forward", "backward")
PHOTO_TOL = 24.0  # grey levels (0..255) a tracked pixel may change between two frames


@dataclass
class PropagationStep:
    frame: int
    mask: np.ndarray        # bool [H, W]
    confidence: float       # 0..1: share of the mask's pixels with consistent flow
    flagged: bool           # confidence < min_confidence: the last step propagate yields


def propagate(get_frame: Callable[[int], np.ndarray], mask: np.ndarray, start: int, direction: str,
              count: int | None, num_frames: int, *, anchors: Mapping[int, np.ndarray] = {},
              min_confidence: float = 0.5, cancel: Callable[[], bool] | None = None,
              flow_side: int = 480) -> Iterator[PropagationStep]:
    """Carry `mask` (on frame `start`) through the video, one PropagationStep per frame.

    get_frame(i): frame i as RGB uint8 [H, W, 3] (or grey [H, W]), same size as the mask.
    direction: "forward" (start+1, start+2, ...) or "backward" (start-1, ...).
    count: how many frames to move through (anchors included), at most to the end of the
        video; None = to the end (frame num_frames-1, or 0 going backward).
    anchors: frame -> bool mask of frames an annotator saved. They are never yielded (so never
        overwritten); reaching one, propagation continues from the anchor's mask (a
        correction re-seeds the track). An empty anchor means "the object is not here":
        propagation stops there.
    min_confidence: a step whose confidence is below it is yielded with flagged=True, and
        propagation stops after it.
    cancel(): checked before each frame; when it returns True, the generator ends.
    flow_side: the longer side, in px, at which flow is computed (speed; the mask stays full size).

    Arguments are checked here, before the first frame is read; frames are read lazily.
    """
    mask = _check_mask(mask)
    frames = _frames_to_visit(start, direction, count, num_frames)
    if not mask.any():
        raise ValueError(f"the mask on frame {start} is empty; draw the object on frame {start} "
                         "before propagating it")
    if not 0.0 <= float(min_confidence) <= 1.0:
        raise ValueError(f"min_confidence must be between 0 and 1, got {min_confidence!r}")
    if not isinstance(flow_side, (int, np.integer)) or flow_side < 16:
        raise ValueError(f"flow_side must be an integer >= 16 (pixels), got {flow_side!r}")
    anchors = {int(f): _check_anchor(f, a, mask.shape) for f, a in anchors.items()}
    return _run(get_frame, mask, start, frames, anchors, float(min_confidence), cancel, flow_side)


def _run(get_frame, mask, start, frames, anchors, min_confidence, cancel, flow_side):
    flow = _Flow(mask.shape, flow_side)
    grey = _grey(get_frame(start), mask.shape, start)
    for index in frames:
        if cancel is not None and cancel():
            return
        new_grey = _grey(get_frame(index), mask.shape, index)
        if index in anchors:
            mask, grey = anchors[index], new_grey
            if not mask.any():
                return
            continue
        mask, confidence = flow.step(grey, new_grey, mask)
        flagged = confidence < min_confidence
        yield PropagationStep(frame=index, mask=mask, confidence=confidence, flagged=flagged)
        if flagged:
            return
        grey = new_grey


def needs_review(masks: Mapping[int, np.ndarray], confidences: Mapping[int, float] | None = None,
                 min_score: float = 0.0) -> list[int]:
    """Frames ordered by how much they need a look, most first (ties: earlier frame first).

    A frame's score is 1 - IoU with the previous frame (frame - 1; a frame whose previous frame
    is not in `masks` is not scored), or 1 - its propagation confidence when that is larger.
    Pass empty masks for empty frames so an object that appears or vanishes counts as a change.
    Only frames scoring above `min_score` are listed.
    """
    scores = review_scores(masks, confidences)
    return [f for f, s in sorted(scores.items(), key=lambda fs: (-fs[1], fs[0])) if s > min_score]


def review_scores(masks: Mapping[int, np.ndarray],
                  confidences: Mapping[int, float] | None = None) -> dict[int, float]:
    """frame -> score in 0..1 (see needs_review)."""
    scores = {}
    for frame in sorted(masks):
        if frame - 1 in masks:
            scores[frame] = 1.0 - mask_iou(masks[frame - 1], masks[frame])
    for frame, confidence in (confidences or {}).items():
        if frame in masks:
            scores[frame] = max(scores.get(frame, 0.0), 1.0 - float(confidence))
    return scores


# -- internals --------------------------------------------------------------------------------
class _Flow:
    """One propagation step at a time: flow between two grey frames, and the mask warp."""

    def __init__(self, shape: tuple[int, int], flow_side: int):
        height, width = shape
        self.shape = shape
        self.scale = min(1.0, flow_side / max(height, width))
        self.small = (max(1, round(width * self.scale)), max(1, round(height * self.scale)))
        self.dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        self.dis.setFinestScale(0)  # the preset stops at 1/4 resolution; small objects need full
        self.grid = _grid(self.small[1], self.small[0])
        self.full_grid = _grid(height, width) if self.scale < 1.0 else self.grid
        self.band = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BAND + 1, 2 * BAND + 1))

    def _shrink(self, image: np.ndarray) -> np.ndarray:
        return image if self.scale == 1.0 else cv2.resize(image, self.small, interpolation=cv2.INTER_AREA)

    def _grow(self, image: np.ndarray, interpolation=cv2.INTER_LINEAR) -> np.ndarray:
        return image if self.scale == 1.0 else cv2.resize(image, self.shape[::-1], interpolation=interpolation)

    def step(self, old_grey: np.ndarray, new_grey: np.ndarray, old_mask: np.ndarray) -> tuple[np.ndarray, float]:
        old_g, new_g = self._shrink(old_grey), self._shrink(new_grey)
        old_m = self._shrink(old_mask.view(np.uint8).astype(np.float32))
        back = self.dis.calc(new_g, old_g, None)    # new(p) ~ old(p + back(p))
        fwd = self.dis.calc(old_g, new_g, None)     # old(q) ~ new(q + fwd(q))
        map_x, map_y = self.grid[0] + back[..., 0], self.grid[1] + back[..., 1]

        # 1. Which pixels' flow can be trusted: forward and backward flow agree, the pixel looks
        #    like the one it is pulled from, and that one lies inside the frame.
        fwd_at = cv2.remap(fwd, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        consistent = (np.sum((back + fwd_at) ** 2, axis=2)
                      <= 0.01 * (np.sum(back ** 2, axis=2) + np.sum(fwd_at ** 2, axis=2)) + 0.5)
        pulled = cv2.remap(old_g, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        height, width = old_g.shape
        reliable = (consistent & (np.abs(new_g.astype(np.int16) - pulled) <= PHOTO_TOL)
                    & (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1))

        # 2. Flow smears across outlines (DIS patches straddle them): background just behind a
        #    moving object inherits some of its motion and would pull the object's old pixels
        #    along, so the mask would grow every frame. Pixels whose flow is not reliably that of
        #    the object's core or of the background well away from it move instead with the
        #    object's own motion: a Gaussian-weighted mean of the reliable core flow near them.
        inside = (old_m >= 0.5).view(np.uint8)
        if not inside.any():  # smaller than a pixel at flow resolution
            inside = (old_m > 0).view(np.uint8)
        core = cv2.erode(inside, self.band)
        if not core.any():  # thinner than the band: use the whole mask
            core = inside
        away = 1 - cv2.dilate((old_m > 0).view(np.uint8), self.band)
        from_core = cv2.remap(core.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR) >= 0.5
        from_away = cv2.remap(away.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=1) >= 0.5
        tracked = (reliable & from_core).astype(np.float32)
        weight = cv2.GaussianBlur(tracked, (0, 0), 2.0 * BAND)
        core_flow = cv2.GaussianBlur(back * tracked[..., None], (0, 0), 2.0 * BAND)
        core_flow /= np.maximum(weight, 1e-6)[..., None]
        use_core = (weight > 0.05) & ~(reliable & (from_core | from_away))
        flow = np.where(use_core[..., None], core_flow, back)

        # 3. Pull the full-resolution mask along the flow (a float warp, thresholded at 0.5). Keep
        #    only pixels whose own flow is reliable or that moved with reliably tracked core
        #    pixels nearby: the rest (an object leaving the frame, stray flow) has no support.
        if self.scale < 1.0:
            flow = self._grow(flow) / self.scale
        warped = cv2.remap(old_mask.view(np.uint8).astype(np.float32), self.full_grid[0] + flow[..., 0],
                           self.full_grid[1] + flow[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        candidate = warped >= 0.5
        supported = (reliable | use_core).view(np.uint8)
        new_mask = candidate & self._grow(supported, cv2.INTER_NEAREST).view(bool)
        if not new_mask.any():
            return new_mask, 0.0
        # 4. Confidence: the share of the warped mask that is kept and whose own flow is reliable.
        return new_mask, float(np.count_nonzero(self._small_mask(new_mask) & reliable)
                               / max(1, np.count_nonzero(self._small_mask(candidate))))

    def _small_mask(self, mask: np.ndarray) -> np.ndarray:
        """The mask at flow resolution: pixels at least half covered (any, for a tiny mask)."""
        coverage = self._shrink(mask.view(np.uint8).astype(np.float32))
        small = coverage >= 0.5
        return small if small.any() else coverage > 0


BAND = 4  # px at flow resolution: how far DIS flow smears across an outline


def _grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[:height, :width].astype(np.float32)
    return xs, ys


def _frames_to_visit(start, direction, count, num_frames) -> range:
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 1:
        raise ValueError(f"num_frames must be an integer >= 1, got {num_frames!r}")
    if not isinstance(start, (int, np.integer)) or not 0 <= start < num_frames:
        raise ValueError(f"start frame {start!r} is outside the video (frames 0..{num_frames - 1})")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'forward' or 'backward', got {direction!r}")
    if count is not None and (not isinstance(count, (int, np.integer)) or isinstance(count, bool)
                              or count < 1):
        raise ValueError(f"count must be an integer >= 1 (frames to propagate through), or None to go "
                         f"to the end, got {count!r}")
    if direction == "forward":
        stop = num_frames if count is None else min(num_frames, start + count + 1)
        return range(start + 1, stop)
    stop = -1 if count is None else max(-1, start - count - 1)
    return range(start - 1, stop, -1)


def _check_anchor(frame, anchor, shape) -> np.ndarray:
    try:
        anchor = _check_mask(anchor)
    except ValueError as err:
        raise ValueError(f"anchor on frame {frame}: {err}") from None
    if anchor.shape != shape:
        raise ValueError(f"anchor on frame {frame} is shape {list(anchor.shape)} but the mask is "
                         f"{list(shape)}; anchors must be masks of the video's frame size")
    return anchor


def _grey(frame, shape, index) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.shape[:2] != shape or frame.ndim not in (2, 3):
        raise ValueError(f"frame {index} is shape {list(frame.shape)} but the mask is {list(shape)}; "
                         "get_frame must return frames of the mask's size")
    if frame.dtype != np.uint8:
        raise ValueError(f"frame {index} is {frame.dtype}; get_frame must return uint8 RGB or grey frames")
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    code = {3: cv2.COLOR_RGB2GRAY, 4: cv2.COLOR_RGBA2GRAY}.get(frame.shape[2])
    if code is None:
        raise ValueError(f"frame {index} has {frame.shape[2]} channels; expected RGB (3), RGBA (4) or grey")
    return cv2.cvtColor(frame, code)
