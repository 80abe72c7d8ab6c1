"""What the page shows of a Session, as plain values (testable without a browser).

The canvas gets one JSON value: the frame (a JPEG, only when it changed), every object's mask
as exact row-major run lengths, the proposal, and the timeline. The browser draws all of it,
so opacity, outline and compare never ask the server.
"""
from __future__ import annotations

import html
import re

import numpy as np

from app.masks.overlay import hex_colour, object_colour
from app.ui.frame_images import FRAME_IMAGES
from app.ui.session import Session

STATUS_LABELS = {"todo": "to do", "in_progress": "in progress", "done": "done", "reviewed": "reviewed"}
STATUS_ICONS = {"todo": "○", "in_progress": "◐", "done": "●", "reviewed": "✔"}
# Object colours, in label order: distinct on natural images; the first is the old magenta.
PROPOSAL_COLOR = "#00c8ff"
# Timeline letters: manual, model, propagated, empty (flagged frames come as a list).
TIMELINE = {"manual": "m", "model": "a", "propagated": "p", "empty": "e"}


def runs(mask: np.ndarray) -> list[int]:
    """Row-major run lengths, starting with a (possibly empty) run of background: exact and
    small for masks, and decoded in the browser with a loop."""
    flat = np.ascontiguousarray(mask, dtype=bool).ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    lengths = np.diff(bounds).tolist()
    return ([0] + lengths) if flat.size and flat[0] else lengths


def from_runs(counts: list[int], shape: tuple[int, int]) -> np.ndarray:
    """The inverse of runs (tests and tools use it)."""
    values = np.arange(len(counts)) % 2 == 1
    return np.repeat(values, counts).reshape(shape)


def source_kind(source: str | None) -> str:
    if source in (None, "manual", "propagated"):
        return source or "empty"
    return "model"


def canvas_value(session: Session, refresh_checks: bool = True) -> dict:
    """The canvas's value. The frame's JPEG is left out when the canvas already holds it."""
    media = session.media
    if media is None:
        return {"tab": session.tab, "message": "Add media to start: drop an image or a video under Add media.",
                "info": info_html(info(session))}
    image_key = f"{media['id']}:{session.frame}"
    value = {"tab": session.tab, "image_key": image_key, "width": media["width"], "height": media["height"],
             "frame": session.frame, "frames": media["frames"], "objects": [], "active": None,
             "proposal": None, "revision": session.revision}
    if session.sent_image != image_key:
        session.studio.show_frame(media["id"], session.frame)  # SAM 2 (when set up) embeds it now
        value["image"] = FRAME_IMAGES.get(session.studio, media["id"], session.frame)
        session.sent_image = image_key
        FRAME_IMAGES.ahead(session.studio, media["id"], session.frame, media["frames"])
    if session.expression_id is None:
        value["message"] = "Write a referring expression for this media, then draw its mask."
        value["info"] = info_html(info(session))
        return value
    store, eid = session.store, session.expression_id
    for i, obj in enumerate(store.list_objects(eid)):
        mask = store.get_mask(eid, session.frame, obj["id"])
        value["objects"].append({"id": obj["id"], "label": obj["label"],
                                 "color": hex_colour(object_colour(i)), "runs": runs(mask)})
    value["active"] = session.object_id
    proposal = store.get_proposal(eid, session.frame, session.object_id)
    if proposal is not None:
        value["proposal"] = {"runs": runs(proposal[0]), "source": proposal[1], "color": PROPOSAL_COLOR}
    if media["frames"] > 1:
        sources = store.mask_sources(eid, session.object_id)
        value["timeline"] = "".join(TIMELINE[source_kind(sources.get(f))] for f in range(media["frames"]))
        value["flagged"] = [f for f in session.studio.frames_to_check(eid, session.object_id, refresh_checks)
                            if sources.get(f) != "manual"]
    # The line under the canvas comes with the canvas's value: it changes in the same frame.
    active = [o["runs"] for o in value["objects"] if o["id"] == session.object_id]
    value["info"] = info_html(info(session, sum(active[0][1::2]) if active else None))
    return value


def info(session: Session, area: int | None = None) -> str:
    """The line under the canvas: expression, status, frame, object, mask size and source
    (`area`: the mask's size when the caller already has it)."""
    if session.media_id is None:
        return "Add media to start: drop an image or a video under **Add media**."
    if session.expression_id is None:
        return "Write a referring expression for this media, then draw its mask."
    store, eid, oid = session.store, session.expression_id, session.object_id
    expr = store.get_expression(eid)
    if area is None:
        area = int(store.get_mask(eid, session.frame, oid).sum())
    source = store.mask_sources(eid, oid).get(session.frame, "empty")
    can_undo, can_redo = store.can_undo_redo(eid)
    label = next((o["label"] for o in store.list_objects(eid) if o["id"] == oid), "?")
    text = (f"**{expr['text']}** · {STATUS_LABELS[expr['status']]} · frame {session.frame} · object {label} · "
            f"mask: {area} px ({source}) · revision {expr['revision']}"
            f"{' · undo available' if can_undo else ''}{' · redo available' if can_redo else ''}")
    notes = store.notes(eid)
    if notes:
        text += "\n\n" + "\n".join(f"> **{n['kind']}** ({n['created_at'][:16]}): {n['text']}" for n in notes[-3:])
    return text


def info_html(text: str) -> str:
    """The line's markdown (bold, paragraphs, > quotes) as the small HTML the canvas shows."""
    blocks = []
    for block in text.split("\n\n"):
        lines = [re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", html.escape(line, quote=False))
                 for line in block.split("\n")]
        quoted = all(line.startswith("&gt; ") for line in lines)
        body = "<br>".join(line[5:] if quoted else line for line in lines)
        blocks.append(f"<blockquote>{body}</blockquote>" if quoted else f"<p>{body}</p>")
    return "".join(blocks)


def media_choices(session: Session) -> list[tuple[str, int]]:
    return [(f"{m['name']} · {m['kind']}, {m['frames']} frame{'s' if m['frames'] != 1 else ''} · "
             f"{m['finished'] or 0}/{m['expressions']} done", m["id"]) for m in session.store.list_media()]


def expression_choices(session: Session, status: str | None = None) -> list[tuple[str, int]]:
    if session.media_id is None:
        return []
    return [(f"{STATUS_ICONS[e['status']]} {e['text']}  [{STATUS_LABELS[e['status']]}]", e["id"])
            for e in session.store.list_expressions(session.media_id) if status in (None, "all", e["status"])]


def object_choices(session: Session) -> list[tuple[str, int]]:
    if session.expression_id is None:
        return []
    return [(f"object {o['label']}", o["id"]) for o in session.store.list_objects(session.expression_id)]


def history(session: Session) -> list[list]:
    if session.expression_id is None:
        return []
    return [[r["id"], r["action"], r["state"], r["created_at"][:19].replace("T", " "), r["changes"]]
            for r in reversed(session.store.history(session.expression_id))]
