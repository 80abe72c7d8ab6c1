"""The one place where events are wired: user errors become gr.Error here, and the common
"show the session" outputs are built here."""
from __future__ import annotations

import functools
import threading

from app.errors import USER_ERRORS
from app.serve.api import user_errors
from app.ui import views
from app.ui.session import Session

EDITS = {"concurrency_id": "edits", "concurrency_limit": 1}  # one at a time: revisions never fork
# The canvas's server function runs outside the queue: it and the queued edits share this lock.
EDIT_LOCK = threading.RLock()


def on(trigger, fn, inputs=None, outputs=None, **kwargs):
    """trigger(fn, ...) with the project's errors shown to the user as gr.Error."""
    if kwargs.get("concurrency_id") == "edits":
        fn = _locked(fn)
    return trigger(user_errors(fn), inputs, outputs, **kwargs)


def _locked(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with EDIT_LOCK:
            return fn(*args, **kwargs)
    return wrapper


def server_function(fn):
    """For the canvas's server function: edits in order with the queued ones, and the
    project's errors returned as {"error": message} for the canvas to show."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with EDIT_LOCK:
                return fn(*args, **kwargs)
        except USER_ERRORS as e:  # the canvas's one translation: it shows the message
            return {"error": str(e)}
    return wrapper


def shown(page) -> list:
    """The components `show` fills."""
    return [page.state, page.canvas, page.history]


def show(page, session: Session, refresh_checks: bool = True, history: bool = True) -> dict:
    """Everything that follows the session's frame and object (the canvas's value carries the
    line under it). Canvas events (strokes, frame steps) leave the history table alone
    (history=False): it refreshes when opened."""
    page.tabs.register(session)  # the canvas's server calls find this very session by its token
    shown = {page.state: session, page.canvas: views.canvas_value(session, refresh_checks)}
    return {**shown, page.history: views.history(session)} if history else shown
