"""SAM 2 tracking against transformers' own video flow (a session holding the whole clip, every
prompt added first, then propagate_in_video_iterator): masks equal; anchors kept; absent frames.
The reference runs are checked on SAM 2.1 and on EdgeTAM (its spatial-perceiver memory)."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine import Cancelled
from engine.sam2.checkpoints import load_model
from engine.sam2.tracker import track
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

T, H, W = 8, 36, 48


def seed_mask(frame: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    x = 2 * frame % (W - 12)
    m[8:20, x:x + 12] = True
    return m


def reference(model_name, frames, start, masks=None, points=None, reverse=False, count=None):
    """{frame: (mask, object score)} the way transformers' docs run SAM 2 on a video."""
    from transformers.models.edgetam_video.modeling_edgetam_video import (
        EdgeTamVideoInferenceSession,
    )
    from transformers.models.sam2_video.modeling_sam2_video import Sam2VideoInferenceSession
    model = fx.models(model_name)[1]
    video = torch.cat([fx.reference_pixels(f) for f in frames])
    session = (EdgeTamVideoInferenceSession if model_name == "edgetam" else Sam2VideoInferenceSession)(video=video, video_height=H, video_width=W, dtype=torch.float32)
    with torch.no_grad():
        for frame, mask in (masks or {}).items():  # Sam2VideoProcessor.process_new_mask_for_video_frame
            obj = session.obj_id_to_idx(1)
            m = F.interpolate(torch.tensor(mask, dtype=torch.float32)[None, None], size=(fx.SIZE, fx.SIZE),
                              mode="bilinear", align_corners=False, antialias=True)
            session.add_mask_inputs(obj, frame, (m >= 0.5).float())
            session.obj_with_new_inputs = [1]
            model(inference_session=session, frame_idx=frame)
        if points:
            obj = session.obj_id_to_idx(1)
            session.add_point_inputs(obj, start, {
                "point_coords": torch.tensor([[fx.reference_coords([p[:2] for p in points], H, W)]]),
                "point_labels": torch.tensor([[[p[2] for p in points]]], dtype=torch.int32)})
            session.obj_with_new_inputs = [1]
            model(inference_session=session, frame_idx=start)
        out = {}
        for step in model.propagate_in_video_iterator(session, start_frame_idx=start, reverse=reverse,
                                                      max_frame_num_to_track=count):
            out[step.frame_idx] = (fx.reference_masks(step.pred_masks[0, 0], H, W)[0],
                                   float(step.object_score_logits.reshape(-1)[0]))
    return out


@functools.lru_cache(maxsize=None)
def engine_model(name):
    return load_model(fx.model_dir(name), video=True)


def run(model_name, frames, start, **options):
    return list(track(engine_model(model_name), lambda i: frames[i], len(frames), start, **options))


@pytest.mark.parametrize("family", ["tiny", "edgetam"])
def test_forward_with_an_anchor_matches_the_reference_and_keeps_the_anchor(family):
    frames = fx.clip(T)
    anchor = np.zeros((H, W), bool)
    anchor[4:30, 5:40] = True
    steps = run(family, frames, 1, seed_mask=seed_mask(1), anchors={4: anchor, 0: anchor})
    expected = reference(family, frames, 1, masks={1: seed_mask(1), 4: anchor})
    assert [s.frame for s in steps] == [2, 3, 5, 6, 7]  # the anchor is not ours to yield; 0 is behind
    for s in steps:
        np.testing.assert_array_equal(s.mask, expected[s.frame][0], err_msg=f"frame {s.frame}")
        assert s.score == pytest.approx(expected[s.frame][1], rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("family", ["tiny", "edgetam"])
def test_backward_from_clicks_with_a_count(family):
    frames = fx.clip(T)
    points = [(14, 12, 1), (40, 30, 0)]
    steps = run(family, frames, 6, points=points, direction="backward", count=3)
    expected = reference(family, frames, 6, points=points, reverse=True, count=3)
    assert [s.frame for s in steps] == [6, 5, 4, 3]  # clicks: the seed frame's own mask comes first
    for s in steps:
        np.testing.assert_array_equal(s.mask, expected[s.frame][0], err_msg=f"frame {s.frame}")


def test_absent_frames_are_empty_and_marked():
    frames = fx.clip(T)
    steps = run("absent", frames, 0, seed_mask=seed_mask(0))
    expected = reference("absent", frames, 0, masks={0: seed_mask(0)})
    absent = [s.frame for s in steps if s.absent]
    assert absent and len(absent) < len(steps)  # the fixture makes both happen
    assert absent == [f for f in range(1, T) if expected[f][1] <= 0]
    for s in steps:
        assert not s.mask.any() if s.absent else np.array_equal(s.mask, expected[s.frame][0])


def test_cancel_through_progress_stops_the_run():
    frames = fx.clip(T)
    seen = []

    def progress(fraction, message):
        if len(seen) == 2:
            raise Cancelled("stop")
        seen.append(message)

    with pytest.raises(Cancelled):
        for _ in run("tiny", frames, 0, seed_mask=seed_mask(0), progress=progress):
            pass
    assert seen == ["frame 1", "frame 2"]


def test_memory_is_a_window(monkeypatch):
    """The session holds the conditioning frames and the last `window` tracked frames, no more
    (SHORT_MEMORY reads back 2 frames, so the window is 2), and yet matches the reference."""
    from engine.sam2 import tracker
    frames = fx.clip(T)
    sizes = []
    forget = tracker._forget_before

    def spy(session, obj, frame, window, reverse):
        forget(session, obj, frame, window, reverse)
        sizes.append((len(session.output_dict_per_obj[obj]["non_cond_frame_outputs"]),
                      len(session.output_dict_per_obj[obj]["cond_frame_outputs"])))
    monkeypatch.setattr(tracker, "_forget_before", spy)
    steps = run("short", frames, 0, seed_mask=seed_mask(0))
    assert max(n for n, _ in sizes) == 2 and {c for _, c in sizes} == {1}
    expected = reference("short", frames, 0, masks={0: seed_mask(0)})
    for s in steps:
        np.testing.assert_array_equal(s.mask, expected[s.frame][0], err_msg=f"frame {s.frame}")


@pytest.mark.parametrize("options, message", [
    (dict(seed_mask=None), "seed the track"),
    (dict(seed_mask=np.zeros((5, 5), bool)), "bool mask of the frame's size"),
    (dict(seed_mask=seed_mask(0), direction="up"), "'forward' or 'backward'"),
    (dict(seed_mask=seed_mask(0), count=0), "count must be"),
])
def test_bad_arguments_fail_before_tracking(options, message):
    frames = fx.clip(3)
    with pytest.raises(ValueError, match=message):
        run("tiny", frames, 0, **options)
