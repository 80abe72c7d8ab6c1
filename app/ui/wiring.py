"""The one place where events are wired: user errors become gr.Error here, and the common
"show the session" outputs are built here."""
from __future__ import annotations

from app.api import user_errors
from app.ui import views
from app.ui.session import Session

EDITS = {"concurrency_id": "edits", "concurrency_limit": 1}  # one at a time: revisions never fork


def on(trigger, fn, inputs=None, outputs=None, **kwargs):
    """trigger(fn, ...) with the project's errors shown to the user as gr.Error."""
    return trigger(user_errors(fn), inputs, outputs, **kwargs)


def shown(page) -> list:
    """The components `show` fills."""
    return [page.state, page.canvas, page.info, page.history]


def show(page, session: Session, refresh_checks: bool = True, history: bool = True) -> dict:
    """Everything that follows the session's frame and object. Canvas events (strokes, frame
    steps) leave the history table alone (history=False): it refreshes when opened."""
    value = views.canvas_value(session, refresh_checks)
    active = [o["runs"] for o in value.get("objects", []) if o["id"] == session.object_id]
    area = sum(active[0][1::2]) if active else None
    shown = {page.state: session, page.canvas: value, page.info: views.info(session, area)}
    return {**shown, page.history: views.history(session)} if history else shown
