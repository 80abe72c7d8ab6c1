"""The page's tools, propagation, objects, review and shortcuts through the Session and the
views, without a browser."""
import json

import gradio as gr
import numpy as np
import pytest

from app.masks.frame_tools import mask_iou
from app.serve.api import user_errors
from app.studio.studio import Studio
from app.ui import views
from app.ui.extras_panel import agreement, import_dataset
from app.ui.session import Session
from app.ui.shortcuts import DEFAULT_SHORTCUTS, keymap, parse_shortcuts
from tests.helpers.page_fixtures import square_mask, write_moving_square


@pytest.fixture
def page(tmp_path):
    studio = Studio(tmp_path / "p.sqlite")
    masks = write_moving_square(tmp_path / "clip.avi", frames=12)
    media = studio.add_media(tmp_path / "clip.avi")[0]
    expr = studio.store.add_expression(media["id"], "the textured square")
    tab = Session(studio)
    tab.pick_expression(expr["id"])
    yield tab, masks
    studio.close()


def test_canvas_value_carries_exact_masks_and_the_timeline(page):
    tab, truth = page
    eid = tab.expression_id
    tab.store.save_masks(eid, {0: truth[0], 1: truth[1]}, source="propagated")
    tab.store.save_mask(eid, 1, truth[1] & ~square_mask(1, 1))
    tab.store.save_masks(eid, {2: truth[2]}, source="flowrvs-demo")
    tab.revision = tab.store.get_expression(eid)["revision"]
    value = views.canvas_value(tab)
    assert value["width"] == 128 and value["frames"] == 12 and value["active"] == tab.object_id
    assert np.array_equal(views.from_runs(value["objects"][0]["runs"], (96, 128)), truth[0])
    assert value["timeline"] == "pma" + "e" * 9
    assert value["objects"][0]["color"] == "#ff00ff"
    tab.seek(1)
    proposal = views.canvas_value(tab)["proposal"]
    assert proposal["source"] == "propagated" and np.array_equal(views.from_runs(proposal["runs"], (96, 128)), truth[1])


@pytest.mark.parametrize("mask", [np.zeros((3, 4), bool), np.ones((3, 4), bool), np.eye(4, dtype=bool)[:3]])
def test_runs_round_trip(mask):
    assert np.array_equal(views.from_runs(views.runs(mask), mask.shape), mask)


def test_box_tool_needs_two_corners_then_segments(page):
    tab, truth = page
    with pytest.raises(gr.Error, match="needs at least 2 point"):
        user_errors(tab.tool)("box", [[14, 28]])
    assert not tab.store.get_mask(tab.expression_id, 0).any()  # nothing saved
    tab.tool("box", [[14, 28], [54, 68]])
    saved = tab.store.get_mask(tab.expression_id, 0)
    assert mask_iou(saved, truth[0]) > 0.9
    assert tab.store.mask_sources(tab.expression_id) == {0: "manual"}


def test_negative_click_removes_and_positive_adds(page):
    tab, truth = page
    wrong = truth[0] | square_mask(8)  # a second, wrong region
    tab.revision = tab.store.save_mask(tab.expression_id, 0, wrong)
    tab.tool("click", [[20 + 24 + 14, 48, -1]])
    after = tab.store.get_mask(tab.expression_id, 0)
    assert not after[48, 58] and after[48, 30]


def test_polygon_closes_into_the_mask_and_needs_three_points(page):
    tab, _ = page
    with pytest.raises(gr.Error, match="at least 3 point"):
        user_errors(tab.tool)("polygon", [[10, 10], [40, 10]])
    tab.tool("polygon", [[10, 10], [40, 10], [40, 30]])
    mask = tab.store.get_mask(tab.expression_id, 0)
    assert mask[15, 35] and not mask[28, 12] and 300 < mask.sum() < 360  # right triangle, legs 30 and 20


def test_a_late_stroke_for_another_frame_is_refused(page):
    from app.ui.edit_panel import _same_place
    tab, _ = page
    tab.seek(3)
    with pytest.raises(gr.Error, match="was not saved"):
        user_errors(_same_place)(tab, {"frame": 2, "object": tab.object_id})
    _same_place(tab, {"frame": 3, "object": tab.object_id})


def test_propagation_keeps_iou_and_manual_anchor_survives(page):
    tab, truth = page
    eid = tab.expression_id
    tab.store.save_mask(eid, 0, truth[0])
    anchor = truth[6].copy()  # a manual frame that differs from what flow would give
    anchor[34:40, :] = False
    tab.revision = tab.store.save_mask(eid, 6, anchor)
    tab.propagate("forward", 0, False)
    sources = tab.store.mask_sources(eid)
    assert sources[6] == "manual" and np.array_equal(tab.store.get_mask(eid, 6), anchor)
    assert all(sources[f] == "propagated" for f in range(1, 6))
    ious = [mask_iou(tab.store.get_mask(eid, f), truth[f]) for f in range(1, 6)]
    assert min(ious) >= 0.9, ious
    proposal, source = tab.store.get_proposal(eid, 3)
    assert source == "propagated" and np.array_equal(proposal, tab.store.get_mask(eid, 3))
    tab.undo()  # one propagation is one undo step
    assert set(tab.store.mask_sources(eid)) == {0, 6}
    tab.propagate("forward", 8, True)  # asked to: the manual frame 6 is replaced
    assert tab.store.mask_sources(eid)[6] == "propagated"


def test_next_frame_to_check_skips_smooth_and_manual_frames(page):
    tab, truth = page
    eid = tab.expression_id
    for f in range(12):
        tab.store.save_masks(eid, {f: truth[f]}, source="propagated")
    tab.store.save_masks(eid, {7: np.zeros_like(truth[7])}, source="propagated")  # a dropout
    assert tab.next_to_check() and tab.frame == 7
    assert tab.next_to_check() and tab.frame == 8  # recovering from the dropout is a change too
    assert views.canvas_value(tab)["flagged"] == [7, 8]
    tab.store.save_mask(eid, 7, truth[7])  # an annotator fixed it: steady motion is all that is left
    assert tab.studio.next_to_check(eid, 0) is None and not tab.next_to_check()


def test_objects_are_separate_masks(page):
    tab, truth = page
    tab.revision = tab.store.save_mask(tab.expression_id, 0, truth[0])
    tab.add_object()
    value = views.canvas_value(tab)
    assert len(value["objects"]) == 2 and value["active"] == tab.object_id == value["objects"][1]["id"]
    assert value["objects"][0]["color"] != value["objects"][1]["color"]
    assert "object 2" in views.info(tab) and "mask: 0 px" in views.info(tab)
    tab.stroke([[5, 5]], 2)
    assert tab.store.get_mask(tab.expression_id, 0, tab.object_id).sum() == 13
    tab.remove_object()
    assert len(views.object_choices(tab)) == 1 and "mask: %d px" % truth[0].sum() in views.info(tab)
    with pytest.raises(gr.Error, match="at least one object"):
        user_errors(tab.remove_object)()


def test_review_reject_and_review_mode(page):
    tab, _ = page
    eid = tab.expression_id
    tab.set_status("done", force=True)  # nothing is drawn yet: the annotator confirms the empty frames
    second = tab.store.add_expression(tab.media_id, "the background")
    assert tab.next_expression(review_mode=True) and tab.expression_id == eid  # the only done one
    tab.reject("misses the top edge")
    assert tab.store.get_expression(eid)["status"] == "in_progress"
    assert "misses the top edge" in views.info(tab)
    assert [c[1] for c in views.expression_choices(tab, "todo")] == [second["id"]]


def test_shortcuts_are_validated_and_stored(page):
    tab, _ = page
    keys = json.loads(keymap(tab.store))
    assert keys == DEFAULT_SHORTCUTS
    keys["save"] = "w"
    tab.store.set_setting("shortcuts", parse_shortcuts(json.dumps(keys)))
    assert json.loads(keymap(tab.store))["save"] == "w"
    for text, error in [(json.dumps({"save": "n"}), "more than one action"),
                        (json.dumps({"launch_rockets": "x"}), "unknown actions"), ("{save: w}", "not valid JSON")]:
        with pytest.raises(gr.Error, match=error):
            user_errors(parse_shortcuts)(text)


def test_datasets_out_and_back_in_through_the_page(page, tmp_path):
    import zipfile

    from app.serve.tempfiles import Spool
    from app.ui.extras_panel import export_dataset
    tab, truth = page
    eid = tab.expression_id
    for f in (0, 3):
        tab.store.save_mask(eid, f, truth[f])
    archive = export_dataset(tab.studio, "mevis", Spool("export"))
    assert archive.endswith(".zip")
    zipfile.ZipFile(archive).extractall(tmp_path / "mevis")
    other = Studio(tmp_path / "other.sqlite")
    report = import_dataset(other, "mevis", str(tmp_path / "mevis"), "")
    assert "mask" in report and len(other.store.list_media()) == 1
    imported = other.store.list_expressions()[0]
    assert imported["text"] == "the textured square"
    for f in (0, 3):
        assert np.array_equal(other.store.get_mask(imported["id"], f), truth[f])
    with pytest.raises(gr.Error, match="nothing was imported"):
        user_errors(import_dataset)(other, "mevis", str(tmp_path / "nowhere"), "")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "meta_expressions.json").write_text("null")
    with pytest.raises(gr.Error, match="holds only null"):  # nothing to import is an error, not a success
        user_errors(import_dataset)(other, "mevis", str(tmp_path / "empty"), "")
    other.close()


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
    tab, truth = page
    eid = tab.expression_id
    tab.store.save_masks(eid, {0: truth[0], 1: truth[1]}, source="propagated")
    half = truth[1].copy()
    half[:, :48] = False
    tab.store.save_mask(eid, 1, half)  # the annotator cut the proposal on frame 1
    table, text = agreement(tab)
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


def image_tab(tmp_path, name):
    from tests.helpers.media_fixtures import write_image
    studio = Studio(tmp_path / f"{name}.sqlite")
    write_image(tmp_path / "still.png", size=(40, 30))
    tab = Session(studio)
    tab.add_media([str(tmp_path / "still.png")])
    tab.add_expression("the box")
    return tab


def test_image_candidates_show_and_one_click_replaces_the_mask(tmp_path):
    import engine
    from app.ui.model_panel import candidate_items
    engine.register_engine("test-topk", TopK, kinds=("image",), abilities=[engine.Ability.CANDIDATES])
    try:
        tab = image_tab(tmp_path, "c")
        eid = tab.expression_id
        assert candidate_items(tab) is None                     # none offered: none shown
        tab.segment("test-topk", False)
        assert tab.store.get_mask(eid, 0).sum() == 64  # the engine's pick: 8x8
        items = candidate_items(tab)
        assert [c for _, c in items][:2] == ["1: 0.90", "2: 0.70"] and items[0][0].shape == (30, 40, 3)
        tab.choose_candidate(3)  # key 4
        assert tab.store.get_mask(eid, 0).sum() == 256 and "(manual)" in views.info(tab)
        with pytest.raises(gr.Error, match="choose 1 to 5"):
            user_errors(tab.choose_candidate)(7)
        tab.studio.close()
    finally:
        engine.unregister_engine("test-topk")


def test_engine_choice_offers_toys_only_on_the_demo_media():
    """The demo engines are the default only on the demo media; elsewhere a real, ready engine
    that fits, or none (the page then says what to install); an annotator's real choice stays."""
    from app.ui.engine_choice import choose
    engines = ["flowrvs-demo", "flowseg-demo", "flowseg", "sam3"]
    assert choose("video", None, engines, True, set()) == "flowrvs-demo"
    assert choose("image", "flowrvs-demo", engines, True, set()) == "flowseg-demo"
    assert choose("video", None, engines, False, set()) is None                  # real media, nothing set up
    assert choose("image", "flowseg-demo", engines, False, set()) is None        # a toy is not carried over
    assert choose("image", None, engines, False, {"flowseg"}) == "flowseg"       # the ready one
    assert choose("video", None, engines, False, {"flowseg", "sam3"}) == "sam3"  # flowseg: images only
    assert choose("image", "sam3", engines, False, set()) == "sam3"              # the annotator's, kept
    assert choose("video", "flowseg", engines, True, set()) == "flowrvs-demo"    # does not fit videos


def test_demo_media_known_by_content_and_install_hint(tmp_path):
    import shutil

    import cv2

    from app.ui import engine_choice
    copy = tmp_path / "renamed.png"  # the demo picture under another name is still the demo
    shutil.copy(engine_choice.DEMO_ASSETS / "shapes.png", copy)
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), np.full((20, 30, 3), 7, np.uint8))
    studio = Studio(tmp_path / "p.sqlite")
    try:
        demo, real = (studio.add_media(p)[0] for p in (copy, other))
        assert engine_choice.is_demo_media(studio.store.get_media(demo["id"]))
        assert not engine_choice.is_demo_media(studio.store.get_media(real["id"]))
        statuses = studio.weights_status()
        told = [{"engine": "flowseg", "setting": "model_dir", "ready": False},
                {"engine": "sam3", "setting": "model", "ready": True},
                {"engine": "sam3", "setting": "tracker", "ready": False}]  # optional
        ready = engine_choice.ready_engines(["flowseg", "flowseg-demo", "sam3", "my-plugin"], told)
        assert ready == {"sam3", "my-plugin"}  # a plugin needs nothing from the weights catalog
        hint = engine_choice.install_hint("image", statuses)
        assert "`launch.py models download NAME` (" in hint and "`launch.py models list`" in hint
    finally:
        studio.close()


def test_accept_keeps_a_proposal_as_manual_and_segment_needs_an_engine(tmp_path):
    import engine
    engine.register_engine("test-topk", TopK, kinds=("image",), abilities=[engine.Ability.CANDIDATES])
    try:
        tab = image_tab(tmp_path, "r")
        with pytest.raises(gr.Error, match="Choose an engine"):
            user_errors(tab.segment)(None, False)
        tab.segment("test-topk", False)
        assert tab.store.mask_sources(tab.expression_id) == {0: "test-topk"}
        tab.accept()
        assert tab.store.mask_sources(tab.expression_id) == {0: "manual"}
        assert tab.store.get_mask(tab.expression_id, 0).sum() == 64
        tab.studio.close()
    finally:
        engine.unregister_engine("test-topk")


class TopKWithEmpty(TopK):
    """Candidates where the second and fourth are empty masks."""
    def candidates(self, image, expression, k=5):
        out = super().candidates(image, expression, k)
        out.masks[[1, 3]] = False
        return out


def test_empty_alternatives_are_not_offered(tmp_path):
    import engine
    from tests.helpers.media_fixtures import write_image
    engine.register_engine("test-topk-empty", TopKWithEmpty, kinds=("image",), abilities=[engine.Ability.CANDIDATES])
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
        engine.unregister_engine("test-topk-empty")


def test_a_bad_upload_is_a_user_error(tmp_path):
    """add_media on the page turns a corrupt file into gr.Error naming it, and records nothing."""
    studio = Studio(tmp_path / "u.sqlite")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(gr.Error, match="broken.png"):
        user_errors(Session(studio).add_media)([str(tmp_path / "broken.png")])
    assert studio.store.list_media() == []
    studio.close()


def test_a_missing_media_file_is_one_clear_error(page):
    """The media file gone from disk: every view says so the same way (no raw traceback)."""
    tab, _ = page
    tab.store.media_file(tab.media_id).unlink()
    tab.studio.frames.clear()
    tab.sent_image = None
    with pytest.raises(gr.Error):
        user_errors(views.canvas_value)(tab)


def test_the_page_says_which_engines_can_run_and_what_to_set(tmp_path, monkeypatch):
    from app.ui.model_panel import weights_markdown
    from tests.helpers import sam_fixtures as fx
    for env in ("FLOWLABEL_SAM_MODEL", "FLOWLABEL_FLOWSEG_DIR", "FLOWLABEL_FLOWRVS_WAN_DIR"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(fx.hf_cache()))
    studio = Studio(tmp_path / "a.sqlite")
    bare = weights_markdown(studio.weights_status())
    studio.close()
    assert "flowrvs-demo, flowseg-demo**: ready" in bare
    assert "**flowseg** `model_dir` (segment image, candidates): not configured: set --flowseg-dir" in bare
    assert "**sam2** `model` (interactive, tracking): " in bare
    assert "**sam2** `model` (interactive, tracking): ready" not in bare
    configured = Studio(tmp_path / "b.sqlite", engine_paths={"sam2": {"model": str(fx.model_dir())}})
    assert "**sam2** `model` (interactive, tracking): ready" in \
        weights_markdown(configured.weights_status())
    configured.close()


def test_the_line_under_the_canvas_is_escaped_html():
    """The line comes with the canvas's value as HTML: user text is escaped, the bold and the
    quoted notes of the markdown kept."""
    line = views.info_html("**the <img src=x onerror=alert(1)> cat** · to do\n\n> **reject** (2026-12-08): a & b")
    assert line == ("<p><strong>the &lt;img src=x onerror=alert(1)&gt; cat</strong> · to do</p>"
                    "<blockquote><strong>reject</strong> (2026-12-08): a &amp; b</blockquote>")
