"""Studio verbs and page logic, without a browser."""
import numpy as np
import pytest

import engine
from app.media import MediaError
from app.overlay import mask_to_rgba
from app.studio import Studio
from app.ui_handlers import MASK_ALPHA, MASK_RGB, PageLogic, editor_mask
from tests.media_fixtures import write_image, write_video


@pytest.fixture
def studio(tmp_path):
    s = Studio(tmp_path / "p.sqlite")
    yield s
    s.close()


@pytest.fixture
def video_expr(studio, tmp_path):
    path = tmp_path / "v.mp4"
    write_video(path, frames=6, size=(64, 48))
    media = studio.add_media(path)[0]
    return studio.store.add_expression(media["id"], "the square")


class BrightnessSegmenter:
    """Test-only engine: the object is whatever is brighter than the frame's mean."""
    def __init__(self, device=None):
        self.calls = 0

    def segment_video(self, frames, expression, progress=None):
        self.calls += 1
        for i in range(len(frames)):
            if progress:
                progress((i + 1) / len(frames), f"frame {i}")
        return frames.mean(axis=3) > frames.mean()

    def segment_image(self, image, expression):
        return image.mean(axis=2) > image.mean()


@pytest.fixture
def bright_engine():
    engine.register_segmenter("test-bright", BrightnessSegmenter)
    yield "test-bright"
    engine.unregister_segmenter("test-bright")


def test_folder_import_is_all_or_nothing(studio, tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    write_image(folder / "a.png")
    write_image(folder / "b.jpg", seed=1)
    (folder / "c.png").write_bytes(b"not really a png")
    with pytest.raises(MediaError, match="c.png"):
        studio.add_media(folder)
    assert studio.store.list_media() == []
    (folder / "c.png").unlink()
    added = studio.add_media(folder)
    assert [m["name"] for m in added] == ["a.png", "b.jpg"]


def test_frames_are_decoded_on_demand_and_bounded(tmp_path):
    path = tmp_path / "v.avi"
    write_video(path, frames=10, size=(64, 48))
    studio = Studio(tmp_path / "p.sqlite", cache_bytes=3 * 64 * 48 * 3)
    media = studio.add_media(path)[0]
    frames = [studio.frame(media["id"], i) for i in range(10)]
    assert studio.frames.nbytes <= 3 * 64 * 48 * 3
    assert all(f.shape == (48, 64, 3) for f in frames)
    with pytest.raises(Exception, match="frames 0..9"):
        studio.frame(media["id"], 10)
    studio.close()


def test_segment_without_engine_says_so(studio, video_expr):
    with pytest.raises(engine.UnknownEngineError, match="no segmentation engine is installed"):
        studio.segment(video_expr["id"], "flowrvs")


def test_segment_keeps_manual_frames(studio, video_expr, bright_engine):
    eid = video_expr["id"]
    manual = np.zeros((48, 64), bool)
    manual[:5, :5] = True
    studio.store.save_mask(eid, 2, manual)
    seen = []
    result = studio.segment(eid, bright_engine, progress=lambda f, msg: seen.append(f))
    assert result["frames"] == 6 and seen[-1] == 1.0
    sources = studio.store.mask_sources(eid)
    assert sources[2] == "manual" and np.array_equal(studio.store.get_mask(eid, 2), manual)
    assert {f for f, s in sources.items() if s == bright_engine} <= {0, 1, 3, 4, 5}
    frames = studio.all_frames(video_expr["media_id"])
    expected = frames.mean(axis=3) > frames.mean()
    assert np.array_equal(studio.store.get_mask(eid, 4), expected[4])
    studio.segment(eid, bright_engine, overwrite_manual=True)
    assert studio.store.mask_sources(eid)[2] == bright_engine
    studio.store.undo(eid)  # one model run is one undo step
    assert studio.store.mask_sources(eid)[2] == "manual"


def test_apply_op_fill_holes_saves_a_revision(studio, video_expr):
    ring = np.zeros((48, 64), bool)
    ring[10:30, 10:30] = True
    ring[15:25, 15:25] = False
    new, revision = studio.apply_op(video_expr["id"], 0, "fill_holes", mask=ring)
    assert new[20, 20] and revision == 1
    assert np.array_equal(studio.store.get_mask(video_expr["id"], 0), new)
    with pytest.raises(Exception, match="fill_holes, clear, remove_specks"):
        studio.apply_op(video_expr["id"], 0, "explode")


def test_page_save_reads_the_editor_layer(studio, video_expr):
    logic = PageLogic(studio)
    state = logic.pick_expression(None, video_expr["id"])
    mask = np.zeros((48, 64), bool)
    mask[5:20, 8:30] = True
    editor = {"background": None, "layers": [mask_to_rgba(mask, MASK_RGB, MASK_ALPHA)], "composite": None}
    state, preview, info = logic.save(state, 3, editor, 0.5, False, True)
    assert state["revision"] == 1 and "330 px (manual)" in info
    assert np.array_equal(studio.store.get_mask(video_expr["id"], 3), mask)
    editor_value, preview, info = logic.view(state, 3, 0.5, False, True)
    assert np.array_equal(editor_mask(editor_value, (48, 64)), mask)
    assert preview.shape == (48, 64, 3)


def test_page_stale_tab_gets_a_clear_error(studio, video_expr):
    import gradio as gr
    logic = PageLogic(studio)
    tab_a = logic.pick_expression(None, video_expr["id"])
    tab_b = dict(tab_a)
    one = {"layers": [mask_to_rgba(np.ones((48, 64), bool), MASK_RGB, MASK_ALPHA)]}
    logic.save(tab_a, 0, one, 0.5, False, True)
    other = {"layers": [mask_to_rgba(np.eye(48, 64, dtype=bool), MASK_RGB, MASK_ALPHA)]}
    with pytest.raises(gr.Error, match="changed elsewhere"):
        logic.save(tab_b, 0, other, 0.5, False, True)
    assert studio.store.get_mask(video_expr["id"], 0).all()


def test_page_resumes_last_expression_and_walks_next(studio, video_expr):
    logic = PageLogic(studio)
    second = studio.store.add_expression(video_expr["media_id"], "the circle")
    logic.pick_expression(None, second["id"])
    state, media_update, expr_update = logic.initial()
    assert state["expression_id"] == second["id"] and expr_update["value"] == second["id"]
    state, _, expr_update = logic.next_expression(state)
    assert state["expression_id"] == video_expr["id"]
    studio.store.set_status(video_expr["id"], "done")
    state, _, _ = logic.next_expression(state)
    assert state["expression_id"] == second["id"]


def test_editor_mask_resizes_a_scaled_canvas():
    mask = np.zeros((24, 32), bool)
    mask[:12, :16] = True
    layer = mask_to_rgba(mask, MASK_RGB, MASK_ALPHA)
    big = np.repeat(np.repeat(layer, 2, axis=0), 2, axis=1)
    assert np.array_equal(editor_mask({"layers": [big]}, (24, 32)), mask)
    assert not editor_mask({"layers": []}, (24, 32)).any()
