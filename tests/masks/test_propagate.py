"""Mask propagation on generated clips: textured objects moving by known integer offsets over a
textured, noisy background, so the true mask of every frame is known."""
import time

import cv2
import numpy as np
import pytest

from app.masks.frame_tools import mask_iou
from app.masks.propagate import PropagationStep, propagate, review_scores

SIZE = (128, 96)  # width, height
# Per-frame moves (dx, dy) of object A, and of object B (a second object, for anchors).
MOVES_A = [(3, 2), (2, 1), (4, 0), (1, -2), (3, 2), (2, 3), (-2, 2), (3, -1), (-1, 2), (3, 1), (2, 0)]
MOVES_B = [(-2, -1), (-3, 0), (-2, -2), (-3, 1), (-2, 0), (-1, -2), (-3, -1), (-2, 1), (-2, -1), (-3, 0), (-1, 1)]


def texture(rng, height, width, blur):
    """Random RGB texture, smoothed over ~blur px, contrast-normalised around grey 128."""
    t = cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3)).astype(np.float32), (0, 0), blur)
    return np.clip((t - t.mean()) / t.std() * 50 + 128, 0, 255).astype(np.uint8)


def make_clip(frames=12, seed=0, vanish_from=None):
    """RGB frames [N, H, W, 3] and true masks of A and B [N, H, W]. From frame `vanish_from` on,
    every frame is a fresh random texture: the objects are gone."""
    width, height = SIZE
    rng = np.random.default_rng(seed)
    background = texture(rng, height, width, 1.5)
    objects = [(texture(rng, 28, 32, 1.0), [12, 12], MOVES_A, (40, -30, 10)),
               (texture(rng, 20, 22, 1.0), [96, 60], MOVES_B, (-40, 20, 40))]
    clip = np.empty((frames, height, width, 3), np.uint8)
    masks = np.zeros((2, frames, height, width), bool)
    for i in range(frames):
        frame = background.astype(np.int16)
        for k, (patch, pos, moves, tint) in enumerate(objects):
            if i:
                pos[0] += moves[i - 1][0]
                pos[1] += moves[i - 1][1]
            (h, w), (x, y) = patch.shape[:2], pos
            frame[y:y + h, x:x + w] = patch.astype(np.int16) + tint
            masks[k, i, y:y + h, x:x + w] = True
        if vanish_from is not None and i >= vanish_from:
            frame = texture(np.random.default_rng(seed + 1000 + i), height, width, 1.5).astype(np.int16)
            masks[:, i] = False
        clip[i] = np.clip(frame + rng.normal(0, 4, frame.shape), 0, 255).astype(np.uint8)
    return clip, masks[0], masks[1]


@pytest.fixture(scope="module")
def clip():
    return make_clip()


def run(clip_frames, mask, start, direction="forward", count=None, **kwargs):
    return list(propagate(lambda i: clip_frames[i], mask, start, direction, count, len(clip_frames), **kwargs))


def test_forward_keeps_iou_above_0_9_for_10_frames(clip):
    frames, truth, _ = clip
    t0 = time.perf_counter()
    steps = run(frames, truth[0], 0)
    per_frame_ms = (time.perf_counter() - t0) / len(steps) * 1000
    ious = [mask_iou(s.mask, truth[s.frame]) for s in steps]
    print(f"\nforward IoU per frame: {[round(v, 3) for v in ious]}")
    print(f"confidence: {[round(s.confidence, 2) for s in steps]}; {per_frame_ms:.1f} ms/frame at {SIZE}")
    assert [s.frame for s in steps] == list(range(1, 12))
    assert all(isinstance(s, PropagationStep) and s.mask.dtype == bool for s in steps)
    assert min(ious[:10]) >= 0.9
    assert not any(s.flagged for s in steps)
    assert all(0.5 <= s.confidence <= 1.0 for s in steps)


@pytest.mark.parametrize("seed", [1, 2])
def test_forward_holds_on_other_seeds(seed):
    frames, truth, _ = make_clip(seed=seed)
    ious = [mask_iou(s.mask, truth[s.frame]) for s in run(frames, truth[0], 0, count=10)]
    assert len(ious) == 10 and min(ious) >= 0.9, ious


def test_backward_from_the_last_frame(clip):
    frames, truth, _ = clip
    steps = run(frames, truth[11], 11, "backward")
    ious = [mask_iou(s.mask, truth[s.frame]) for s in steps]
    print(f"\nbackward IoU per frame (10..0): {[round(v, 3) for v in ious]}")
    assert [s.frame for s in steps] == list(range(10, -1, -1))
    assert min(ious[:10]) >= 0.9
    assert not any(s.flagged for s in steps)


def test_each_frame_is_read_once(clip):
    frames, truth, _ = clip
    reads = []
    steps = list(propagate(lambda i: reads.append(i) or frames[i], truth[2], 2, "forward", 4, 12))
    assert [s.frame for s in steps] == [3, 4, 5, 6]
    assert reads == [2, 3, 4, 5, 6]


def test_an_anchor_is_not_yielded_and_reseeds_the_track(clip):
    frames, truth_a, truth_b = clip
    # The annotator saved frame 5 with the mask on the other object: from there on, follow B.
    steps = run(frames, truth_a[0], 0, anchors={5: truth_b[5]})
    assert [s.frame for s in steps] == [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    for s in steps:
        truth, other = (truth_a, truth_b) if s.frame < 5 else (truth_b, truth_a)
        assert mask_iou(s.mask, truth[s.frame]) >= 0.9, s.frame
        assert mask_iou(s.mask, other[s.frame]) == 0.0, s.frame


def test_anchors_going_backward_and_at_the_first_step(clip):
    frames, truth_a, truth_b = clip
    steps = run(frames, truth_a[8], 8, "backward", anchors={7: truth_b[7], 2: truth_a[2]})
    assert [s.frame for s in steps] == [6, 5, 4, 3, 1, 0]
    assert all(mask_iou(s.mask, truth_b[s.frame]) >= 0.9 for s in steps if s.frame > 2)
    assert all(mask_iou(s.mask, truth_a[s.frame]) >= 0.9 for s in steps if s.frame < 2)


def test_an_empty_anchor_stops_propagation(clip):
    frames, truth, _ = clip
    steps = run(frames, truth[0], 0, anchors={4: np.zeros_like(truth[0])})
    assert [s.frame for s in steps] == [1, 2, 3]


def test_count_is_frames_moved_through_anchors_included(clip):
    frames, truth, _ = clip
    assert [s.frame for s in run(frames, truth[3], 3, count=3)] == [4, 5, 6]
    assert [s.frame for s in run(frames, truth[3], 3, count=3, anchors={5: truth[5]})] == [4, 6]
    assert [s.frame for s in run(frames, truth[9], 9, count=50)] == [10, 11]  # stops at the end
    assert [s.frame for s in run(frames, truth[2], 2, "backward", count=50)] == [1, 0]
    assert run(frames, truth[11], 11) == []
    assert run(frames, truth[0], 0, "backward") == []


def test_confidence_drops_and_propagation_stops_where_the_object_vanishes():
    frames, truth, _ = make_clip(vanish_from=6)
    steps = run(frames, truth[0], 0)
    print(f"\nconfidence with the object gone from frame 6: {[round(s.confidence, 2) for s in steps]}")
    assert [s.frame for s in steps] == [1, 2, 3, 4, 5, 6]
    assert not any(s.flagged for s in steps[:-1])
    assert min(mask_iou(s.mask, truth[s.frame]) for s in steps[:-1]) >= 0.9
    assert steps[-1].flagged and steps[-1].confidence < 0.5
    assert min(s.confidence for s in steps[:-1]) > 0.8


def test_min_confidence_decides_where_to_flag():
    frames, truth, _ = make_clip(vanish_from=6)
    steps = run(frames, truth[0], 0, min_confidence=0.0)  # goes on past the vanishing ...
    assert [s.frame for s in steps] == list(range(1, len(steps) + 1)) and len(steps) > 6
    assert len(steps) == 11 or not steps[-1].mask.any()  # ... until the end or nothing is left
    steps = run(frames, truth[0], 0, min_confidence=1.0)
    assert len(steps) == 1 and steps[0].flagged


def test_a_mask_that_leaves_the_frame_whole_is_flagged_empty_even_at_min_confidence_0():
    # The camera pans: everything moves 8 px right, and the mask (the 4 rightmost columns)
    # leaves the frame in one step.
    width, height = SIZE
    wide = texture(np.random.default_rng(7), height, width + 40, 1.5)
    frames = [np.ascontiguousarray(wide[:, 40 - 8 * i:40 - 8 * i + width]) for i in range(4)]
    mask = np.zeros((height, width), bool)
    mask[20:60, -4:] = True
    steps = list(propagate(lambda i: frames[i], mask, 0, "forward", None, 4, min_confidence=0.0))
    assert len(steps) == 1 and steps[0].flagged and steps[0].confidence == 0.0
    assert not steps[0].mask.any()


def test_cancel_is_checked_before_every_frame(clip):
    frames, truth, _ = clip
    calls = []

    def cancel():
        calls.append(1)
        return len(calls) > 3

    steps = run(frames, truth[0], 0, cancel=cancel)
    assert [s.frame for s in steps] == [1, 2, 3]
    assert run(frames, truth[0], 0, cancel=lambda: True) == []


@pytest.mark.parametrize("kwargs, message", [
    (dict(direction="sideways"), "direction must be 'forward' or 'backward'"),
    (dict(direction="Forward"), "direction must be 'forward' or 'backward'"),
    (dict(count=0), "count must be an integer >= 1"),
    (dict(count=-2), "count must be an integer >= 1"),
    (dict(count=2.5), "count must be an integer >= 1"),
    (dict(count=True), "count must be an integer >= 1"),
    (dict(start=12), "start frame 12 is outside the video (frames 0..11)"),
    (dict(start=-1), "start frame -1 is outside"),
    (dict(num_frames=0), "num_frames must be an integer >= 1"),
    (dict(mask=np.zeros((96, 128), bool)), "the mask on frame 0 is empty"),
    (dict(mask=np.ones((96, 128), np.uint8)), "mask must be bool"),
    (dict(min_confidence=1.5), "min_confidence must be between 0 and 1"),
    (dict(anchors={3: np.ones((10, 10), bool)}), "anchor on frame 3 is shape [10, 10]"),
    (dict(anchors={3: np.ones((96, 128), np.uint8)}), "anchor on frame 3: mask must be bool"),
])
def test_arguments_are_checked_before_any_frame_is_read(clip, kwargs, message):
    frames, truth, _ = clip
    args = dict(mask=truth[0], start=0, direction="forward", count=None, num_frames=12)
    args.update(kwargs)

    def get_frame(i):
        raise AssertionError("read a frame")

    with pytest.raises(ValueError) as err:
        propagate(get_frame, args["mask"], args["start"], args["direction"], args["count"],
                  args["num_frames"], **{k: v for k, v in args.items() if k in ("anchors", "min_confidence")})
    assert message in str(err.value)


def test_frames_of_the_wrong_size_or_type_are_refused(clip):
    frames, truth, _ = clip
    with pytest.raises(ValueError, match=r"frame 0 is shape \[48, 64, 3\] but the mask is \[96, 128\]"):
        list(propagate(lambda i: frames[i][::2, ::2], truth[0], 0, "forward", 2, 12))
    with pytest.raises(ValueError, match="frame 0 is float32"):
        list(propagate(lambda i: frames[i].astype(np.float32), truth[0], 0, "forward", 2, 12))


@pytest.mark.parametrize("kind", ["grey", "rgba", "read-only"])
def test_grey_rgba_and_read_only_frames_work_too(clip, kind):
    frames, truth, _ = clip
    if kind == "grey":
        frames = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    elif kind == "rgba":
        frames = np.concatenate([frames, np.full(frames.shape[:3] + (1,), 255, np.uint8)], axis=3)
    else:  # as the frame cache hands them out
        frames = frames.copy()
        frames.flags.writeable = False
    steps = list(propagate(lambda i: frames[i], truth[0], 0, "forward", 5, 12))
    assert len(steps) == 5 and min(mask_iou(s.mask, truth[s.frame]) for s in steps) >= 0.9


# -- review_scores -----------------------------------------------------------------------------
def square(x, y, side=10, shape=(40, 40)):
    m = np.zeros(shape, bool)
    m[y:y + side, x:x + side] = True
    return m


def test_review_scores_measure_change_from_the_previous_frame():
    empty = np.zeros((40, 40), bool)
    masks = {0: square(5, 5), 1: square(5, 5), 2: square(10, 5), 3: square(11, 5), 4: empty, 5: empty}
    scores = review_scores(masks)
    assert scores[1] == 0.0 and scores[5] == 0.0
    assert scores[2] == pytest.approx(1 - 50 / 150)
    assert scores[3] == pytest.approx(1 - 90 / 110)
    assert scores[4] == 1.0
    assert 0 not in scores  # nothing before it to compare with


def test_review_scores_count_low_confidence():
    masks = {0: square(5, 5), 1: square(5, 5), 2: square(5, 5), 7: square(20, 20)}
    assert review_scores(masks) == {1: 0.0, 2: 0.0}  # frame 7 has no frame 6 to compare with
    scores = review_scores(masks, confidences={2: 0.4, 1: 0.9, 7: 0.7})
    assert scores == {1: pytest.approx(0.1), 2: pytest.approx(0.6), 7: pytest.approx(0.3)}
    assert review_scores({}) == {}


@pytest.mark.parametrize("seed", [4, 5])
def test_an_object_leaving_the_frame_is_flagged_by_the_time_it_is_gone(seed):
    """A 24 px patch moves 3 px/frame out through the right edge (gone from frame 13)."""
    width, height = SIZE
    rng = np.random.default_rng(seed)
    background, patch = texture(rng, height, width, 1.5), texture(rng, 24, 24, 1.0)
    frames, truth = [], []
    for i in range(16):
        x = 90 + 3 * i
        visible = max(0, min(24, width - x))
        frame = background.astype(np.int16)
        frame[30:54, x:x + visible] = patch[:, :visible].astype(np.int16) + (40, -30, 10)
        mask = np.zeros((height, width), bool)
        mask[30:54, x:x + visible] = True
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        truth.append(mask)
    steps = list(propagate(lambda i: frames[i], truth[0], 0, "forward", None, 16))
    print(f"\nleaving: {[(s.frame, round(mask_iou(s.mask, truth[s.frame]), 2), round(s.confidence, 2)) for s in steps]}")
    assert steps[-1].flagged and steps[-1].frame <= 13
    for s in steps[:-1]:
        assert truth[s.frame].any() and mask_iou(s.mask, truth[s.frame]) >= 0.6, s.frame
    assert all(mask_iou(s.mask, truth[s.frame]) >= 0.95 for s in steps if s.frame <= 10)
