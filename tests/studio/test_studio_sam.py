"""The studio's box/click tools and propagation on SAM 2 (tiny seeded weights), and the fallback
to GrabCut / DIS when no weights are configured."""
import threading

import numpy as np
import pytest

import engine
from app.errors import UsageError
from app.masks import frame_tools
from app.studio.studio import Studio
from engine.sam2.checkpoints import load_model
from engine.sam2.predictor import SamPredictor
from engine.sam2.tracker import track
from tests.helpers import sam_fixtures as fx
from tests.helpers.media_fixtures import write_image, write_video
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def studio(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM_MODEL", raising=False)
    s = Studio(tmp_path / "p.sqlite", device="cpu", engine_paths={"sam2": {"model": str(fx.model_dir())}})
    yield s
    s.close()


@pytest.fixture
def image_expr(studio, tmp_path):
    write_image(tmp_path / "still.png", size=(80, 60))
    media = studio.add_media(tmp_path / "still.png")[0]
    return studio.store.add_expression(media["id"], "the thing")


@pytest.fixture
def video_expr(studio, tmp_path):
    write_video(tmp_path / "v.mp4", frames=6, size=(64, 48))
    media = studio.add_media(tmp_path / "v.mp4")[0]
    return studio.store.add_expression(media["id"], "the square")


def direct():
    """The engine called directly, as a second opinion on what the studio saved."""
    return SamPredictor(load_model(fx.model_dir(), video=False))


def test_click_saves_sams_mask_and_offers_its_alternatives(studio, image_expr):
    eid = image_expr["id"]
    image = studio.frame(image_expr["media_id"], 0)
    mask, _ = studio.apply_tool(eid, 0, "click", [[30, 20, 1]])
    expected = direct().click("k", image, "o", 30, 20, True, current=np.zeros(image.shape[:2], bool))
    np.testing.assert_array_equal(mask, expected.masks[0])
    np.testing.assert_array_equal(studio.store.get_mask(eid, 0), expected.masks[0])
    masks, scores = studio.candidates(eid)
    np.testing.assert_array_equal(masks, expected.masks[[i for i in range(3) if i == 0 or expected.masks[i].any()]])
    assert list(scores) == sorted(scores, reverse=True)
    # one click on an alternative replaces the mask, and the next click refines that alternative
    studio.choose_candidate(eid, 1)
    np.testing.assert_array_equal(studio.store.get_mask(eid, 0), masks[1])
    refined, _ = studio.apply_tool(eid, 0, "click", [[70, 50, -1]])
    reference = direct()
    first = reference.click("k", image, "o", 30, 20, True, current=np.zeros(image.shape[:2], bool))
    reference.choose("o", first, 1)
    np.testing.assert_array_equal(refined, reference.click("k", image, "o", 70, 50, False, current=masks[1]).masks[0])
    assert studio.candidates(eid) is None  # a refined mask has no alternatives left


def test_box_restarts_from_sams_box_answer(studio, image_expr):
    eid = image_expr["id"]
    image = studio.frame(image_expr["media_id"], 0)
    studio.apply_tool(eid, 0, "click", [[30, 20, 1]])
    mask, _ = studio.apply_tool(eid, 0, "box", [[10, 5, 1], [50, 40, 1]])
    np.testing.assert_array_equal(mask, direct().box("k", image, "o", (10, 5, 50, 40)).masks[0])
    with pytest.raises(UsageError, match="outside the 80x60 frame"):
        studio.apply_tool(eid, 0, "click", [[95, 20, 1]])
    with pytest.raises(UsageError, match="two corners"):
        studio.apply_tool(eid, 0, "box", [[10, 5, 1]])


def test_without_weights_the_tools_fall_back_to_grabcut(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM_MODEL", raising=False)
    studio = Studio(tmp_path / "q.sqlite")
    try:
        write_image(tmp_path / "still.png", size=(80, 60))
        media = studio.add_media(tmp_path / "still.png")[0]
        eid = studio.store.add_expression(media["id"], "x")["id"]
        mask, _ = studio.apply_tool(eid, 0, "box", [[10, 5, 1], [50, 40, 1]])
        np.testing.assert_array_equal(mask, frame_tools.box_to_mask(studio.frame(media["id"], 0), (10, 5, 50, 40)))
        assert studio.candidates(eid) is None
        with pytest.raises(engine.EngineNotConfigured, match="--sam-model"):
            studio.propagate(eid, 0, method="sam2")
    finally:
        studio.close()


def test_showing_a_frame_embeds_it_in_the_background(studio, image_expr):
    image = studio.show_frame(image_expr["media_id"], 0)
    assert studio.preparer.wait_idle(120) and studio.preparer.last_error is None
    predictor = studio.engines._sam().predictor
    assert predictor.is_prepared((image_expr["media_id"], 0), image)


def test_sam2_propagation_keeps_anchors_and_is_one_undo_step(studio, video_expr):
    eid, mid = video_expr["id"], video_expr["media_id"]
    seed = np.zeros((48, 64), bool)
    seed[10:30, 8:28] = True
    anchor = np.zeros((48, 64), bool)
    anchor[5:20, 30:60] = True
    studio.store.save_mask(eid, 1, seed)
    studio.store.save_mask(eid, 3, anchor)
    before = studio.store.get_expression(eid)["revision"]
    seen = []
    result = studio.propagate(eid, 1, "forward", progress=lambda f, m: seen.append(f))
    assert result["method"] == "sam2" and result["frames"] == [2, 4, 5] and seen[-1] == 1.0
    steps = {s.frame: s for s in track(load_model(fx.model_dir(), video=True), lambda i: studio.frame(mid, i), 6, 1,
                                       seed_mask=seed, anchors={3: anchor})}
    for f in (2, 4, 5):
        np.testing.assert_array_equal(studio.store.get_mask(eid, f), steps[f].mask)
    np.testing.assert_array_equal(studio.store.get_mask(eid, 3), anchor)
    assert studio.store.mask_sources(eid)[2] == "sam2"
    studio.store.undo(eid)
    assert not any(studio.store.get_mask(eid, f).any() for f in (2, 4, 5))
    assert studio.store.get_expression(eid)["revision"] > before
    back = studio.propagate(eid, 1, "backward", method="dis")  # DIS stays available
    assert "absent" not in back and (back["frames"] == [0] or back["flagged"] == 0)


def test_absent_frames_are_left_empty_and_noted(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM_MODEL", raising=False)
    studio = Studio(tmp_path / "a.sqlite", device="cpu", engine_paths={"sam2": {"model": str(fx.model_dir("absent"))}})
    try:
        path = tmp_path / "clip.avi"
        _write_clip(path, fx.clip(8))
        media = studio.add_media(path)[0]
        eid = studio.store.add_expression(media["id"], "the square")["id"]
        seed = np.zeros((36, 48), bool)
        seed[8:20, 0:12] = True
        studio.store.save_mask(eid, 0, seed)
        result = studio.propagate(eid, 0)
        assert result["absent"] and result["flagged"] == result["absent"][0]
        assert not any(studio.store.get_mask(eid, f).any() for f in result["absent"])
        present = [f for f in result["frames"] if f not in result["absent"]]
        assert present and all(studio.store.get_mask(eid, f).any() for f in present)
        assert "absent" in studio.store.notes(eid)[-1]["text"]
    finally:
        studio.close()


def test_cancel_saves_nothing(studio, video_expr):
    eid = video_expr["id"]
    seed = np.zeros((48, 64), bool)
    seed[10:30, 8:28] = True
    studio.store.save_mask(eid, 0, seed)
    revision = studio.store.get_expression(eid)["revision"]

    def progress(fraction, message):
        if message == "frame 2":
            threading.Thread(target=studio.cancel).start()
            studio.engines._cancel.wait(5)

    with pytest.raises(engine.Cancelled, match="nothing was saved"):
        studio.propagate(eid, 0, progress=progress)
    assert studio.store.get_expression(eid)["revision"] == revision
    assert not studio.store.get_mask(eid, 1).any()


def _write_clip(path, frames):
    import cv2
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 5.0, frames.shape[2:0:-1])  # lossless
    for f in frames:
        writer.write(f[:, :, ::-1])
    writer.release()
