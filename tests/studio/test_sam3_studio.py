"""The studio with sam3 on a video (tiny seeded weights, a real video file, a real project file): the
best instance's track is saved, the other instances wait as video candidates (RLE, bounded), and
choosing one saves its whole track as one revision that one undo takes back."""
import numpy as np
import pytest

from app.studio.studio import Studio
from tests.engine.test_sam3_concept import model_dir, reference
from tests.engine.test_sam3_instances import expected_picks
from tests.engine.test_sam3_video import TEXT, H, W, reference_follow, tracker_dir
from tests.helpers.media_fixtures import write_video
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


def studio_with_clip(tmp_path, frames, size=(W, H)):
    paths = {"model": str(model_dir()), "tracker": str(tracker_dir()), "threshold": 0.0}
    studio = Studio(tmp_path / "p.sqlite", device="cpu", engine_paths={"sam3": paths})
    write_video(tmp_path / "clip.avi", frames=frames, size=size)
    media = studio.add_media(tmp_path / "clip.avi")[0]
    return studio, media["id"], studio.store.add_expression(media["id"], TEXT)["id"]


def expected_tracks(studio, media_id, frames):
    """Each picked instance of the first frame, followed by the tracker on its own: bool [T, H, W] each."""
    clip = np.stack([studio.frame(media_id, t) for t in range(frames)])
    masks, scores = reference(clip[0], TEXT)
    tracks = [np.stack([masks[i]] + [m for m, _ in reference_follow(clip, 0, masks[i]).values()])
              for i in expected_picks(masks, 3)]
    return tracks, scores


def stored(studio, eid, frames):
    return np.stack([studio.store.get_mask(eid, t) for t in range(frames)])


def test_choosing_a_video_candidate_saves_its_track_in_one_revision(tmp_path):
    studio, media_id, eid = studio_with_clip(tmp_path, 5)
    try:
        studio.segment(eid, "sam3")
        tracks, _ = expected_tracks(studio, media_id, 5)
        np.testing.assert_array_equal(stored(studio, eid, 5), tracks[0])
        thumbs, scores = studio.candidates(eid)
        assert len(thumbs) == 3 and studio.candidate_frames(eid) == [0, 0, 0]
        np.testing.assert_array_equal(thumbs, [t[0] for t in tracks])
        assert not np.array_equal(tracks[2][1:], tracks[0][1:])

        manual = studio.paint(eid, 3, [(5, 5)], 3)[0]
        before = studio.store.get_expression(eid)["revision"]
        revision = studio.choose_candidate(eid, 2, base_revision=before)
        assert revision == before + 1
        expected = tracks[2].copy()
        expected[3] = manual                      # manual frames are kept, as a model run keeps them
        np.testing.assert_array_equal(stored(studio, eid, 5), expected)
        assert studio.store.mask_sources(eid)[1] == "sam3"

        studio.undo(eid)
        after_undo = tracks[0].copy()
        after_undo[3] = manual
        np.testing.assert_array_equal(stored(studio, eid, 5), after_undo)

        studio.choose_candidate(eid, 1, overwrite_manual=True)
        np.testing.assert_array_equal(stored(studio, eid, 5), tracks[1])
    finally:
        studio.close()


def test_video_candidates_are_kept_compressed(tmp_path):
    """world.mp4's size (480x270): RLE grows with a mask's outline, a bool array with its frame."""
    frames, size = 12, (480, 270)
    studio, media_id, eid = studio_with_clip(tmp_path, frames, size)
    try:
        studio.segment(eid, "sam3")
        offer = studio.offer(eid)
        raw = frames * size[0] * size[1]          # one track as a bool array
        assert len(offer.tracks) == 3 and all(len(t) == frames for t in offer.tracks)
        kept = sum(t.nbytes for t in offer.tracks)
        print(f"3 tracks of {frames} frames: {kept} bytes as RLE, {3 * raw} as bool arrays")
        # measured 198,606 bytes (random weights draw ragged masks; a real object's outline is shorter)
        assert kept < 3 * raw / 16                  # under half of bit-packing's size, a 16th of bool arrays
        best = np.stack([offer.tracks[0][t] for t in range(frames)])
        assert best.any()
        np.testing.assert_array_equal(best, stored(studio, eid, frames))
    finally:
        studio.close()


def test_a_run_without_candidates_drops_the_last_ones(tmp_path):
    studio, media_id, eid = studio_with_clip(tmp_path, 3)
    try:
        studio.segment(eid, "sam3")
        assert studio.candidates(eid) is not None
        studio.engines._default_paths["sam3"]["threshold"] = 1.0   # now nothing is found
        studio.segment(eid, "sam3")
        assert studio.candidates(eid) is None and not stored(studio, eid, 3).any()
    finally:
        studio.close()


def test_the_service_refuses_tracks_of_the_wrong_shape():
    import engine
    from engine.track_masks import PackedTrack, TrackCandidate

    class WrongTracks:
        def segment_video(self, frames, expression, progress=None):
            raise AssertionError("the service asks for video_candidates first")

        def video_candidates(self, frames, expression, progress=None):
            return [TrackCandidate(0, 0.9, PackedTrack(len(frames), (frames.shape[1] + 1, frames.shape[2])))]

    engine.register_engine("test-wrong-tracks", lambda device=None: WrongTracks(), kinds=("video",),
                           abilities=[engine.Ability.VIDEO_CANDIDATES])
    try:
        with pytest.raises(RuntimeError, match="video_candidates contract"):
            engine.EngineService(device="cpu").run("test-wrong-tracks", "video", np.zeros((2, 4, 5, 3), np.uint8), "x")
    finally:
        engine.unregister_engine("test-wrong-tracks")


def test_the_long_clip_bench_runs_on_a_few_frames():
    import re
    import subprocess
    import sys
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "bench/sam3_video.py", "--frames", "6"], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"^Studio.segment: [\d.]+ s = [\d.]+ frames/s$", done.stdout, re.M), done.stdout
    assert re.search(r"^video candidates kept: [1-3] tracks, [\d.]+ MB as RLE", done.stdout, re.M), done.stdout


def test_a_video_streams_through_sam3_never_whole(tmp_path, monkeypatch):
    """The studio hands sam3 an engine.Clip: frames come from the bounded frame cache one at a time,
    so the run's peak stays under the clip's size; the same run given the stacked clip exceeds it."""
    import dataclasses
    import tracemalloc

    from engine import registry
    frames, size = 30, (480, 270)
    studio, media_id, eid = studio_with_clip(tmp_path, frames, size)
    clip_bytes = frames * size[0] * size[1] * 3
    studio.frames.max_bytes = 2 * 2**20  # a few frames

    def peak(streams: bool) -> tuple[int, np.ndarray]:
        info = registry.engine_info("sam3")
        abilities = info.abilities | {registry.Ability.STREAMS_FRAMES} if streams \
            else info.abilities - {registry.Ability.STREAMS_FRAMES}
        monkeypatch.setitem(registry._REGISTRY, "sam3", dataclasses.replace(info, abilities=abilities))
        studio.frames.clear()
        tracemalloc.start()
        try:
            masks = studio.propose(eid, "sam3").masks
            return tracemalloc.get_traced_memory()[1], masks
        finally:
            tracemalloc.stop()
    try:
        studio.engines.load("sam3")
        streamed, masks = peak(True)
        stacked, same = peak(False)
        print(f"peak {streamed / 2**20:.1f} MB streamed, {stacked / 2**20:.1f} MB stacked; clip {clip_bytes / 2**20:.1f} MB")
        np.testing.assert_array_equal(masks, same)
        assert masks[1:].any()
        assert streamed < clip_bytes <= stacked
    finally:
        studio.close()
