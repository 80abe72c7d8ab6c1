import sqlite3

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from app.project.schema import migrations
from app.project.store import (
    NotFoundError,
    NothingToDoError,
    ProjectStore,
    StaleRevisionError,
    StoreError,
)
from engine import rle


def box(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def expr(store, video_path):
    media = store.add_media(video_path)
    return store.add_expression(media["id"], "  the red   square ")


def test_add_media_records_decoded_facts_and_copies_file(store, video_path):
    media = store.add_media(video_path)
    assert (media["kind"], media["frames"], media["width"], media["height"]) == ("video", 6, 48, 32)
    assert store.media_file(media["id"]).read_bytes() == video_path.read_bytes()
    again = store.add_media(video_path)
    assert again["existing"] and again["id"] == media["id"]
    assert len(store.list_media()) == 1


def test_bad_media_leaves_nothing_behind(store, tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    with pytest.raises(ValueError, match="broken.mp4"):
        store.add_media(bad)
    assert store.list_media() == []
    assert not store.media_dir.exists() or list(store.media_dir.iterdir()) == []


def test_expression_text_is_normalised_and_gets_an_object(store, expr):
    assert expr["text"] == "the red square"
    assert expr["status"] == "todo" and expr["revision"] == 0
    objects = store.list_objects(expr["id"])
    assert [o["label"] for o in objects] == [1]
    with pytest.raises(StoreError, match="empty"):
        store.add_expression(expr["media_id"], "   ")


def test_mask_round_trip_is_exact(store, expr):
    mask = np.random.default_rng(1).random((32, 48)) > 0.5
    rev = store.save_mask(expr["id"], 3, mask)
    assert rev == 1
    assert np.array_equal(store.get_mask(expr["id"], 3), mask)
    assert not store.get_mask(expr["id"], 2).any()
    assert store.mask_sources(expr["id"]) == {3: "manual"}


def test_mask_validation_teaches(store, expr):
    with pytest.raises(StoreError, match="48x32"):
        store.save_mask(expr["id"], 0, np.ones((10, 10), bool))
    with pytest.raises(StoreError, match="frames 0..5"):
        store.save_mask(expr["id"], 6, np.ones((32, 48), bool))
    with pytest.raises(NotFoundError):
        store.save_mask(999, 0, np.ones((32, 48), bool))


def test_empty_mask_removes_row_and_is_undoable(store, expr):
    store.save_mask(expr["id"], 0, box(32, 48, 2, 9, 3, 12))
    store.save_mask(expr["id"], 0, np.zeros((32, 48), bool))
    assert store.mask_sources(expr["id"]) == {}
    store.undo(expr["id"])
    assert store.get_mask(expr["id"], 0).sum() == 7 * 9


def test_undo_redo_walks_history_and_new_edit_discards_redo(store, expr):
    a, b, c = box(32, 48, 0, 5, 0, 5), box(32, 48, 5, 20, 5, 20), box(32, 48, 10, 30, 0, 48)
    eid = expr["id"]
    store.save_mask(eid, 1, a)
    store.save_mask(eid, 1, b)
    store.set_status(eid, "done")
    store.undo(eid)
    assert store.get_expression(eid)["status"] == "in_progress"  # the first edit moved it from to do
    store.undo(eid)
    assert np.array_equal(store.get_mask(eid, 1), a)
    store.redo(eid)
    assert np.array_equal(store.get_mask(eid, 1), b)
    store.save_mask(eid, 1, c)  # ends the redo branch
    with pytest.raises(NothingToDoError):
        store.redo(eid)
    states = [r["state"] for r in store.history(eid)]
    assert states == ["applied", "applied", "discarded", "applied"]
    store.undo(eid), store.undo(eid), store.undo(eid)
    assert not store.get_mask(eid, 1).any()
    assert store.get_expression(eid)["status"] == "todo"  # undone with the first edit
    with pytest.raises(NothingToDoError):
        store.undo(eid)


def test_history_persists_across_reopen(tmp_path, video_path):
    path = tmp_path / "p.sqlite"
    with ProjectStore(path) as s:
        e = s.add_expression(s.add_media(video_path)["id"], "x")
        s.save_mask(e["id"], 0, box(32, 48, 0, 8, 0, 8))
        s.save_mask(e["id"], 0, box(32, 48, 8, 16, 8, 16))
    with ProjectStore(path) as s:
        s.undo(e["id"])
        assert np.array_equal(s.get_mask(e["id"], 0), box(32, 48, 0, 8, 0, 8))
        s.redo(e["id"])
        assert np.array_equal(s.get_mask(e["id"], 0), box(32, 48, 8, 16, 8, 16))


def test_stale_revision_is_refused_and_nothing_overwritten(store, expr):
    eid = expr["id"]
    tab_a = tab_b = store.get_expression(eid)["revision"]
    tab_a = store.save_mask(eid, 0, box(32, 48, 0, 4, 0, 4), base_revision=tab_a)
    with pytest.raises(StaleRevisionError, match="Reload"):
        store.save_mask(eid, 0, box(32, 48, 10, 20, 10, 20), base_revision=tab_b)
    assert np.array_equal(store.get_mask(eid, 0), box(32, 48, 0, 4, 0, 4))
    with pytest.raises(StaleRevisionError):
        store.undo(eid, base_revision=tab_b)
    assert store.undo(eid, base_revision=tab_a) == tab_a + 1


def test_failed_save_rolls_back_whole_transaction(store, expr):
    eid = expr["id"]
    good, bad = box(32, 48, 0, 4, 0, 4), np.ones((3, 3), bool)
    with pytest.raises(StoreError):
        store.save_masks(eid, {0: good, 1: bad})
    assert store.mask_sources(eid) == {}
    assert store.history(eid) == []
    assert store.get_expression(eid)["revision"] == 0


def test_keep_manual_protects_corrected_frames(store, expr):
    eid = expr["id"]
    manual = box(32, 48, 0, 4, 0, 4)
    store.save_mask(eid, 0, manual)
    proposal = {f: box(32, 48, 10, 20, 10, 20) for f in range(3)}
    store.save_masks(eid, proposal, source="flowrvs", keep_manual=True)
    assert np.array_equal(store.get_mask(eid, 0), manual)
    assert store.mask_sources(eid) == {0: "manual", 1: "flowrvs", 2: "flowrvs"}


def test_status_validation(store, expr):
    with pytest.raises(StoreError, match="todo, in_progress, done, reviewed"):
        store.set_status(expr["id"], "finished")
    store.set_status(expr["id"], "done")
    assert store.get_expression(expr["id"])["status"] == "done"


def test_migrations_recorded_and_idempotent(tmp_path):
    path = tmp_path / "m.sqlite"
    ProjectStore(path).close()
    ProjectStore(path).close()
    con = sqlite3.connect(path)
    names = [r[0] for r in con.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names == [m.name for m in migrations._migrations]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migration_applies_to_old_file(tmp_path):
    """A file created before m002 gets it on open, with its data intact."""
    from sqlite_utils import Database
    path = tmp_path / "old.sqlite"
    db = Database(path)
    migrations.apply(db, stop_before="m002_settings")
    assert "settings" not in db.table_names()
    db.close()
    with ProjectStore(path) as s:
        s.set_setting("shortcuts", {"save": "s"})
        assert s.get_setting("shortcuts") == {"save": "s"}


def test_stored_rle_is_valid_coco(store, expr):
    mask = box(32, 48, 3, 17, 5, 40)
    store.save_mask(expr["id"], 2, mask)
    row = next(store.iter_masks())
    r = {"size": [row["height"], row["width"]], "counts": row["counts"]}
    coco = {"size": r["size"], "counts": r["counts"].encode("ascii")}
    assert np.array_equal(rle.decode(r), mask)
    assert mask_utils.area(coco) == mask.sum()
    assert mask_utils.toBbox(coco).tolist() == [5.0, 3.0, 35.0, 14.0]
    assert store.integrity_check() == "ok"


def test_import_baseline_keeps_free_labels_and_undo_returns_to_it(store, video_path):
    from app.project.store import BaselineExpression, BaselineObject
    media = store.add_media(video_path)
    existing = store.add_expression(media["id"], "already here")          # takes label 1
    square = box(32, 48, 2, 10, 2, 12)
    counts = rle.encode(square)["counts"]
    result = store.import_baseline(
        [BaselineObject(media["id"], label=1, category="dog", masks={0: counts, 3: counts}),
         BaselineObject(media["id"], label=7, category="cat", masks={1: counts}, sources={1: "manual"})],
        [BaselineExpression(media["id"], "the dog and the cat", [0, 1], status="done"),
         BaselineExpression(media["id"], "the cat", [1], status="nonsense")])
    assert result.relabelled == 1 and result.masks == 3
    labels = {o["id"]: o["label"] for o in store.all_objects()}
    assert labels[result.object_ids[1]] == 7                  # free: kept
    assert labels[result.object_ids[0]] == 8                  # 1 was taken: the next after the highest
    both, cat = (store.get_expression(e) for e in result.expression_ids)
    assert both["status"] == "done" and cat["status"] == "todo"
    assert sorted(o["id"] for o in store.list_objects(both["id"])) == sorted(result.object_ids)
    assert np.array_equal(store.get_mask(both["id"], 3, result.object_ids[0]), square)
    assert store.mask_sources(cat["id"]) == {1: "manual"}
    store.save_mask(cat["id"], 1, np.zeros_like(square))
    store.undo(cat["id"])                                    # back to the imported baseline
    assert np.array_equal(store.get_mask(cat["id"], 1), square)
    assert store.get_expression(existing["id"])["text"] == "already here"


def test_import_baseline_is_all_or_nothing(store, video_path):
    from app.project.store import BaselineExpression, BaselineObject
    media = store.add_media(video_path)
    counts = rle.encode(box(32, 48, 2, 10, 2, 12))["counts"]
    before = len(store.list_expressions())
    with pytest.raises(StoreError, match="frame 99 is outside"):
        with store.transaction():
            store.import_baseline([BaselineObject(media["id"], masks={0: counts})],
                                  [BaselineExpression(media["id"], "fine", [0])])
            store.import_baseline([BaselineObject(media["id"], masks={99: counts})], [])
    assert len(store.list_expressions()) == before and not store.all_objects()


@pytest.mark.parametrize("text, expected", [
    ("the cat \ud800 on the left", "character 9 is a lone surrogate (U+D800)"),
    ("\udfff", "character 1 is a lone surrogate (U+DFFF)"),
])
def test_expression_text_that_is_not_valid_unicode_is_refused_before_sqlite(store, video_path, expr, text, expected):
    media = store.list_media()[0]
    for write in (lambda: store.add_expression(media["id"], text), lambda: store.set_text(expr["id"], text)):
        with pytest.raises(StoreError, match="not valid Unicode") as refused:
            write()
        assert expected in str(refused.value)
    assert [e["text"] for e in store.list_expressions()] == ["the red square"]


def test_expression_text_has_a_stated_length_limit_that_can_be_raised(store, expr, monkeypatch):
    from app.media.limits import EXPRESSION_CHARS
    long = "a" * (EXPRESSION_CHARS.default + 1)
    with pytest.raises(StoreError, match="FLOWLABEL_MAX_EXPRESSION_CHARS") as refused:
        store.set_text(expr["id"], long)
    assert f"{len(long):,} characters in one expression is over the limit of {EXPRESSION_CHARS.default:,}" \
        in str(refused.value)
    assert store.get_expression(expr["id"])["text"] == "the red square"
    monkeypatch.setenv(EXPRESSION_CHARS.env, str(len(long)))
    store.set_text(expr["id"], long)
    assert store.get_expression(expr["id"])["text"] == long
