"""Studio verbs and page logic, without a browser."""
import numpy as np
import pytest

import engine
from app.errors import UsageError
from app.media.files import MediaError
from app.studio.studio import Studio
from tests.helpers.media_fixtures import write_image, write_video


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
    engine.register_engine("test-bright", BrightnessSegmenter)
    yield "test-bright"
    engine.unregister_engine("test-bright")


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


def test_segment_with_unknown_or_unconfigured_engine_says_so(studio, video_expr, monkeypatch):
    with pytest.raises(engine.UnknownEngineError, match="registered engines: .*flowrvs, flowrvs-demo, flowseg"):
        studio.segment(video_expr["id"], "sam9")
    with pytest.raises(UsageError, match="choose an engine for videos"):
        studio.segment(video_expr["id"], "flowseg")  # an image engine
    for var in ("FLOWLABEL_FLOWRVS_WAN_DIR", "FLOWLABEL_FLOWRVS_CHECKPOINT", "FLOWLABEL_FLOWRVS_MODEL_DIR"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(engine.EngineNotConfigured, match="--flowrvs-wan-dir"):
        studio.segment(video_expr["id"], "flowrvs")
    assert studio.store.mask_sources(video_expr["id"]) == {} and studio.frames.nbytes == 0


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
    frames = studio.media_frames(video_expr["media_id"])
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


def box(y0, y1, x0, x1, shape=(48, 64)):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def test_strokes_apply_to_the_saved_mask(studio, video_expr):
    """A stroke (polyline + radius) is applied to what is stored, never replacing it; each
    stroke is one revision; the canvas gets the exact mask back."""
    from app.masks.ops import paint
    from app.ui import views
    from app.ui.session import Session
    eid = video_expr["id"]
    studio.store.save_mask(eid, 3, box(5, 20, 8, 30))
    tab = Session(studio)
    tab.pick_expression(eid)
    tab.seek(3)
    value = views.canvas_value(tab)
    assert value["image"].startswith("data:image/jpeg") and "330 px (manual)" in views.info(tab)
    assert np.array_equal(views.from_runs(value["objects"][0]["runs"], (48, 64)), box(5, 20, 8, 30))
    assert "image" not in views.canvas_value(tab)  # the canvas holds this frame already
    tab.stroke([[0, 35], [9, 35]], 3)
    expected = box(5, 20, 8, 30) | paint(np.zeros((48, 64), bool), [(0, 35), (9, 35)], 3, True)
    assert np.array_equal(studio.store.get_mask(eid, 3), expected) and tab.revision == 2
    tab.stroke([[8, 10]], 4, erase=True)
    expected = paint(expected, [(8, 10)], 4, False)
    assert np.array_equal(studio.store.get_mask(eid, 3), expected) and tab.revision == 3
    assert np.array_equal(views.from_runs(views.canvas_value(tab)["objects"][0]["runs"], (48, 64)), expected)


def test_page_stale_tab_gets_a_clear_error(studio, video_expr):
    import copy

    import gradio as gr

    from app.serve.api import user_errors
    from app.ui.session import Session
    tab_a = Session(studio)
    tab_a.pick_expression(video_expr["id"])
    tab_b = copy.deepcopy(tab_a)
    assert tab_b.studio is studio  # copies (one per browser tab) share the studio
    tab_a.stroke([[32, 24]], 40)
    with pytest.raises(gr.Error, match="changed elsewhere"):
        user_errors(tab_b.stroke)([[0, 0]], 2, erase=True)
    assert studio.store.get_mask(video_expr["id"], 0).all()


def test_fill_holes_from_the_page(studio, video_expr):
    from app.ui import views
    from app.ui.session import Session
    tab = Session(studio)
    tab.pick_expression(video_expr["id"])
    tab.seek(1)
    ring = box(10, 30, 10, 30) & ~box(15, 25, 15, 25)
    studio.store.save_mask(video_expr["id"], 1, ring)
    tab.revision = 1
    tab.correct("fill_holes")
    assert np.array_equal(studio.store.get_mask(video_expr["id"], 1), box(10, 30, 10, 30))
    assert "400 px" in views.info(tab)


def test_page_resumes_last_expression_and_walks_next(studio, video_expr):
    from app.ui.session import Session
    second = studio.store.add_expression(video_expr["media_id"], "the circle")
    Session(studio).pick_expression(second["id"])
    tab = Session(studio)
    tab.reopen()
    assert tab.expression_id == second["id"]
    assert tab.next_expression() and tab.expression_id == video_expr["id"]
    studio.store.set_status(video_expr["id"], "done")
    assert tab.next_expression() and tab.expression_id == second["id"]


def test_segment_checks_the_engine_before_decoding(studio, video_expr):
    engine.register_engine("images-only", BrightnessSegmenter, kinds=("image",))
    try:
        with pytest.raises(Exception, match="choose an engine for videos"):
            studio.segment(video_expr["id"], "images-only")
        assert studio.frames.nbytes == 0  # nothing was decoded for a run that could not happen
    finally:
        engine.unregister_engine("images-only")
    with pytest.raises(engine.UnknownEngineError):
        studio.segment(video_expr["id"], "sam9")
    assert studio.frames.nbytes == 0


def test_the_demo_engine_runs_through_the_studio(studio, video_expr):
    """flowrvs-demo (the shipped weights) segments a whole video; the manual frame stays."""
    eid = video_expr["id"]
    manual = np.zeros((48, 64), bool)
    manual[:4, :4] = True
    studio.store.save_mask(eid, 1, manual)
    result = studio.segment(eid, "flowrvs-demo")
    assert result["frames"] == 6
    assert studio.store.mask_sources(eid).get(1) == "manual"
    assert np.array_equal(studio.store.get_mask(eid, 1), manual)
    assert set(studio.store.proposal_frames(eid).values()) <= {"flowrvs-demo"}


def test_the_server_bounds_the_brush_as_the_page_does(studio, video_expr):
    """A script or a tampered page cannot send a radius the canvas would never offer (it sets
    the size of a padded canvas): refused with the bound, nothing saved."""
    from app.masks.ops import MAX_BRUSH_RADIUS
    eid = video_expr["id"]
    before = studio.store.get_expression(eid)["revision"]
    for radius in (MAX_BRUSH_RADIUS + 1, 10**9, 0, 2.5):
        with pytest.raises(UsageError, match=rf"stroke not saved: .*1\.\.{MAX_BRUSH_RADIUS}"):
            studio.paint(eid, 0, [(5, 5), (9, 9)], radius)
    assert studio.store.get_expression(eid)["revision"] == before and not studio.store.get_mask(eid, 0).any()
    _, revision = studio.paint(eid, 0, [(5, 5)], MAX_BRUSH_RADIUS)
    assert revision == before + 1 and studio.store.get_mask(eid, 0).all()
