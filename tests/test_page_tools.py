"""The page's tools, propagation, objects, review and shortcuts, without a browser."""
import json

import cv2
import gradio as gr
import numpy as np
import pytest

from app.frame_tools import mask_iou
from app.studio import Studio
from app.ui_handlers import DEFAULT_SHORTCUTS, STRIP, PageLogic, frame_strip, parse_shortcuts
from tests.page_fixtures import square_mask, write_moving_square

DISP = (0.5, False, True, False)  # opacity, outline only, overlay, compare


@pytest.fixture
def page(tmp_path):
    studio = Studio(tmp_path / "p.sqlite")
    masks = write_moving_square(tmp_path / "clip.avi", frames=12)
    media = studio.add_media(tmp_path / "clip.avi")[0]
    expr = studio.store.add_expression(media["id"], "the textured square")
    logic = PageLogic(studio)
    state = logic.view(logic.pick_expression(None, expr["id"]), 0, *DISP)[0]
    yield logic, state, masks
    studio.close()


def click(logic, tool, state, frame, x, y, compare=False):
    evt = gr.SelectData(None, {"index": [x, y], "value": None, "selected": True})
    return logic.click(tool, state, frame, None, 0.5, False, True, compare, evt)


def test_box_tool_needs_two_corners_then_segments(page):
    logic, state, truth = page
    out = click(logic, "Box", state, 0, 14, 28)
    assert out[0]["points"] == [[14, 28, 1]] and "1 point(s) placed" in out[3]
    assert not logic.store.get_mask(state["expression_id"], 0).any()  # nothing saved yet
    out = click(logic, "Box", out[0], 0, 54, 68)
    saved = logic.store.get_mask(state["expression_id"], 0)
    assert mask_iou(saved, truth[0]) > 0.9 and out[0]["points"] == []
    assert logic.store.mask_sources(state["expression_id"]) == {0: "manual"}


def test_negative_click_removes_and_positive_adds(page):
    logic, state, truth = page
    wrong = truth[0] | square_mask(8)  # a second, wrong region
    logic.store.save_mask(state["expression_id"], 0, wrong)
    state = logic.view(state, 0, *DISP)[0]
    state = click(logic, "Click −", state, 0, 20 + 24 + 14, 48)[0]
    after = logic.store.get_mask(state["expression_id"], 0)
    assert not after[48, 58] and after[48, 30]


def test_polygon_closes_into_the_mask_and_needs_three_points(page):
    logic, state, _ = page
    for x, y in [(10, 10), (40, 10)]:
        state = click(logic, "Polygon", state, 0, x, y)[0]
    with pytest.raises(gr.Error, match="at least 3 points"):
        logic.close_polygon(state, 0, None, *DISP)
    state = click(logic, "Polygon", state, 0, 40, 30)[0]
    logic.close_polygon(state, 0, None, *DISP)
    mask = logic.store.get_mask(state["expression_id"], 0)
    assert mask[15, 35] and not mask[28, 12] and 300 < mask.sum() < 360  # right triangle, legs 30 and 20


def test_propagation_keeps_iou_and_manual_anchor_survives(page):
    logic, state, truth = page
    eid = state["expression_id"]
    logic.store.save_mask(eid, 0, truth[0])
    anchor = truth[6].copy()  # a manual frame that differs from what flow would give
    anchor[34:40, :] = False
    logic.store.save_mask(eid, 6, anchor)
    state = logic.view(state, 0, *DISP)[0]
    state = logic.propagate("forward", state, 0, 0, False, *DISP)[0]
    sources = logic.store.mask_sources(eid)
    assert sources[6] == "manual" and np.array_equal(logic.store.get_mask(eid, 6), anchor)
    assert all(sources[f] == "propagated" for f in range(1, 6))
    ious = [mask_iou(logic.store.get_mask(eid, f), truth[f]) for f in range(1, 6)]
    assert min(ious) >= 0.9, ious
    proposal, source = logic.store.get_proposal(eid, 3)
    assert source == "propagated" and np.array_equal(proposal, logic.store.get_mask(eid, 3))
    logic.store.undo(eid)  # one propagation is one undo step
    assert set(logic.store.mask_sources(eid)) == {0, 6}
    state = logic.view(state, 0, *DISP)[0]
    logic.propagate("forward", state, 0, 8, True, *DISP)  # asked to: the manual frame 6 is replaced
    assert logic.store.mask_sources(eid)[6] == "propagated"


def test_next_frame_to_check_skips_smooth_and_manual_frames(page):
    logic, state, truth = page
    eid = state["expression_id"]
    for f in range(12):
        logic.studio.store.save_masks(eid, {f: truth[f]}, source="propagated")
    logic.store.save_masks(eid, {7: np.zeros_like(truth[7])}, source="propagated")  # a dropout
    assert logic.next_to_check(state, 0) == 7
    assert logic.next_to_check(state, 7) == 8  # recovering from the dropout is a change too
    logic.store.save_mask(eid, 7, truth[7])  # an annotator fixed it: steady motion is all that is left
    assert logic.studio.next_to_check(eid, 0) is None


def test_objects_are_separate_masks(page):
    logic, state, truth = page
    logic.store.save_mask(state["expression_id"], 0, truth[0])
    out = logic.add_object(state, 0, *DISP)
    state = out[0]
    assert len(out[6]["choices"]) == 2 and out[6]["value"] == state["object_id"]
    assert "object 2" in out[3] and "mask: 0 px" in out[3]
    out = logic.remove_object(state, 0, *DISP)
    assert len(out[6]["choices"]) == 1 and "mask: %d px" % truth[0].sum() in out[3]


def test_review_reject_and_review_mode(page):
    logic, state, _ = page
    eid = state["expression_id"]
    state = logic.set_status("done", state, "all")[0]
    second = logic.store.add_expression(state["media_id"], "the background")
    nxt, _, radio = logic.next_expression(state, review_mode=True)
    assert nxt["expression_id"] == eid  # the only done one
    state, radio, _, comment = logic.reject(state, "misses the top edge", "all")
    assert logic.store.get_expression(eid)["status"] == "in_progress" and comment == ""
    assert "misses the top edge" in logic.view(state, 0, *DISP)[3]
    assert [c[1] for c in logic.filter_expressions(state, "todo")["choices"]] == [second["id"]]


def test_compare_shows_proposal_beside_correction(page):
    logic, state, truth = page
    eid = state["expression_id"]
    logic.store.save_masks(eid, {0: truth[0]}, source="propagated")
    logic.store.save_mask(eid, 0, np.zeros_like(truth[0]))
    preview = logic.view(state, 0, 0.5, False, True, True)[2]
    img = cv2.imread(preview)
    assert img.shape[1] == 2 * 128 + 4  # side by side


def test_frame_strip_colours():
    strip = frame_strip(4, {0: "manual", 1: "flowrvs", 2: "propagated"}, current=3, width=4)
    assert tuple(strip[7, 0]) == STRIP["manual"] and tuple(strip[7, 1]) == STRIP["model"]
    assert tuple(strip[7, 2]) == STRIP["propagated"] and tuple(strip[7, 3]) == STRIP["empty"]
    assert tuple(strip[0, 3]) == (40, 40, 40)


def test_shortcuts_are_validated_and_stored(page):
    logic, _, _ = page
    keys = json.loads(logic.shortcuts())
    assert keys == DEFAULT_SHORTCUTS
    keys["save"] = "w"
    merged, keymap = logic.save_shortcuts(json.dumps(keys))
    assert json.loads(merged)["save"] == "w" and logic.store.get_setting("shortcuts")["save"] == "w"
    with pytest.raises(gr.Error, match="more than one action"):
        parse_shortcuts(json.dumps({"save": "n", "next_expression": "N"}))
    with pytest.raises(gr.Error, match="unknown actions"):
        parse_shortcuts(json.dumps({"launch_rockets": "x"}))
    with pytest.raises(gr.Error, match="not valid JSON"):
        parse_shortcuts("{save: w}")


def test_datasets_out_and_back_in_through_the_page(page, tmp_path):
    import zipfile
    logic, state, truth = page
    eid = state["expression_id"]
    for f in (0, 3):
        logic.store.save_mask(eid, f, truth[f])
    archive = logic.export_dataset("mevis")
    assert archive.endswith(".zip")
    zipfile.ZipFile(archive).extractall(tmp_path / "mevis")
    other = PageLogic(Studio(tmp_path / "other.sqlite"))
    report, media = other.import_dataset("mevis", str(tmp_path / "mevis"), "")
    assert "mask" in report and len(media["choices"]) == 1
    imported = other.store.list_expressions()[0]
    assert imported["text"] == "the textured square"
    for f in (0, 3):
        assert np.array_equal(other.store.get_mask(imported["id"], f), truth[f])
    with pytest.raises(gr.Error, match="nothing was imported"):
        other.import_dataset("mevis", str(tmp_path / "nowhere"), "")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "meta_expressions.json").write_text("null")
    with pytest.raises(gr.Error, match="holds only null"):  # nothing to import is an error, not a success
        other.import_dataset("mevis", str(tmp_path / "empty"), "")
    other.studio.close()


def test_propagation_stops_before_a_lost_track_and_saves_nothing_there(tmp_path):
    import cv2 as _cv2
    studio = Studio(tmp_path / "lost.sqlite")
    masks = write_moving_square(tmp_path / "clip.avi", frames=10)
    # Frames 6.. show different noise: the tracked texture is gone.
    cap = _cv2.VideoCapture(str(tmp_path / "clip.avi"))
    frames = [cap.read()[1] for _ in range(10)]
    rng = np.random.default_rng(5)
    for t in range(6, 10):
        frames[t] = rng.integers(0, 255, frames[t].shape, dtype=np.uint8)
    writer = _cv2.VideoWriter(str(tmp_path / "lost.avi"), _cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (128, 96))
    for f in frames:
        writer.write(f)
    writer.release()
    media = studio.add_media(tmp_path / "lost.avi")[0]
    eid = studio.store.add_expression(media["id"], "the square")["id"]
    studio.store.save_mask(eid, 0, masks[0])
    result = studio.propagate(eid, 0, "forward")
    assert result["flagged"] is not None and result["flagged"] >= 6
    assert result["flagged"] not in studio.store.mask_sources(eid)
    assert max(result["frames"]) < result["flagged"]
    studio.close()


def test_agreement_between_proposal_and_final(page):
    logic, state, truth = page
    eid = state["expression_id"]
    logic.store.save_masks(eid, {0: truth[0], 1: truth[1]}, source="propagated")
    half = truth[1].copy()
    half[:, :48] = False
    logic.store.save_mask(eid, 1, half)  # the annotator cut the proposal on frame 1
    table, text = logic.agreement(state)
    assert list(table["frame"]) == [0, 1] and table["iou"][0] == 1.0
    assert abs(table["iou"][1] - half.sum() / truth[1].sum()) < 1e-9
    assert "changed 1 of them" in text


class TopK:
    """Test engine offering candidates: five boxes of growing size, the second scored best."""
    def __init__(self, device=None):
        pass

    def segment_image(self, image, expression):
        return self.candidates(image, expression).masks[0]

    def candidates(self, image, expression, k=5):
        from types import SimpleNamespace
        h, w = image.shape[:2]
        masks = np.zeros((k, h, w), bool)
        for i in range(k):
            masks[i, : 4 * (i + 1), : 4 * (i + 1)] = True
        order = [1, 0, 2, 3, 4][:k]
        return SimpleNamespace(masks=masks[order], scores=np.linspace(0.9, 0.1, k).astype(np.float32))


def test_image_candidates_show_and_one_click_replaces_the_mask(tmp_path):
    import engine
    from tests.media_fixtures import write_image
    engine.register_segmenter("test-topk", TopK, kinds=("image",))
    try:
        studio = Studio(tmp_path / "c.sqlite")
        write_image(tmp_path / "still.png", size=(40, 30))
        media = studio.add_media(tmp_path / "still.png")[0]
        eid = studio.store.add_expression(media["id"], "the box")["id"]
        logic = PageLogic(studio)
        state = logic.view(logic.pick_expression(None, eid), 0, *DISP)[0]
        assert logic.candidate_gallery(state)["visible"] is False
        state = logic.segment(state, "test-topk")
        assert studio.store.get_mask(eid, 0).sum() == 64  # the engine's pick: 8x8
        gallery = logic.candidate_gallery(state)
        assert gallery["visible"] and [c for _, c in gallery["value"]][:2] == ["1: 0.90", "2: 0.70"]
        out = logic.choose_candidate(3, state, 0, *DISP)  # key 4
        assert studio.store.get_mask(eid, 0).sum() == 256 and "(manual)" in out[3]
        with pytest.raises(gr.Error, match="choose 1 to 5"):
            logic.choose_candidate(7, out[0], 0, *DISP)
        studio.close()
    finally:
        engine.unregister_segmenter("test-topk")


def test_engine_choice_follows_the_media_kind(page, tmp_path):
    """Videos get flowrvs-demo, images flowseg-demo; an annotator's fitting choice stays."""
    from app.ui_handlers import engine_for_kind
    from tests.media_fixtures import write_image
    logic, video_state, _ = page
    write_image(tmp_path / "still.png", size=(40, 30))
    image_id = logic.studio.add_media(tmp_path / "still.png")[0]["id"]
    image_state = logic.pick_media(image_id)[0]
    assert logic.engine_choice(video_state, None)["value"] == "flowrvs-demo"
    assert logic.engine_choice(image_state, "flowrvs-demo")["value"] == "flowseg-demo"
    assert logic.engine_choice(video_state, "flowseg-demo")["value"] == "flowrvs-demo"
    assert logic.engine_choice(image_state, "flowseg")["value"] == "flowseg"      # fits: kept
    assert logic.engine_choice(video_state, "flowseg")["value"] == "flowrvs-demo"  # images only
    assert engine_for_kind("image", None, ["flowrvs"]) == "flowrvs"                # no demo: first that fits
    assert engine_for_kind("video", "x", []) == "x"


def test_editor_reload_after_segment_keeps_the_proposal_a_proposal(tmp_path):
    """The editor's input event fires when the page reloads it after Segment: that must not
    turn the model's mask into a manual one. Strokes and the Save button still do."""
    import engine
    from tests.media_fixtures import write_image
    engine.register_segmenter("test-topk", TopK, kinds=("image",))
    try:
        studio = Studio(tmp_path / "r.sqlite")
        write_image(tmp_path / "still.png", size=(40, 30))
        eid = studio.store.add_expression(studio.add_media(tmp_path / "still.png")[0]["id"], "x")["id"]
        logic = PageLogic(studio)
        state = logic.view(logic.pick_expression(None, eid), 0, *DISP)[0]
        state = logic.view(logic.segment(state, "test-topk"), 0, *DISP)[0]
        no_strokes = {"background": None, "layers": [np.zeros((30, 40, 4), np.uint8)], "composite": None}
        out = logic.autosave(state, 0, no_strokes, *DISP)
        assert all(o == gr.skip() for o in out)
        assert studio.store.mask_sources(eid) == {0: "test-topk"}
        layer = np.zeros((30, 40, 4), np.uint8)
        layer[20:25, 30:35] = (255, 0, 255, 180)                       # a stroke outside the mask
        state = logic.autosave(state, 0, {"background": None, "layers": [layer], "composite": None}, *DISP)[0]
        assert studio.store.mask_sources(eid) == {0: "manual"}
        assert studio.store.get_mask(eid, 0).sum() == 64 + 25
        studio.close()
    finally:
        engine.unregister_segmenter("test-topk")


class TopKWithEmpty(TopK):
    """Candidates where the second and fourth are empty masks."""
    def candidates(self, image, expression, k=5):
        out = super().candidates(image, expression, k)
        out.masks[[1, 3]] = False
        return out


def test_empty_alternatives_are_not_offered(tmp_path):
    import engine
    from tests.media_fixtures import write_image
    engine.register_segmenter("test-topk-empty", TopKWithEmpty, kinds=("image",))
    try:
        studio = Studio(tmp_path / "e.sqlite")
        write_image(tmp_path / "still.png", size=(40, 30))
        eid = studio.store.add_expression(studio.add_media(tmp_path / "still.png")[0]["id"], "x")["id"]
        studio.segment(eid, "test-topk-empty")
        masks, scores = studio.candidates(eid)
        assert len(masks) == 3 and all(m.any() for m in masks)
        assert scores.tolist() == pytest.approx([0.9, 0.5, 0.1])       # candidates 1, 3, 5 stay in order
        studio.close()
    finally:
        engine.unregister_segmenter("test-topk-empty")


def test_a_bad_upload_is_a_user_error(tmp_path):
    """add_media on the page turns a corrupt file into gr.Error naming it, and records nothing."""
    studio = Studio(tmp_path / "u.sqlite")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(gr.Error, match="broken.png"):
        PageLogic(studio).add_media([str(tmp_path / "broken.png")])
    assert studio.store.list_media() == []
    studio.close()
