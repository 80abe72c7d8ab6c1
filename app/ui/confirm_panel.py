"""The page's second, explicit step before what cannot be taken back lightly: a model run on a
finished expression, marking done with empty frames, emptying the trash. One row of text and
buttons; the button for the pending action is the one shown."""
from __future__ import annotations

import gradio as gr

from app.project.store import FINISHED
from app.ui.session import PageError
from app.ui.wiring import on

ACTIONS = ("run", "done", "empty")   # segment anyway, mark done anyway, empty the trash


def build(page) -> None:
    with gr.Group(visible=False, elem_id="confirm") as page.confirm_row:
        page.confirm_text = gr.Markdown(elem_id="confirm-text")
        with gr.Row():
            page.confirm_btns = {
                "run": gr.Button("Run anyway", size="sm", variant="stop", elem_id="confirm-run"),
                "done": gr.Button("Mark done anyway", size="sm", variant="stop", elem_id="confirm-done"),
                "empty": gr.Button("Empty the trash for good", size="sm", variant="stop", elem_id="confirm-empty"),
            }
            page.confirm_cancel = gr.Button("Cancel", size="sm", elem_id="confirm-cancel")
    page.pending = gr.State(None)  # what the shown question is about: action, expression, status


def outputs(page) -> list:
    return [page.confirm_row, page.confirm_text, *page.confirm_btns.values(), page.pending]


def ask(page, action: str, text: str, session=None, **details) -> dict:
    pending = {"action": action, "expression": getattr(session, "expression_id", None), **details}
    return {page.confirm_row: gr.update(visible=True), page.confirm_text: text, page.pending: pending,
            **{btn: gr.update(visible=name == action) for name, btn in page.confirm_btns.items()}}


def confirmed(pending: dict | None, session, action: str) -> dict:
    """The question's details, when the answer still applies to what the tab shows."""
    if not pending or pending.get("action") != action:
        raise PageError("Nothing is waiting for this confirmation; do it again.")
    if pending.get("expression") not in (None, session.expression_id):
        raise PageError("That question was about another expression; click the button again on this one.")
    return pending


def hide(page) -> dict:
    return {page.confirm_row: gr.update(visible=False), page.confirm_text: "", page.pending: None}


def rerun_question(session, engine_name: str, overwrite: bool) -> str | None:
    """What to ask before a model run on a finished expression; None when there is nothing to ask."""
    if session.expression_id is None:
        return None
    status = session.store.get_expression(session.expression_id)["status"]
    if status not in FINISHED:
        return None
    what = ("it will **replace** the annotator's frames too (overwrite is ticked)" if overwrite else
            "it fills only empty frames and model proposals; manual and propagated frames are kept")
    return f"This expression is marked **{status}**. Run {engine_name} on it anyway? {what}."


def wire(page) -> None:
    on(page.confirm_cancel.click, lambda: hide(page), None, outputs(page))
