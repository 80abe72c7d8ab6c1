"""The overwrite rule (app/project/fill_rule.py) on a real clip cut from gradio's world.mp4, with the
demo engine and DIS propagation: the annotator's frames survive a model run; status moves."""
import numpy as np
import pytest

from app.errors import UsageError
from app.project import fill_rule
from app.studio.studio import EmptyFramesError, Studio
from tests.helpers.media_fixtures import write_world_clip

FRAMES = 16


@pytest.fixture
def world(tmp_path):
    """A studio holding the first 16 frames of world.mp4 and one expression."""
    path = write_world_clip(tmp_path / "world16.avi", FRAMES)
    studio = Studio(tmp_path / "p.sqlite")
    media = studio.add_media(path)[0]
    eid = studio.store.add_expression(media["id"], "the globe")["id"]
    yield studio, eid
    studio.close()


def disc(cx: int, r: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[:270, :480]
    return (xx - cx) ** 2 + (yy - 135) ** 2 < r * r


def all_masks(studio, eid) -> list[np.ndarray]:
    return [studio.store.get_mask(eid, f) for f in range(FRAMES)]


def annotated(studio, eid) -> None:
    """The reported case, shortened: manual frames 0 and 12, 1-11 propagated from frame 0."""
    studio.store.save_mask(eid, 0, disc(200))
    studio.store.save_mask(eid, 12, disc(260))
    result = studio.propagate(eid, 0, "forward", count=11, method="dis")
    assert result["frames"] == list(range(1, 12))


def test_segment_keeps_propagated_frames_of_a_finished_expression(world):
    studio, eid = world
    annotated(studio, eid)
    assert studio.store.get_expression(eid)["status"] == "in_progress"  # the first edit moved it
    kinds = studio.store.mask_kinds(eid)
    assert [kinds[f] for f in range(13)] == ["manual"] + ["propagated"] * 11 + ["manual"]
    with pytest.raises(EmptyFramesError) as empty:
        studio.set_status(eid, "done")
    assert empty.value.frames == [13, 14, 15] and "13-15" in str(empty.value)
    studio.set_status(eid, "done", force=True)
    before = all_masks(studio, eid)

    with pytest.raises(UsageError, match="overwrite_manual=True"):
        studio.segment(eid, "flowrvs-demo")
    assert all(np.array_equal(a, b) for a, b in zip(before, all_masks(studio, eid)))

    report = studio.segment(eid, "flowrvs-demo", rerun_finished=True)["report"]
    after = all_masks(studio, eid)
    for f in range(13):  # every frame the annotator made or propagated, pixel for pixel
        assert np.array_equal(before[f], after[f]), f
    assert report.kept == {"manual": 2, "propagated": 11}
    filled = [f for f in range(13, FRAMES) if after[f].any()]
    assert report.filled == len(filled) and report.replaced == {}
    assert report.text().endswith("kept 2 manual, 11 propagated")
    assert studio.store.get_expression(eid)["status"] == "done"  # a model run is no annotator's edit


def test_overwrite_replaces_by_kind_and_model_frames_are_refilled(world):
    studio, eid = world
    annotated(studio, eid)
    before = all_masks(studio, eid)
    report = studio.segment(eid, "flowrvs-demo", overwrite_manual=True)["report"]
    after = all_masks(studio, eid)
    changed = [f for f in range(13) if not np.array_equal(before[f], after[f])]
    assert sum(report.replaced.values()) == len(changed) > 0 and report.kept == {}
    assert set(report.replaced) <= {"manual", "propagated"}
    kinds = studio.store.mask_kinds(eid)
    assert {kinds.get(f, "empty") for f in changed} <= {"model", "empty"}  # the engine's, found or not
    assert "model" in {kinds.get(f) for f in changed}
    # A propagation from a model frame carries a model mask: the next run may replace it.
    seed = next(f for f in range(FRAMES) if kinds.get(f) == "model")
    studio.propagate(eid, seed, "forward", count=2, method="dis", overwrite_manual=True)
    assert {studio.store.mask_kinds(eid)[f] for f in (seed + 1, seed + 2)} == {"model"}


def test_undo_of_a_run_restores_kinds(world):
    studio, eid = world
    annotated(studio, eid)
    studio.segment(eid, "flowrvs-demo", overwrite_manual=True)
    studio.undo(eid)
    kinds = studio.store.mask_kinds(eid)
    assert [kinds[f] for f in range(13)] == ["manual"] + ["propagated"] * 11 + ["manual"]


def test_report_text_names_every_kind():
    report = fill_rule.FillReport(filled=12)
    report.replaced.update(model=3)
    report.kept.update(manual=2, propagated=29)
    assert report.text() == "filled 12 empty, replaced 3 model; kept 2 manual, 29 propagated"
    assert fill_rule.FillReport().text() == "no frame changed"


def test_first_edit_moves_to_do_once_and_undo_takes_it_back(studio, video_path):
    media = studio.add_media(video_path)[0]
    eid = studio.store.add_expression(media["id"], "the red box")["id"]
    mask = np.zeros((32, 48), bool)
    mask[4:14, 0:10] = True
    studio.store.save_mask(eid, 0, mask)
    assert studio.store.get_expression(eid)["status"] == "in_progress"
    studio.undo(eid)
    assert studio.store.get_expression(eid)["status"] == "todo"
    studio.store.save_masks(eid, {0: mask}, source="some-engine")
    assert studio.store.get_expression(eid)["status"] == "todo"  # model runs leave it to do


def test_m005_counts_earlier_propagations_as_the_annotators(tmp_path):
    """Masks stored before masks had an origin: propagated ones are kept, an engine's replaced."""
    from app.project.store import ProjectStore
    from tests.helpers.old_projects import old_project
    masks = [("INSERT INTO masks VALUES (1,?,'11',2,4,?,'t')", [frame, source])
             for frame, source in enumerate(["manual", "propagated", "sam2", "flowrvs-demo"])]
    path = old_project(tmp_path / "old.sqlite", "m005_trash_and_origin", [
        ("INSERT INTO media VALUES (1,'video','c.avi','x.avi','abc',4,2,4,5.0,'t')", []),
        ("INSERT INTO expressions VALUES (1,1,'x','done',0,'t','t')", []),
        ("INSERT INTO objects VALUES (1,1,1,'object','t')", []),
        ("INSERT INTO expression_objects VALUES (1,1)", []), *masks])
    with ProjectStore(path) as store:
        assert store.mask_kinds(1) == {0: "manual", 1: "propagated", 2: "propagated", 3: "model"}
        full = np.ones((2, 4), bool)
        report = store.fill_masks(1, {f: full for f in range(4)}, source="flowrvs-demo", keep_manual=True)
        assert report.kept == {"manual": 1, "propagated": 2} and report.replaced == {"model": 1}
        store.undo(1)
        assert store.mask_kinds(1)[3] == "model" and store.list_media()[0]["name"] == "c.avi"


def test_a_confirmation_applies_only_to_what_it_asked_about(studio, video_path):
    """The page's "Mark done anyway" / "Run anyway" answer the question shown: after the tab
    moves to another expression, the old answer is refused, not applied there."""
    from app.ui import confirm_panel
    from app.ui.session import PageError, Session
    media = studio.add_media(video_path)[0]["id"]
    first, second = (studio.store.add_expression(media, t)["id"] for t in ("one", "two"))
    tab = Session(studio)
    tab.pick_expression(first)
    pending = {"action": "done", "expression": first, "status": "done"}
    assert confirm_panel.confirmed(pending, tab, "done")["status"] == "done"
    with pytest.raises(PageError, match="Nothing is waiting"):
        confirm_panel.confirmed(pending, tab, "run")
    tab.pick_expression(second)
    with pytest.raises(PageError, match="another expression"):
        confirm_panel.confirmed(pending, tab, "done")
    assert confirm_panel.confirmed({"action": "empty", "expression": None}, tab, "empty")
