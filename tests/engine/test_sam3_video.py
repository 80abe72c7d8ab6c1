"""The sam3 engine on a video (tiny seeded weights): the detector's best instance on the first frame
where it is found, carried on by the SAM 3 tracker; against Sam3Model and Sam3TrackerVideoModel
called directly, step by step: masks equal. Plus the contract: shape, dtype, progress, cancel."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine
from engine import Cancelled, EngineService
from engine.sam3 import load
from engine.sam3.presets import write_video_model_dir
from tests.engine.test_sam3_concept import model_dir, reference
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

T, H, W = 6, 36, 48
TEXT = "the red ball"


@functools.lru_cache(maxsize=None)
def tracker_dir():
    """The tiny SAM 3 tracker with its object-score head biased up: unchanged, its random weights call
    the object absent on every frame (score about -0.009), which would leave nothing to compare."""
    from engine.sam2.presets import SAM3_TRACKER_TINY, make_video_model
    model = make_video_model(SAM3_TRACKER_TINY, seed=0)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.add_(1.0)
    model.save_pretrained(fx.root() / "sam3-tracker-present")
    return fx.root() / "sam3-tracker-present"


def segmenter(threshold):
    return load(model=str(model_dir()), tracker=str(tracker_dir()), threshold=threshold)


def reference_track(frames, threshold, detector=None, tracker=None):
    """Sam3Model on each frame until the best score passes the threshold, then the tracker seeded there."""
    out = np.zeros(frames.shape[:3], bool)
    for start in range(len(frames)):
        masks, scores = reference(frames[start], TEXT, detector)
        if scores[0] > threshold and masks[0].any():
            break
    else:
        return out, None
    out[start] = masks[0]
    for frame, (mask, _) in reference_follow(frames, start, masks[0], tracker).items():
        out[frame] = mask
    return out, start


def reference_follow(frames, start, seed_mask, tracker=None):
    """Sam3TrackerVideoModel's own session (the whole clip, 112 px, 0.5/0.5) seeded with `seed_mask` on
    `start` and propagated: {frame after start: (mask, empty where the object score is <= 0; score)}."""
    from transformers import Sam3TrackerVideoModel
    from transformers.models.sam3_tracker_video.modeling_sam3_tracker_video import (
        Sam3TrackerVideoInferenceSession,
    )
    model = Sam3TrackerVideoModel.from_pretrained(tracker or tracker_dir()).eval()
    x = torch.tensor(frames).permute(0, 3, 1, 2).float()
    video = (F.interpolate(x, size=(112, 112), mode="bilinear", antialias=True, align_corners=False) / 255 - 0.5) / 0.5
    session = Sam3TrackerVideoInferenceSession(video=video, video_height=H, video_width=W, dtype=torch.float32)
    out = {}
    with torch.no_grad():
        obj = session.obj_id_to_idx(1)
        m = F.interpolate(torch.tensor(seed_mask, dtype=torch.float32)[None, None], size=(112, 112),
                          mode="bilinear", align_corners=False, antialias=True)
        session.add_mask_inputs(obj, start, (m >= 0.5).float())
        session.obj_with_new_inputs = [1]
        model(inference_session=session, frame_idx=start)
        for step in model.propagate_in_video_iterator(session, start_frame_idx=start):
            if step.frame_idx != start:
                score = float(step.object_score_logits.reshape(-1)[0])
                mask = fx.reference_masks(step.pred_masks[0, 0], H, W)[0]
                out[step.frame_idx] = (mask if score > 0 else np.zeros_like(mask), score)
    return out


def test_track_from_the_first_frame_matches_the_models_called_directly():
    frames = fx.clip(T, H, W)
    expected, start = reference_track(frames, threshold=0.0)
    assert start == 0 and all(expected[t].any() for t in range(T))
    out = segmenter(0.0).segment_video(frames, TEXT)
    assert out.shape == (T, H, W) and out.dtype == bool
    np.testing.assert_array_equal(out, expected)


def test_the_full_sam3_checkpoint_tracks_with_its_own_tracker():
    """facebook/sam3's layout (sam3_video): Sam3Model and Sam3TrackerVideoModel both load strictly from it."""
    folder = write_video_model_dir(fx.root() / "sam3-video", object_score_bias=1.0)
    frames = fx.clip(T, H, W)
    expected, start = reference_track(frames, 0.0, detector=folder, tracker=folder)
    assert start == 0 and all(expected[t].any() for t in range(T))
    np.testing.assert_array_equal(load(model=str(folder), threshold=0.0).segment_video(frames, TEXT), expected)


def test_frames_before_the_first_detection_stay_empty():
    frames = fx.clip(T, H, W)
    frames[2] = fx.image(H, W, seed=1)  # the one frame where the random detector scores higher
    scores = [float(reference(f, TEXT)[1][0]) for f in frames[:3]]
    assert max(scores[:2]) < scores[2]
    threshold = (max(scores[:2]) + scores[2]) / 2
    expected, start = reference_track(frames, threshold)
    assert start == 2 and all(expected[t].any() for t in range(2, T))
    out = segmenter(threshold).segment_video(frames, TEXT)
    assert not out[:2].any()
    np.testing.assert_array_equal(out, expected)


def test_not_found_anywhere_is_an_empty_track():
    out = segmenter(1.0).segment_video(fx.clip(3, H, W), TEXT)
    assert out.shape == (3, H, W) and not out.any()


def test_service_reports_each_frame_and_cancels():
    paths = {"model": str(model_dir()), "tracker": str(tracker_dir()), "threshold": 0.0}
    service = EngineService(device="cpu", paths={"sam3": paths})
    seen = []
    out = service.segment_video("sam3", fx.clip(T, H, W), TEXT, progress=lambda f, m: seen.append(f))
    assert out.shape == (T, H, W) and out.dtype == bool
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= T

    def cancel_at_third(fraction, message):
        seen.append(fraction)
        if len(seen) == 3:
            service.cancel()
    seen.clear()
    with pytest.raises(Cancelled):
        service.segment_video("sam3", fx.clip(T, H, W), TEXT, progress=cancel_at_third)
    assert len(seen) == 3


def test_video_without_tracker_weights_says_what_to_set(monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM3_TRACKER_MODEL", raising=False)
    with pytest.raises(engine.EngineNotConfigured, match="--sam3-tracker-model"):
        load(model=str(model_dir())).segment_video(fx.clip(2, H, W), TEXT)
    assert "sam3" in engine.available_segmenters("video")


def test_studio_saves_the_track_of_a_video(tmp_path):
    from app.studio.studio import Studio
    from tests.helpers.media_fixtures import write_video
    paths = {"model": str(model_dir()), "tracker": str(tracker_dir()), "threshold": 0.0}
    studio = Studio(tmp_path / "p.sqlite", device="cpu", engine_paths={"sam3": paths})
    try:
        write_video(tmp_path / "clip.avi", frames=4, size=(W, H))
        media = studio.add_media(tmp_path / "clip.avi")[0]
        eid = studio.store.add_expression(media["id"], TEXT)["id"]
        assert studio.segment(eid, "sam3")["frames"] == 4
        frames = np.stack([studio.frame(media["id"], t) for t in range(4)])
        expected, _ = reference_track(frames, 0.0)
        for t in range(4):
            np.testing.assert_array_equal(studio.store.get_mask(eid, t), expected[t])
        assert expected.any()
    finally:
        studio.close()
