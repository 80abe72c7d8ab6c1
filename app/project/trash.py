"""Deleting, recoverably: media, expressions and objects go to a trash (who, when).

A trashed row stays in the project file, hidden from every reader (the store's `live_*`
views), until it is restored or the trash is emptied. Emptying deletes for good: the rows,
their masks, history and notes, and a media's copied file.
"""
from __future__ import annotations

from app.project.store import NotFoundError, ProjectStore, StoreError, _now

KINDS = {"media": "media", "expression": "expressions", "object": "objects"}


class TrashError(StoreError):
    pass


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise TrashError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    return KINDS[kind]


def _row(store: ProjectStore, kind: str, row_id: int) -> dict:
    row = store._one(f"SELECT * FROM {_kind(kind)} WHERE id = ?", [int(row_id)])
    if row is None:
        raise NotFoundError(f"no {kind} with id {row_id} in this project (trashed or not)")
    return row


def delete(store: ProjectStore, kind: str, row_id: int, by: str) -> dict:
    """Move a media (with its expressions), an expression or an object to the trash."""
    with store.transaction():
        if kind == "media":
            store.get_media(row_id)
        elif kind == "expression":
            store.get_expression(row_id)
        else:
            _check_object_deletable(store, int(row_id))
        store.db.execute(f"UPDATE {_kind(kind)} SET deleted_at = ?, deleted_by = ? WHERE id = ?",
                         [_now(), by or "unknown", int(row_id)])
        return _row(store, kind, row_id)


def _check_object_deletable(store: ProjectStore, object_id: int) -> None:
    obj = store._one("SELECT * FROM live_objects WHERE id = ?", [object_id])
    if obj is None:
        raise NotFoundError(f"no object with id {object_id} in this project (or it is in the trash already)")
    for link in store._rows("SELECT e.id, e.text FROM expression_objects l JOIN live_expressions e "
                            "ON e.id = l.expression_id WHERE l.object_id = ?", [object_id]):
        if len(store.list_objects(link["id"])) == 1:
            raise TrashError(f"object {obj['label']} is the only object of expression {link['id']} "
                             f"({link['text']!r}); delete the expression instead, or add another object first")


def restore(store: ProjectStore, kind: str, row_id: int) -> dict:
    """Bring a trashed row back; an expression or object needs its media back first."""
    with store.transaction():
        row = _row(store, kind, row_id)
        if not row["deleted_at"]:
            raise TrashError(f"{kind} {row_id} is not in the trash")
        if kind != "media":
            media = _row(store, "media", row["media_id"])
            if media["deleted_at"]:
                raise TrashError(f"its media {media['name']!r} (id {media['id']}) is in the trash too; "
                                 "restore the media first")
        store.db.execute(f"UPDATE {_kind(kind)} SET deleted_at = NULL, deleted_by = NULL WHERE id = ?",
                         [int(row_id)])
        return _row(store, kind, row_id)


def list_trash(store: ProjectStore) -> list[dict]:
    """Everything in the trash, newest first: kind, id, name, media_id, deleted_at, deleted_by."""
    return store._rows("""
        SELECT 'media' AS kind, id, name, id AS media_id, deleted_at, deleted_by FROM media
            WHERE deleted_at IS NOT NULL
        UNION ALL SELECT 'expression', id, text, media_id, deleted_at, deleted_by FROM expressions
            WHERE deleted_at IS NOT NULL
        UNION ALL SELECT 'object', id, 'object ' || label || ' (' || category || ')', media_id, deleted_at,
                         deleted_by FROM objects WHERE deleted_at IS NOT NULL
        ORDER BY deleted_at DESC, kind, id""")


def empty(store: ProjectStore) -> dict:
    """Delete everything in the trash for good; returns how many of each kind went."""
    files = []
    with store.transaction():
        items = list_trash(store)
        for item in items:
            if item["kind"] == "media":
                files.append(_row(store, "media", item["id"])["path"])
                for e in store._rows("SELECT id FROM expressions WHERE media_id = ?", [item["id"]]):
                    _purge_expression(store, e["id"])
                for o in store._rows("SELECT id FROM objects WHERE media_id = ?", [item["id"]]):
                    _purge_object(store, o["id"])
                store.db.execute("DELETE FROM frame_index WHERE media_id = ?", [item["id"]])
                store.db.execute("DELETE FROM media WHERE id = ?", [item["id"]])
            elif item["kind"] == "expression" and _exists(store, "expressions", item["id"]):
                alone = store._rows("""SELECT l.object_id FROM expression_objects l WHERE l.expression_id = ?
                    AND NOT EXISTS (SELECT 1 FROM expression_objects k WHERE k.object_id = l.object_id
                                    AND k.expression_id != l.expression_id)""", [item["id"]])
                _purge_expression(store, item["id"])
                for o in alone:  # its own objects go with it; shared ones stay with the others
                    _purge_object(store, o["object_id"])
            elif item["kind"] == "object" and _exists(store, "objects", item["id"]):
                _purge_object(store, item["id"])
    for path in files:
        store.drop_unused_file(path)  # byte-identical media share one file
    return {kind: sum(i["kind"] == kind for i in items) for kind in KINDS}


def _exists(store: ProjectStore, table: str, row_id: int) -> bool:
    return store._one(f"SELECT 1 AS x FROM {table} WHERE id = ?", [row_id]) is not None


def _purge_expression(store: ProjectStore, expression_id: int) -> None:
    store.db.execute("DELETE FROM changes WHERE revision_id IN (SELECT id FROM revisions WHERE expression_id = ?)",
                     [expression_id])
    for table in ("revisions", "notes", "expression_objects"):
        store.db.execute(f"DELETE FROM {table} WHERE expression_id = ?", [expression_id])
    store.db.execute("DELETE FROM expressions WHERE id = ?", [expression_id])


def _purge_object(store: ProjectStore, object_id: int) -> None:
    # Other expressions' history may name it: those steps lose the part they can no longer undo.
    for table in ("masks", "proposals", "changes", "expression_objects"):
        store.db.execute(f"DELETE FROM {table} WHERE object_id = ?", [object_id])
    store.db.execute("DELETE FROM objects WHERE id = ?", [object_id])
