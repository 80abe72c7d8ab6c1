"""SAM 3 on a video, as SAM 3 itself is built: the concept detector finds the expression's instances,
and a SAM 2-family tracker (the SAM 3 tracker, or any SAM 2 video model) carries each one on with
its memory.

The rule, frame by frame:
1. Seed. The detector looks at frames 0, 1, 2, ... until one has an instance scoring above the
   threshold. There it keeps up to k instances, best first, dropping any whose mask overlaps a
   better kept one (mask IoU > DUPLICATE_IOU) and any empty mask. Frames before stay empty.
2. Track. Each kept instance gets its own tracker session, seeded with its mask; the sessions step
   through the clip together, one frame at a time. A frame whose object score says "not present"
   is empty for that instance.
3. Re-detect. When an instance has been absent for REDETECT_EVERY frames in a row, the detector
   looks at the current frame (and again every REDETECT_EVERY absent frames after). Lost instances,
   best first, each take the best detection above the threshold whose mask does not overlap
   (IoU > DUPLICATE_IOU) any other instance's mask on that frame; that detection is the instance's
   mask there, and its tracker restarts from it (a fresh session: the lost memory is dropped).

The best-scoring seed instance is the proposal; the others are candidates the annotator can pick.
Frames are read one at a time; progress is reported once per frame and its Cancelled stops the run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from engine.sam2.tracker import TrackStep, track
from engine.track_masks import PackedTrack, TrackCandidate

K = 3                 # instances followed per video
DUPLICATE_IOU = 0.5   # above this mask IoU two instances are the same one
REDETECT_EVERY = 3    # absent frames in a row before the detector looks again (and between looks)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def pick_instances(masks: np.ndarray, scores: np.ndarray, threshold: float, k: int,
                   taken: list[np.ndarray] = ()) -> list[int]:
    """Indices of up to k detections (masks/scores best first) above `threshold`, non-empty, none
    overlapping a better pick or a mask in `taken`."""
    picked: list[int] = []
    for i in range(len(scores)):
        if len(picked) == k or scores[i] <= threshold:
            break
        if masks[i].any() and all(mask_iou(masks[i], other) <= DUPLICATE_IOU
                                  for other in [*taken, *(masks[j] for j in picked)]):
            picked.append(i)
    return picked


@dataclass
class _Followed:
    candidate: TrackCandidate
    steps: Iterator[TrackStep]
    absent_run: int = 0


def video_instances(detector, tracker_model, normalization, frames: np.ndarray, expression: str,
                    progress: Optional[Callable[[float, str], None]] = None, k: int = K) -> list[TrackCandidate]:
    """frames uint8 [T, H, W, 3] -> up to k instances, each tracked through the clip, best first
    (an empty list when the concept is on no frame)."""
    total, shape = len(frames), frames.shape[1:3]
    report = progress or (lambda fraction, message: None)

    def follow(start: int, mask: np.ndarray) -> Iterator[TrackStep]:
        return track(tracker_model, lambda i: frames[i], total, start, seed_mask=mask, normalization=normalization)

    # Inference mode around the whole run: the tracker sessions' own inference-mode contexts
    # interleave, so each must be closed inside it (finally), never later by the garbage collector.
    with torch.inference_mode():
        seed = _seed(detector, frames, expression, k, report)
        if seed is None:
            report(1.0, "the concept was not found in any frame")
            return []
        start, found, picks = seed
        followed = []
        try:
            for i in picks:
                candidate = TrackCandidate(start, float(found.scores[i]), PackedTrack(total, shape))
                candidate.track[start] = found.masks[i]
                followed.append(_Followed(candidate, follow(start, found.masks[i])))
            # 2. Track every instance one frame at a time; 3. re-detect the ones lost for a while.
            for frame in range(start + 1, total):
                report(frame / total, f"tracking {len(followed)} instance(s): frame {frame}")
                for one in followed:
                    step = next(one.steps)
                    one.candidate.track[frame] = step.mask
                    one.absent_run = one.absent_run + 1 if step.absent else 0
                lost = [one for one in followed if one.absent_run and one.absent_run % REDETECT_EVERY == 0]
                if lost:
                    _redetect(detector, frames[frame], expression, frame, followed, lost, follow)
        finally:
            for one in followed:
                one.steps.close()
    report(1.0, "done")
    return [one.candidate for one in followed]


def _seed(detector, frames, expression, k, report):
    """1. The first frame where the concept is found: (frame, its detections, the picks), or None."""
    for start in range(len(frames)):
        report(start / len(frames), f"looking for {expression!r} in frame {start}")
        found = detector.instances(frames[start], expression)
        picks = pick_instances(found.masks, found.scores, detector.threshold, k)
        if picks:
            return start, found, picks
    return None


def _redetect(detector, image, expression, frame, followed, lost, follow) -> None:
    found = detector.instances(image, expression)
    for one in lost:
        others = [other.candidate.track[frame] for other in followed if other is not one]
        picks = pick_instances(found.masks, found.scores, detector.threshold, 1, taken=others)
        if picks:
            mask = found.masks[picks[0]]
            one.candidate.track[frame] = mask
            one.steps.close()
            one.steps, one.absent_run = follow(frame, mask), 0

