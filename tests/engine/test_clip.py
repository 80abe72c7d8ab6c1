"""engine.Clip: a video's frames read one at a time from the studio's frame cache, equal to the
stacked frames, and refusing a frame that does not fit the clip."""
import numpy as np
import pytest

from app.studio.studio import Studio
from engine.clip import Clip
from tests.helpers.media_fixtures import write_video


def test_clip_reads_what_the_stacked_frames_hold(tmp_path):
    studio = Studio(tmp_path / "p.sqlite")
    try:
        written = write_video(tmp_path / "v.avi", frames=7, size=(48, 32))
        media = studio.add_media(tmp_path / "v.avi")[0]
        clip = studio.media_clip(media["id"])
        stacked = studio.media_frames(media["id"])
        assert clip.shape == stacked.shape == written.shape and len(clip) == 7
        np.testing.assert_array_equal(np.asarray(clip), stacked)
        np.testing.assert_array_equal(clip[2:5], stacked[2:5])
        np.testing.assert_array_equal(clip[-1], stacked[6])
        with pytest.raises(IndexError, match=r"frame 7 is outside the clip \(frames 0..6\)"):
            clip[7]
    finally:
        studio.close()


def test_a_frame_that_does_not_fit_the_clip_is_refused():
    frames = {0: np.zeros((4, 5, 3), np.uint8), 1: np.zeros((4, 6, 3), np.uint8), 2: np.zeros((4, 5, 3), np.float32)}
    clip = Clip(frames.__getitem__, 3, 4, 5)
    assert clip[0].shape == (4, 5, 3)
    with pytest.raises(ValueError, match=r"frame 1 is uint8 \[4, 6, 3\], not uint8 \[4, 5, 3\]"):
        clip[1]
    with pytest.raises(ValueError, match="frame 2 is float32"):
        clip[2]
    with pytest.raises(ValueError, match="frame 1 is uint8"):
        np.asarray(clip)
    with pytest.raises(ValueError, match="a clip needs frames"):
        Clip(frames.__getitem__, 0, 4, 5)


def test_reached_frames_maps_only_the_frames_a_run_set():
    from engine.track_masks import ReachedFrames
    track = ReachedFrames(10, (4, 5))
    mask = np.zeros((4, 5), bool)
    mask[1:3, 2:4] = True
    track[7], track[3] = mask, np.zeros((4, 5), bool)
    assert list(track) == [3, 7] and len(track) == 2
    assert (track[7] == mask).all() and not track[3].any()
    with pytest.raises(KeyError):
        track[5]  # never reached: not part of the run


def test_recent_keeps_its_bound_and_a_key_set_again_is_newest():
    from engine.bounds import Recent
    cache = Recent(3)
    for key in "abcd":
        cache[key] = key.upper()
    assert list(cache) == ["b", "c", "d"]
    cache["b"] = "B2"  # set again: newest, so "c" goes next
    cache["e"] = "E"
    assert list(cache) == ["d", "b", "e"] and cache["b"] == "B2"
