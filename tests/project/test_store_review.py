"""Proposals kept apart from corrections, objects per expression, review notes, m003."""
import numpy as np
import pytest

from app.project.store import ProjectStore, StoreError
from tests.helpers.old_projects import old_project


def box(y0, y1, x0, x1):
    m = np.zeros((32, 48), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def expr(store, video_path):
    return store.add_expression(store.add_media(video_path)["id"], "the red square")


def test_proposals_survive_manual_frames(store, expr):
    eid = expr["id"]
    store.save_mask(eid, 1, box(0, 5, 0, 5))
    store.save_masks(eid, {0: box(10, 20, 10, 20), 1: box(10, 20, 10, 20)}, source="flowrvs", keep_manual=True)
    assert store.mask_sources(eid) == {0: "flowrvs", 1: "manual"}
    proposal, source = store.get_proposal(eid, 1)
    assert source == "flowrvs" and np.array_equal(proposal, box(10, 20, 10, 20))
    assert store.get_proposal(eid, 2) is None
    assert store.proposal_frames(eid) == {0: "flowrvs", 1: "flowrvs"}
    store.save_masks(eid, {0: np.zeros((32, 48), bool)}, source="flowrvs")  # an empty proposal: none kept
    assert store.get_proposal(eid, 0) is None


def test_objects_add_remove_are_undoable_and_masks_are_per_object(store, expr):
    eid = expr["id"]
    first = store.list_objects(eid)[0]["id"]
    second = store.add_object(eid)
    assert [o["label"] for o in store.list_objects(eid)] == [1, 2]
    store.save_mask(eid, 0, box(0, 4, 0, 4), object_id=second)
    assert not store.get_mask(eid, 0, object_id=first).any()
    store.remove_object(eid, second)
    assert [o["id"] for o in store.list_objects(eid)] == [first]
    with pytest.raises(StoreError, match="at least one object"):
        store.remove_object(eid, first)
    store.undo(eid)
    assert [o["id"] for o in store.list_objects(eid)] == [first, second]
    assert store.get_mask(eid, 0, object_id=second).sum() == 16


def test_reject_needs_a_finished_expression_and_a_comment(store, expr):
    eid = expr["id"]
    with pytest.raises(StoreError, match="only finished"):
        store.reject(eid, "edges are loose")
    store.set_status(eid, "done")
    with pytest.raises(StoreError, match="empty"):
        store.reject(eid, "  ")
    store.reject(eid, "left edge misses the tail")
    assert store.get_expression(eid)["status"] == "in_progress"
    assert [(n["kind"], n["text"]) for n in store.notes(eid)] == [("reject", "left edge misses the tail")]


def test_m003_keeps_existing_history(tmp_path, video_path):
    # History as the store at m002 wrote it: one change row.
    path = old_project(tmp_path / "old.sqlite", "m003_proposals_notes_links", [
        ("INSERT INTO media VALUES (1,'video','c.avi','x.avi','abc',48,32,6,5.0,'t')", []),
        ("INSERT INTO expressions VALUES (1,1,'x','todo',1,'t','t')", []),
        ("INSERT INTO revisions VALUES (1,1,'status -> done','applied','t')", []),
        ("INSERT INTO changes VALUES (1,1,'status',NULL,NULL,'\"todo\"','\"done\"')", [])])
    with ProjectStore(path) as s:
        assert s.history(1)[0]["changes"] == 1
        s.undo(1)
        assert s.get_expression(1)["status"] == "todo"
