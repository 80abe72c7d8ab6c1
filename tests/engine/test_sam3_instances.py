"""sam3 on a video follows several instances and finds lost ones again (engine/sam3/video.py's rule),
against Sam3Model and Sam3TrackerVideoModel called directly on tiny seeded weights: masks equal."""
import functools

import numpy as np
import pytest
import torch

from engine.sam2.presets import SAM3_TRACKER_TINY, make_video_model
from engine.sam3 import load
from engine.sam3.video import DUPLICATE_IOU, REDETECT_EVERY, mask_iou, pick_instances
from engine.track_masks import PackedTrack
from tests.engine.test_sam3_concept import model_dir, reference
from tests.engine.test_sam3_video import TEXT, H, W, reference_follow, tracker_dir
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@functools.lru_cache(maxsize=None)
def blank_absent_tracker():
    """The tiny SAM 3 tracker with a loud object-score head: measured on fx.clip, it calls the object
    present on textured frames (+0.05..0.08) and absent on black ones (-0.05)."""
    model = make_video_model(SAM3_TRACKER_TINY, seed=0)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.weight.mul_(-3000.0)
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(-26.59)
    model.save_pretrained(fx.root() / "sam3-tracker-blank-absent")
    return fx.root() / "sam3-tracker-blank-absent"


def segmenter(tracker, k):
    return load(model=str(model_dir()), tracker=str(tracker), threshold=0.0, video_k=k)


def expected_picks(masks, k):
    """The seed rule, written out: best first, none overlapping a better pick."""
    picks = []
    for i in range(len(masks)):
        if len(picks) < k and masks[i].any() and all(mask_iou(masks[i], masks[j]) <= DUPLICATE_IOU for j in picks):
            picks.append(i)
    return picks


def test_pick_instances_drops_duplicates_empties_and_low_scores():
    a = np.zeros((10, 10), bool)
    a[:5] = True
    near_a = a.copy()
    near_a[5, :] = True             # IoU 50/60 with a
    b = ~a
    masks = np.stack([a, near_a, np.zeros_like(a), b, b])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.2], np.float32)
    assert pick_instances(masks, scores, 0.3, 3) == [0, 3]
    assert pick_instances(masks, scores, 0.3, 1) == [0]
    assert pick_instances(masks, scores, 0.65, 3) == [0]
    assert pick_instances(masks, scores, 0.3, 3, taken=[a]) == [3]
    assert pick_instances(masks, scores, 0.95, 3) == []


def test_several_instances_each_equal_their_own_reference_run():
    frames = fx.clip(5, H, W)
    masks, scores = reference(frames[0], TEXT)
    picks = expected_picks(masks, 3)
    assert len(picks) == 3
    found = segmenter(tracker_dir(), 3).video_candidates(frames, TEXT)
    assert [c.frame for c in found] == [0, 0, 0]
    np.testing.assert_allclose([c.score for c in found], scores[picks], rtol=1e-5)
    for candidate, i in zip(found, picks):
        expected = np.stack([masks[i]] + [m for m, _ in reference_follow(frames, 0, masks[i]).values()])
        assert expected[1:].any()
        np.testing.assert_array_equal(candidate.track.array(), expected)
    assert not np.array_equal(found[0].track.array(), found[1].track.array())


def test_a_lost_instance_is_found_again_and_tracked_from_there():
    """Frames 3-5 black: the tracker calls the object absent there; on the third absent frame (5) the
    detector looks again and the tracker restarts from its detection."""
    frames = fx.clip(10, H, W)
    frames[3:6] = 0
    assert REDETECT_EVERY == 3
    masks, _ = reference(frames[0], TEXT)
    first = reference_follow(frames, 0, masks[0], blank_absent_tracker())
    assert [f for f, (_, score) in first.items() if score <= 0] == [3, 4, 5]
    again = reference(frames[5], TEXT)[0][0]
    second = reference_follow(frames, 5, again, blank_absent_tracker())
    assert all(score > 0 for _, score in second.values())
    expected = np.stack([masks[0], first[1][0], first[2][0], first[3][0], first[4][0], again,
                         *(second[f][0] for f in range(6, 10))])
    assert not expected[3:5].any() and expected[5].any()
    assert not np.array_equal(expected[6:], np.stack([first[f][0] for f in range(6, 10)]))
    out = segmenter(blank_absent_tracker(), 1).segment_video(frames, TEXT)
    np.testing.assert_array_equal(out, expected)


def test_lost_instances_take_detections_that_do_not_overlap_each_other():
    """A tracker that calls every object absent: both instances are lost on frames 1-3; on frame 3 the
    best one takes the best detection, the other the best detection apart from it."""
    frames = fx.clip(4, H, W)
    masks, _ = reference(frames[0], TEXT)
    picks = expected_picks(masks, 2)
    assert all(score <= 0 for _, score in reference_follow(frames, 0, masks[picks[0]], fx.model_dir("sam3")).values())
    detections, _ = reference(frames[3], TEXT)
    second = expected_picks(detections, 2)[1]
    assert mask_iou(detections[0], detections[second]) <= DUPLICATE_IOU
    found = segmenter(fx.model_dir("sam3"), 2).video_candidates(frames, TEXT)
    for candidate, seed, again in zip(found, picks, [0, second]):
        expected = np.stack([masks[seed], np.zeros((H, W), bool), np.zeros((H, W), bool), detections[again]])
        np.testing.assert_array_equal(candidate.track.array(), expected)


def test_a_packed_track_reads_back_exactly_and_costs_its_outline():
    rng = np.random.default_rng(0)
    track = PackedTrack(30, (27, 48))
    masks = rng.random((30, 27, 48)) > 0.5
    masks[4] = False
    for f, m in enumerate(masks):
        track[f] = m
    np.testing.assert_array_equal(track.array(), masks)
    blob = PackedTrack(1, (270, 480))
    blob[0] = np.zeros((270, 480), bool)
    assert blob.nbytes == 0
    square = np.zeros((270, 480), bool)
    square[50:150, 100:300] = True
    blob[0] = square
    assert blob.nbytes < 1000 and np.array_equal(blob[0], square)
    with pytest.raises(ValueError, match="bool"):
        track[0] = masks[0].astype(np.uint8)


def test_a_cancelled_run_leaves_the_thread_out_of_inference_mode():
    """The instances' tracker sessions are closed inside the run, even when it stops half way: a
    session closed later (by the garbage collector) would switch inference mode back on."""
    import gc

    from engine import Cancelled
    seen = []

    def cancel_while_tracking(fraction, message):
        seen.append(message)
        if len(seen) == 3:
            raise Cancelled("stop")
    with pytest.raises(Cancelled):
        segmenter(tracker_dir(), 3).video_candidates(fx.clip(6, H, W), TEXT, progress=cancel_while_tracking)
    gc.collect()
    assert "tracking" in seen[-1] and not torch.is_inference_mode_enabled()
