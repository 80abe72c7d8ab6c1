"""Scripting API for renaming, deleting (to the trash) and restoring, and for status changes
with their checks: thin wrappers over the store, app/project/trash.py and Studio.set_status."""
from __future__ import annotations

import gradio as gr

from app.project import trash
from app.serve import api_args as arg


def who(request: gr.Request | None, default: str = "api") -> str:
    """The logged-in user (served with a login), else `default`: recorded with a deletion."""
    return getattr(request, "username", None) or default


def register(studio, user_errors) -> None:
    """Declare the endpoints; call inside a gr.Blocks context (from app.api.register)."""
    store = studio.store

    @user_errors
    def rename_media(media_id: int, name: str) -> dict:
        """Change a media's display name."""
        row = store.rename_media(arg.whole(media_id, "media_id"), arg.text(name, "name"))
        return {"media_id": row["id"], "name": row["name"]}

    @user_errors
    def edit_expression(expression_id: int, text: str, base_revision: int | None = None) -> dict:
        """Replace an expression's text (a typo fix; one undoable revision)."""
        revision = store.set_text(arg.whole(expression_id, "expression_id"), arg.text(text, "text"),
                                  base_revision=arg.optional_whole(base_revision, "base_revision"))
        return {"revision": revision}

    @user_errors
    def rename_object(expression_id: int, object_id: int, name: str) -> dict:
        """Change an object's name: its category, as exports write it."""
        row = store.rename_object(arg.whole(expression_id, "expression_id"), arg.whole(object_id, "object_id"),
                                  arg.text(name, "name"))
        return {"object_id": row["id"], "category": row["category"]}

    @user_errors
    def delete(kind: str, id: int, request: gr.Request = None) -> dict:
        """Move a media (with its expressions), an expression or an object to the trash."""
        row = trash.delete(store, arg.text(kind, "kind"), arg.whole(id, "id"), by=who(request))
        return {"kind": kind, "id": row["id"], "deleted_at": row["deleted_at"], "deleted_by": row["deleted_by"]}

    @user_errors
    def restore(kind: str, id: int) -> dict:
        """Bring a deleted media, expression or object back from the trash."""
        row = trash.restore(store, arg.text(kind, "kind"), arg.whole(id, "id"))
        return {"kind": kind, "id": row["id"]}

    @user_errors
    def list_trash() -> list[dict]:
        """What is in the trash: kind, id, name, media_id, deleted_at, deleted_by."""
        return trash.list_trash(store)

    @user_errors
    def empty_trash() -> dict:
        """Delete everything in the trash for good; how many of each kind went."""
        return trash.empty(store)

    @user_errors
    def set_status(expression_id: int, status: str, force: bool = False, base_revision: int | None = None) -> dict:
        """todo, in_progress, done or reviewed. Done is refused while frames are empty (the error
        says which), unless force."""
        revision = studio.set_status(arg.whole(expression_id, "expression_id"), arg.text(status, "status"),
                                     base_revision=arg.optional_whole(base_revision, "base_revision"),
                                     force=arg.flag(force, "force"))
        return {"revision": revision}

    for fn in (rename_media, edit_expression, rename_object, delete, restore, list_trash, empty_trash, set_status):
        gr.api(fn, api_name=fn.__name__, concurrency_id="edits", concurrency_limit=1)
