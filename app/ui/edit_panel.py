"""Under the canvas: the canvas's own events (strokes, tools, frames, objects), then the
mask line, objects, undo/redo, corrections and propagation."""
from __future__ import annotations

import secrets
from collections import OrderedDict

import gradio as gr

from app.ui import views
from app.ui.playback import play_frames
from app.ui.session import PageError, Session
from app.ui.wiring import EDITS, on, server_function, show, shown
from engine.bounds import BOUNDS

CORRECTIONS = [("fill_holes", "Fill holes", "fill-holes"), ("smooth", "Smooth edges", "smooth"),
               ("remove_specks", "Remove specks", "remove-specks")]
# The buttons whose clicks the canvas queues with its strokes (by elem_id; see QUEUED_EDITS).
QUEUED_BUTTONS = {"undo": {"kind": "undo"}, "redo": {"kind": "redo"}, "save": {"kind": "accept"},
                  "clear": {"kind": "correct", "op": "clear"},
                  **{eid: {"kind": "correct", "op": op} for op, _, eid in CORRECTIONS}}


def build(page) -> None:
    with gr.Row():
        page.undo = gr.Button("Undo", size="sm", min_width=60, elem_id="undo")
        page.redo = gr.Button("Redo", size="sm", min_width=60, elem_id="redo")
        page.save = gr.Button("Accept as manual", size="sm", min_width=60, elem_id="save")
        page.corrections = {op: gr.Button(label, size="sm", min_width=60, elem_id=eid) for op, label, eid in CORRECTIONS}
        page.min_area = gr.Number(64, label="Speck size (px)", precision=0, minimum=0, min_width=80, scale=0,
                                  elem_id="min-area")
        page.clear = gr.Button("Clear", size="sm", variant="stop", min_width=60, elem_id="clear")
        page.add_obj = gr.Button("Add object", size="sm", min_width=60, elem_id="add-object")
        page.rm_obj = gr.Button("Remove object", size="sm", min_width=60, elem_id="remove-object")
    with gr.Row() as page.video_row:  # shown for videos only
        page.back = gr.Button("◀ Propagate", size="sm", min_width=60, elem_id="propagate-backward")
        page.fwd = gr.Button("Propagate ▶", size="sm", min_width=60, elem_id="propagate-forward")
        page.check = gr.Button("Next frame to check", size="sm", min_width=60, elem_id="next-to-check")
        page.count = gr.Number(0, label="Frames to propagate (0 = to the end)", precision=0, minimum=0, min_width=90,
                               elem_id="propagate-count")


def _same_place(session, data: dict) -> None:
    """An edit drawn on one frame/object must not land on another (a late event)."""
    frame, obj = data.get("frame"), data.get("object")
    if frame is not None and int(frame) != session.frame or obj is not None and int(obj) != session.object_id:
        raise PageError(f"That edit was drawn on frame {frame}, object id {obj}, but this tab is now on frame "
                        f"{session.frame}, object id {session.object_id}; it was not saved. Redo it.")


# Edits of the whole expression or of the shown frame that the page queues with the strokes
# (Gradio drops a click while the previous one runs: a burst of Ctrl+Z would lose undos).
QUEUED_EDITS = {
    "undo": lambda session, data: session.undo(),
    "redo": lambda session, data: session.redo(),
    "correct": lambda session, data: session.correct(data["op"], data.get("min_area") or 0),
    "accept": lambda session, data: session.accept(),
}


def canvas_edit(session: Session, data: dict) -> dict:
    """A stroke, a tool, a queued edit or a frame step from the canvas; returns the canvas's
    new value."""
    kind = data.get("kind")
    if kind == "seek":
        session.seek(data["frame"])
    elif kind in QUEUED_EDITS:
        QUEUED_EDITS[kind](session, data)
    else:
        _same_place(session, data)
        if kind == "stroke":
            session.stroke(data["points"], data["radius"], data.get("erase", False))
        else:
            session.tool(kind, data.get("points") or [])
    return views.canvas_value(session, refresh_checks=False)


class Tabs:
    """Sessions by the token their canvas holds (server functions get no gr.State): the newest
    `keep` tabs."""

    def __init__(self, keep: int = BOUNDS.tabs):
        self.keep, self._tabs = keep, OrderedDict()

    def register(self, session: Session) -> None:
        # A copy of a session (Gradio's per-tab copy) carries the token too: the latest wins.
        session.tab = session.tab or secrets.token_hex(16)
        self._tabs[session.tab] = session
        self._tabs.move_to_end(session.tab)
        while len(self._tabs) > self.keep:
            self._tabs.popitem(last=False)

    def get(self, token) -> Session:
        if token not in self._tabs:
            raise PageError("This tab lost its place on the server (restarted?): reload the page.")
        return self._tabs[token]


def server_edit(page) -> list:
    """The canvas's server functions (edits, and frames to play): the tab's Session comes from
    the token in the request."""
    page.tabs = Tabs()

    @server_function
    def canvas_edit_fn(data: dict) -> dict:
        return canvas_edit(page.tabs.get(data.get("tab")), data)
    canvas_edit_fn.__name__ = "canvas_edit"

    @server_function
    def canvas_frames_fn(data: dict) -> dict:
        return play_frames(page.tabs.get(data.get("tab")), data.get("start", 0), data.get("count", 1),
                           data.get("width"))
    canvas_frames_fn.__name__ = "canvas_frames"
    return [canvas_edit_fn, canvas_frames_fn]


def wire(page) -> None:
    def edited(session, show_status, evt: gr.EventData):
        """After a canvas edit (its value brought the line under it): SAM 2's alternatives after a
        click or a box, and the list when the expression's status moved (the first edit)."""
        status = session.store.get_expression(session.expression_id)["status"] if session.expression_id else None
        listed = {} if status == session.listed_status else {
            page.expressions: gr.update(choices=views.expression_choices(session, show_status),
                                        value=session.expression_id)}
        session.listed_status = status
        if evt._data.get("kind") in ("click", "box"):
            return {**page.show_candidates(session), **listed}
        return {**{c: gr.skip() for c in page.candidate_outputs}, **listed}

    def pick_object(session, evt: gr.EventData):
        session.pick_object(evt._data["id"])
        return show(page, session)

    def then_show(verb):
        def handler(session, *args):
            verb(session, *args)
            return show(page, session)
        return handler

    def propagate(direction, session, count, overwrite, progress=gr.Progress()):
        result = session.propagate(direction, count, overwrite, progress=lambda f, msg="": progress(f, desc=msg))
        done = result["frames"]
        if result.get("absent"):
            gr.Warning(f"SAM 2 found the object absent on {len(result['absent'])} frame(s), first {result['flagged']}: "
                       "they are left empty and noted for review.")
        elif result["flagged"] is not None:
            gr.Warning(f"Tracking confidence dropped at frame {result['flagged']}: propagation stopped there. "
                       "Check that frame and correct it.")
        elif done:
            gr.Info(f"Propagated to frames {done[0]}–{done[-1]}: {result['report'].text()}.")
        return show(page, session)

    def next_to_check(session):
        if not session.next_to_check():
            gr.Info("No frame stands out: masks change smoothly (or are all corrected).")
        return show(page, session, refresh_checks=False, history=False)

    out = shown(page)
    def video_row(media_id):  # from the list itself: its change can run before the session has moved
        return gr.update(visible=media_id is None or page.studio.store.get_media(media_id)["frames"] > 1)

    on(page.media.change, video_row, [page.media], [page.video_row])
    on(page.canvas.edited, edited, [page.state, page.show_status], [*page.candidate_outputs, page.expressions],
       trigger_mode="multiple", show_progress="hidden")
    on(page.canvas.pick_object, pick_object, [page.state], out, show_progress="hidden", **EDITS)

    # Undo, redo, Accept as manual, the corrections and Clear go through the canvas's queue
    # (canvas.js: QUEUED), not through Gradio events.
    on(page.add_obj.click, then_show(lambda s: s.add_object()), [page.state], out, **EDITS)
    on(page.rm_obj.click, then_show(lambda s: s.remove_object()), [page.state], out, **EDITS)
    for direction, btn in (("forward", page.fwd), ("backward", page.back)):
        on(btn.click, lambda *a, d=direction: propagate(d, *a), [page.state, page.count, page.overwrite], out, **EDITS)
    on(page.check.click, next_to_check, [page.state], out)
