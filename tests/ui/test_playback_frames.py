"""Frames for playback (app/ui/playback.py): a run of frames ahead with exact masks, pictures at
the width asked for, and the tab's session left where it was."""
import base64

import cv2
import numpy as np
import pytest

from app.ui import views
from app.ui.playback import MAX_RUN, play_frames
from app.ui.session import PageError, Session
from tests.helpers.page_fixtures import write_moving_square


@pytest.fixture
def tab(studio, tmp_path):
    """A tab on a 20-frame video whose every frame holds the square's true mask."""
    truth = write_moving_square(tmp_path / "clip.avi", frames=20)
    session = Session(studio)
    session.pick_media(studio.add_media(tmp_path / "clip.avi")[0]["id"])
    session.pick_expression(studio.store.add_expression(session.media_id, "the square")["id"])
    studio.store.save_masks(session.expression_id, dict(enumerate(truth)), source="propagated")
    return session, truth


def picture(url: str) -> np.ndarray:
    data = base64.b64decode(url.split(",", 1)[1])
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


def test_a_run_of_frames_with_exact_masks_leaves_the_session_alone(tab):
    session, truth = tab
    answer = play_frames(session, 3, 5)
    assert answer["fps"] == session.media["fps"] and [f["frame"] for f in answer["frames"]] == [3, 4, 5, 6, 7]
    for item in answer["frames"]:
        (obj,) = item["objects"]
        assert obj["id"] == session.object_id
        assert np.array_equal(views.from_runs(obj["runs"], (96, 128)), truth[item["frame"]])
        assert picture(item["image"]).shape == (96, 128, 3)
    assert session.frame == 0


def test_runs_are_clipped_to_the_video_and_to_max_run(tab):
    session, _ = tab
    assert [f["frame"] for f in play_frames(session, 17, 10)["frames"]] == [17, 18, 19]
    assert len(play_frames(session, 0, 100)["frames"]) == MAX_RUN


def test_pictures_come_at_the_width_the_canvas_shows(tab):
    session, _ = tab
    (item,) = play_frames(session, 0, 1, width=64)["frames"]
    assert picture(item["image"]).shape == (48, 64, 3)
    (item,) = play_frames(session, 0, 1, width=4000)["frames"]  # never larger than the frame
    assert picture(item["image"]).shape == (96, 128, 3)


def test_play_needs_a_video(studio, image_path):
    session = Session(studio)
    session.pick_media(studio.add_media(image_path)[0]["id"])
    with pytest.raises(PageError, match="Play needs a video"):
        play_frames(session, 0, 4)
