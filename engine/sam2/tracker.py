"""Video tracking with SAM 2's memory (Sam2VideoModel and its EdgeTAM / SAM 3 tracker kin).

    for step in track(model, get_frame, num_frames, start=10, seed_mask=mask, direction="forward",
                      anchors={40: manual_mask}):
        step.frame, step.mask, step.absent

Streaming and bounded: frames are read one at a time through `get_frame(i)` (the studio's frame
cache), never as a clip; the session keeps only the outputs the model can still attend to (the
last frames it reads back: 7 memory frames and 16 object pointers in SAM 2.1) plus the
conditioning frames, so memory stays flat however long the run.

Anchors (frames an annotator drew) go in as conditioning masks before the run starts, exactly as
SAM 2's own flow adds every prompt before propagating; they are never yielded, so never
overwritten. A frame whose object score is <= 0 (SAM 2's "object not present") is yielded with
absent=True and an empty mask.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.sam2.predictor import (
    MEAN,
    STD,
    _check_box,
    _check_points,
    preprocess,
    scale_points,
    upscale,
)

OBJECT_ID = 1


@dataclass
class TrackStep:
    frame: int
    mask: np.ndarray     # bool [H, W]; empty when absent
    score: float         # SAM 2's object score logit (> 0: the object is there)
    absent: bool


def session_class(model):
    """The inference-session class that goes with `model` (Sam2Video-, EdgeTamVideo-, ...)."""
    module = sys.modules[type(model).__module__]
    names = [n for n in dir(module) if n.endswith("InferenceSession")]
    if len(names) != 1:
        raise TypeError(f"{type(model).__name__} is not a SAM 2-style video model (no inference session class)")
    return getattr(module, names[0])


def new_session(model, get_frame: Callable[[int], np.ndarray], num_frames: int, shape: tuple[int, int],
                normalization=(MEAN, STD)):
    """A session that pulls frames through get_frame when the model asks for them."""
    base = session_class(model)
    size = int(model.config.image_size)
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype

    class StreamingSession(base):
        @property
        def num_frames(self) -> int:  # the clip's length, though no frame is held
            return num_frames

        def get_frame(self, frame_idx: int) -> torch.Tensor:
            frame = get_frame(frame_idx)
            if frame.shape[:2] != tuple(shape):
                raise ValueError(f"frame {frame_idx} is {list(frame.shape[:2])}, not {list(shape)} like the "
                                 "others; the video's frames must share one size")
            return preprocess(frame, size, device, dtype, *normalization)[0]

    return StreamingSession(video=None, video_height=shape[0], video_width=shape[1], inference_device=device,
                            inference_state_device=device, video_storage_device="cpu", dtype=dtype,
                            max_vision_features_cache_size=1)


def add_mask(session, frame: int, mask: np.ndarray, size: int) -> None:
    """A bool mask as a conditioning input on `frame` (resized, thresholded at 0.5, as
    Sam2VideoProcessor does)."""
    obj = session.obj_id_to_idx(OBJECT_ID)
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    session.add_mask_inputs(obj, frame, (m >= 0.5).float())
    session.remove_point_inputs(obj, frame)
    session.obj_with_new_inputs = [OBJECT_ID]


def add_prompts(session, frame: int, points: Sequence, box, shape, size: int) -> None:
    """Clicks [(x, y, label)] and/or a box (it goes first, as labels 2 and 3) on `frame`."""
    obj = session.obj_id_to_idx(OBJECT_ID)
    pts, labels = _check_points(points, shape)
    coords, codes = scale_points(pts, shape, size), labels.astype(np.int32)
    if box is not None:
        corners = scale_points(np.asarray(_check_box(box, shape), np.float32).reshape(2, 2), shape, size)
        coords, codes = np.concatenate([corners, coords]), np.concatenate([np.array([2, 3], np.int32), codes])
    if not len(coords):
        raise ValueError("seed the track with a mask, clicks or a box")
    session.add_point_inputs(obj, frame, {"point_coords": torch.from_numpy(coords)[None, None],
                                          "point_labels": torch.from_numpy(codes)[None, None]})
    session.remove_mask_inputs(obj, frame)
    session.obj_with_new_inputs = [OBJECT_ID]


def frames_to_visit(start: int, direction: str, count: int | None, num_frames: int) -> list[int]:
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction must be 'forward' or 'backward', not {direction!r}")
    if not 0 <= start < num_frames:
        raise ValueError(f"start frame {start} is outside the video (frames 0..{num_frames - 1})")
    if count is not None and (not isinstance(count, (int, np.integer)) or count < 1):
        raise ValueError(f"count must be a whole number of frames >= 1 (or None: to the end), got {count!r}")
    if direction == "forward":
        end = num_frames - 1 if count is None else min(num_frames - 1, start + count)
        return list(range(start + 1, end + 1))
    end = 0 if count is None else max(0, start - count)
    return list(range(start - 1, end - 1, -1))


def track(model, get_frame: Callable[[int], np.ndarray], num_frames: int, start: int, *,
          seed_mask: np.ndarray | None = None, points: Sequence = (), box=None, direction: str = "forward",
          count: int | None = None, anchors: Mapping[int, np.ndarray] = {}, window: int | None = None,
          progress: Callable[[float, str], None] | None = None, normalization=(MEAN, STD)) -> Iterator[TrackStep]:
    """Track one object from frame `start`, seeded by `seed_mask` or by points/box there.

    Yields one TrackStep per frame visited (anchors are visited but not yielded); with prompts,
    the seed frame itself comes first. `progress(fraction, message)` is called per frame; the
    engine service's raises Cancelled to stop the run. Arguments are checked before any frame
    is read.
    """
    order = frames_to_visit(start, direction, count, num_frames)
    first = get_frame(start)
    shape = first.shape[:2]
    if seed_mask is not None and (seed_mask.dtype != bool or seed_mask.shape != shape):
        raise ValueError(f"seed_mask must be a bool mask of the frame's size {list(shape)}")
    if seed_mask is None and not len(points) and box is None:
        raise ValueError("seed the track with a mask, clicks or a box on the start frame")
    visited = set(order)
    anchors = {int(f): a for f, a in anchors.items() if int(f) in visited}
    # SAM 2 reads back num_maskmem - 1 memory frames and max_object_pointers_in_encoder - 1 pointers
    needed = max(int(model.config.num_maskmem), int(model.config.max_object_pointers_in_encoder))
    window = needed if window is None else int(window)
    if window < needed:
        raise ValueError(f"window must be at least {needed} frames (what the model reads back), got {window}")
    return _run(model, get_frame, num_frames, start, shape, seed_mask, points, box, direction, order, anchors,
                window, progress, normalization)


def _run(model, get_frame, num_frames, start, shape, seed_mask, points, box, direction, order, anchors, window,
         progress, normalization) -> Iterator[TrackStep]:
    size = int(model.config.image_size)
    session = new_session(model, get_frame, num_frames, shape, normalization)
    reverse = direction == "backward"
    with torch.inference_mode():
        # 1. Every prompt goes in before propagating: the seed, then each anchor on the way.
        if seed_mask is not None:
            add_mask(session, start, seed_mask, size)
        else:
            add_prompts(session, start, points, box, shape, size)
        seed = model(inference_session=session, frame_idx=start)
        if seed_mask is None:
            yield _step(seed, start, shape)
        for frame, mask in sorted(anchors.items()):
            add_mask(session, frame, mask, size)
            model(inference_session=session, frame_idx=frame)
        # 2. Propagate, one frame at a time, forgetting what the model can no longer attend to.
        obj = session.obj_id_to_idx(OBJECT_ID)
        for done, frame in enumerate(order):
            if progress is not None:
                progress(done / max(1, len(order)), f"frame {frame}")
            out = model(inference_session=session, frame_idx=frame, reverse=reverse)
            _forget_before(session, obj, frame, window, reverse)
            if frame not in anchors:
                yield _step(out, frame, shape)
        if progress is not None:
            progress(1.0, "done")


def _step(out, frame: int, shape) -> TrackStep:
    score = float(out.object_score_logits.reshape(-1)[0])
    mask = (upscale(out.pred_masks[0, 0].float(), tuple(shape)) > 0).cpu().numpy()
    absent = score <= 0
    return TrackStep(frame=frame, mask=np.zeros(shape, bool) if absent else mask, score=score, absent=absent)


def _forget_before(session, obj: int, frame: int, window: int, reverse: bool) -> None:
    """Drop tracked outputs more than `window` frames behind: SAM 2 never reads them again."""
    for store in (session.output_dict_per_obj[obj]["non_cond_frame_outputs"], session.frames_tracked_per_obj[obj]):
        for f in [f for f in store if (f - frame if reverse else frame - f) >= window]:
            del store[f]
