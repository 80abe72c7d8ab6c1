"""Left column, folded: rename the media, fix the expression's text, rename the object; delete
any of them to the trash; restore from the trash or empty it (after a confirmation)."""
from __future__ import annotations

import gradio as gr

from app.project import trash
from app.ui import confirm_panel
from app.ui.session import PageError
from app.ui.wiring import EDITS, on, show, shown


def build(page) -> None:
    with gr.Accordion("Rename, delete, trash", open=False, elem_id="manage"):
        page.new_name = gr.Textbox(label="New name or text", elem_id="new-name",
                                   placeholder="the media's name, the expression's words, or the object's category")
        with gr.Row():
            page.rename_btns = {kind: gr.Button(label, size="sm", min_width=60, elem_id=f"rename-{kind}")
                                for kind, label in (("media", "Rename media"), ("expression", "Fix expression text"),
                                                    ("object", "Rename object"))}
        with gr.Row():
            page.delete_btns = {kind: gr.Button(f"Delete {kind}", size="sm", min_width=60, variant="stop",
                                                elem_id=f"delete-{kind}") for kind in trash.KINDS}
        page.trash = gr.Dropdown(label="Trash (deleted, restorable)", choices=[], elem_id="trash-list")
        with gr.Row():
            page.restore = gr.Button("Restore", size="sm", min_width=60, elem_id="restore")
            page.empty_trash = gr.Button("Empty trash…", size="sm", min_width=60, elem_id="empty-trash")


def trash_choices(store) -> list[tuple[str, str]]:
    return [(f"{t['kind']} {t['id']}: {t['name']} · {t['deleted_at'][:16].replace('T', ' ')} by {t['deleted_by']}",
             f"{t['kind']}:{t['id']}") for t in trash.list_trash(store)]


def rename(kind: str, session, text: str) -> str:
    store = session.store
    if kind == "media":
        if session.media_id is None:
            raise PageError("Pick a media first.")
        return f"The media is now called {store.rename_media(session.media_id, text)['name']}."
    if kind == "expression":
        session._saved(store.set_text(session.require(), text, base_revision=session.revision))
        return "Expression text saved (Undo takes it back)."
    row = store.rename_object(session.require(), session.object_id, text)
    return f"Object {row['label']} is now a {row['category']} (its category in exports)."


def delete(kind: str, session, by: str) -> str:
    """Move the session's media, expression or object to the trash and move the session on."""
    store = session.store
    if kind == "media":
        if session.media_id is None:
            raise PageError("Pick a media first.")
        row = trash.delete(store, "media", session.media_id, by)
        media = store.list_media()
        session.pick_media(media[0]["id"] if media else None)
        return f"Moved {row['name']} and its expressions to the trash."
    eid = session.require()
    if kind == "expression":
        row = trash.delete(store, "expression", eid, by)
        session.pick_media(session.media_id)
        return f"Moved “{row['text']}” to the trash."
    trash.delete(store, "object", session.object_id, by)
    session.pick_expression(eid)
    return "Moved the object and its masks to the trash."


def restore(session, choice: str | None) -> str:
    if not choice:
        raise PageError("Pick what to restore in the trash list.")
    kind, row_id = choice.split(":")
    row = trash.restore(session.store, kind, int(row_id))
    if kind == "media":
        session.pick_media(row["id"])
    elif kind == "expression":
        session.pick_expression(row["id"])
    else:
        session.revision = session.store.get_expression(session.require())["revision"]
    return f"Restored {kind} {row_id}."


def wire(page) -> None:
    from app.ui.media_panel import lists  # the lists every change here refreshes

    def refreshed(session, note: str | None = None) -> dict:
        if note:
            gr.Info(note)
        return {**show(page, session), **lists(page, session), page.new_name: "",
                page.trash: gr.update(choices=trash_choices(session.store), value=None)}

    def delete_handler(kind):
        def handler(session, request: gr.Request):
            return refreshed(session, delete(kind, session, getattr(request, "username", None) or "page"))
        return handler

    def empty(session, pending):
        confirm_panel.confirmed(pending, session, "empty")
        gone = trash.empty(session.store)
        return {**refreshed(session, "Emptied the trash: " + ", ".join(f"{n} {k}" for k, n in gone.items()) + "."),
                **confirm_panel.hide(page)}

    def ask_empty(session):
        items = trash.list_trash(session.store)
        if not items:
            raise PageError("The trash is empty.")
        return confirm_panel.ask(page, "empty", f"Delete the {len(items)} item(s) in the trash **for good**? Their "
                                                "masks, history and media files go too; this cannot be undone.")

    everything = [*shown(page), page.media, page.expressions, page.new_name, page.trash]
    on(page.demo.load, lambda session: gr.update(choices=trash_choices(session.store)), [page.state], [page.trash])
    for kind, btn in page.rename_btns.items():
        on(btn.click, lambda session, text, kind=kind: refreshed(session, rename(kind, session, text)),
           [page.state, page.new_name], everything, **EDITS)
    for kind, btn in page.delete_btns.items():
        on(btn.click, delete_handler(kind), [page.state], everything, **EDITS)
    on(page.restore.click, lambda session, choice: refreshed(session, restore(session, choice)),
       [page.state, page.trash], everything, **EDITS)
    on(page.empty_trash.click, ask_empty, [page.state], confirm_panel.outputs(page))
    on(page.confirm_btns["empty"].click, empty, [page.state, page.pending], [*everything, *confirm_panel.outputs(page)],
       **EDITS)
