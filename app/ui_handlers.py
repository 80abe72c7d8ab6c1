"""What the annotation page does, as plain functions of (studio, small values).

The page keeps a tiny per-tab state (ids, a revision number, the frame's saved mask as RLE and
pending tool clicks); frames, masks and history stay on the server. Every function returns
plain values or gr.update()s, so the page logic is testable without a browser.
"""
from __future__ import annotations

import json

import cv2
import gradio as gr
import numpy as np

import engine
from app import rle
from app.api import user_errors
from app.display import DisplayImages
from app.overlay import render_overlay
from app.studio import Studio
from app.tempfiles import Spool

MASK_RGB = (255, 0, 255)  # magenta: rare in natural images, so the mask stands out
PROPOSAL_RGB = (0, 200, 255)
ADD_COLOR, ERASE_COLOR = "rgb(255, 0, 255)", "rgb(0, 255, 0)"  # the two brush colours
STATUS_LABELS = {"todo": "to do", "in_progress": "in progress", "done": "done", "reviewed": "reviewed"}
STATUS_ICONS = {"todo": "○", "in_progress": "◐", "done": "●", "reviewed": "✔"}
TOOLS = ["Paint", "Box", "Click +", "Click −", "Polygon"]
# Frame-strip colours: manual, model, propagated, empty.
STRIP = {"manual": (60, 180, 75), "propagated": (245, 130, 48), "model": (0, 130, 200), "empty": (215, 215, 215)}
DEFAULT_SHORTCUTS = {
    "prev_frame": "ArrowLeft", "next_frame": "ArrowRight", "next_expression": "n", "save": "s",
    "undo": "Ctrl+z", "redo": "Ctrl+Shift+z", "toggle_overlay": "o", "outline_only": "l",
    "fill_holes": "f", "smooth": "m", "propagate_forward": "p", "propagate_backward": "Shift+p",
    "next_to_check": "j", "status_done": "d", "compare": "c",
    **{f"candidate_{i}": str(i) for i in range(1, 6)},
}


def empty_state() -> dict:
    # "base": the frame's saved mask (RLE) the editor was loaded with; strokes apply to it.
    # "points": pending clicks of the box and polygon tools, [x, y, +1/-1].
    return {"media_id": None, "expression_id": None, "object_id": None, "revision": None,
            "base": None, "points": []}


def media_choices(studio: Studio) -> list[tuple[str, int]]:
    return [(f"{m['name']} · {m['kind']}, {m['frames']} frame{'s' if m['frames'] != 1 else ''} · "
             f"{m['finished'] or 0}/{m['expressions']} done", m["id"]) for m in studio.store.list_media()]


def expression_choices(studio: Studio, media_id: int | None, status: str | None = None) -> list[tuple[str, int]]:
    if media_id is None:
        return []
    return [(f"{STATUS_ICONS[e['status']]} {e['text']}  [{STATUS_LABELS[e['status']]}]", e["id"])
            for e in studio.store.list_expressions(media_id) if not status or status == "all" or e["status"] == status]


def apply_strokes(base: np.ndarray, editor_value) -> np.ndarray:
    """The mask after the strokes painted in the editor since it was loaded.

    The editor shows the saved mask baked into its background and starts with an empty paint
    layer; magenta strokes add to the mask, green strokes erase from it. (Gradio's editor
    does not reliably draw layers sent from the server, so the mask never travels as a layer.)
    """
    layers = (editor_value or {}).get("layers") or []
    layer = layers[0] if layers else None
    if layer is None:
        return base.copy()
    layer = np.asarray(layer)
    if layer.shape[:2] != base.shape:  # the editor may hand back a resized canvas
        layer = cv2.resize(layer, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_NEAREST)
    painted = layer[..., 3] > 0 if layer.shape[-1] == 4 else layer.any(axis=-1)
    # Anti-aliased edges blend colours; red vs green still tells add from erase.
    adds = painted & (layer[..., 0].astype(int) >= layer[..., 1])
    return (base | adds) & ~(painted & ~adds)


def frame_strip(n: int, sources: dict[int, str], current: int, width: int = 600) -> np.ndarray:
    """A thin image, one cell per frame coloured by where its mask came from; the current
    frame is marked dark."""
    cells = np.array([STRIP.get(_kind(sources.get(f)), STRIP["empty"]) for f in range(n)], np.uint8)
    strip = cells[None].repeat(14, axis=0)
    strip[:4, current] = (40, 40, 40)
    strip[-4:, current] = (40, 40, 40)
    return cv2.resize(strip, (max(width, n), 14), interpolation=cv2.INTER_NEAREST)


def _kind(source: str | None) -> str:
    if source in (None, "manual", "propagated"):
        return source or "empty"
    return "model"


# The engine the page offers first for each kind of media: the shipped demo models.
DEFAULT_ENGINES = {"video": "flowrvs-demo", "image": "flowseg-demo"}


def engine_for_kind(kind: str | None, current: str | None, engines: list[str]) -> str | None:
    """Keep the annotator's choice when it can segment this kind of media; otherwise (or when
    it is the other kind's default) switch to this kind's default engine."""
    fits = [e for e in engines if kind is None or kind in engine.segmenter_info(e).kinds]
    if current in fits and current not in DEFAULT_ENGINES.values():
        return current
    preferred = DEFAULT_ENGINES.get(kind)
    if preferred in fits:
        return preferred
    return current if current in fits else (fits[0] if fits else current)


def parse_shortcuts(text: str) -> dict:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise gr.Error(f"The shortcuts are not valid JSON ({e.msg} at line {e.lineno}); "
                       'write them as {"action": "key", ...}') from None
    unknown = sorted(set(data) - set(DEFAULT_SHORTCUTS)) if isinstance(data, dict) else None
    if unknown is None or unknown or not all(isinstance(v, str) and v for v in data.values()):
        raise gr.Error(f"Shortcuts map actions to keys; unknown actions: {unknown}. "
                       f"Actions: {', '.join(DEFAULT_SHORTCUTS)}")
    keys = [v.lower() for v in data.values()]
    clash = sorted({k for k in keys if keys.count(k) > 1})
    if clash:
        raise gr.Error(f"These keys are given to more than one action: {', '.join(clash)}")
    return data


class PageLogic:
    def __init__(self, studio: Studio):
        self.studio = studio
        self.store = studio.store
        self.display = DisplayImages()
        self.exports = Spool("export", keep=2)  # dataset exports, until Gradio has copied them

    # -- choosing what to look at ----------------------------------------------------------
    def initial(self):
        """On page load: reopen the last expression this project worked on."""
        last = self.store.get_setting("last_expression")
        media = media_choices(self.studio)
        state = empty_state()
        if last is not None:
            try:
                state = self.pick_expression(state, last)
            except LookupError:
                pass
        if state["media_id"] is None and media:
            state = self._first_expression(media[0][1])
        return state, gr.update(choices=media, value=state["media_id"]), \
            gr.update(choices=expression_choices(self.studio, state["media_id"]), value=state["expression_id"])

    def _first_expression(self, media_id: int, status: str | None = None) -> dict:
        state = {**empty_state(), "media_id": media_id}
        exprs = [e for e in self.store.list_expressions(media_id)
                 if not status or status == "all" or e["status"] == status]
        return self.pick_expression(state, exprs[0]["id"]) if exprs else state

    def pick_media(self, media_id, status=None):
        if media_id is None:
            return empty_state(), gr.update(choices=[], value=None)
        state = self._first_expression(int(media_id), status)
        return state, gr.update(choices=expression_choices(self.studio, state["media_id"], status),
                                value=state["expression_id"])

    def pick_expression(self, state, expression_id):
        state = dict(state or empty_state())
        if expression_id is None:
            state.update(expression_id=None, object_id=None, revision=None)
            return state
        expr = self.store.get_expression(int(expression_id))
        objects = self.store.list_objects(expr["id"])
        state.update(media_id=expr["media_id"], expression_id=expr["id"], revision=expr["revision"],
                     object_id=objects[0]["id"] if objects else None, points=[])
        self.store.set_setting("last_expression", expr["id"])
        return state

    def pick_object(self, state, object_id):
        return {**(state or empty_state()), "object_id": int(object_id) if object_id is not None else None,
                "points": []}

    def next_expression(self, state, review_mode=False):
        """The next expression to work on (or, in review mode, to review), across media."""
        wanted = ("done",) if review_mode else ("todo", "in_progress")
        exprs = self.store.list_expressions()
        current = (state or {}).get("expression_id")
        ids = [e["id"] for e in exprs]
        start = ids.index(current) + 1 if current in ids else 0
        pick = next((e for e in exprs[start:] + exprs[:start] if e["status"] in wanted), None)
        if pick is None:
            gr.Info("Nothing left to review." if review_mode else "Every expression is done.")
            return state, gr.update(), gr.update()
        state = self.pick_expression(state, pick["id"])
        return state, gr.update(value=pick["media_id"]), \
            gr.update(choices=expression_choices(self.studio, pick["media_id"]), value=pick["id"])

    def filter_expressions(self, state, status):
        media_id = (state or {}).get("media_id")
        return gr.update(choices=expression_choices(self.studio, media_id, status))

    # -- the frame view --------------------------------------------------------------------
    def slider(self, state):
        media_id = (state or {}).get("media_id")
        frames = self.store.get_media(media_id)["frames"] if media_id else 1
        # A slider needs max > min; a still image simply hides it.
        return gr.update(minimum=0, maximum=max(frames - 1, 1), value=0, step=1,
                         visible=frames > 1, label=f"Frame (of {frames})")

    def view(self, state, frame, opacity, outline_only, show_overlay, compare=False):
        """(state, editor, preview, info, strip, history, objects) for one frame. The editor shows
        the saved mask baked into its background and an empty paint layer; state keeps that
        mask as the base the strokes apply to."""
        state = {**empty_state(), **(state or {}), "points": []}
        frame = int(frame or 0)
        if state.get("media_id") is None:
            return (state, None, None, "Add media to start: drop an image or a video under **Add media**.",
                    None, [], gr.update(choices=[], value=None))
        image = self.studio.show_frame(state["media_id"], frame)  # SAM 2 embeds it now, ahead of a click
        if state.get("expression_id") is None:
            state["base"] = None
            shown = self.display.write(image)
            return (state, _editor(shown), shown, "Write a referring expression for this media, then paint its mask.",
                    None, [], gr.update(choices=[], value=None))
        eid, oid = state["expression_id"], state["object_id"]
        # Read the revision before the mask: this tab has now seen (at least) that revision.
        state["revision"] = self.store.get_expression(eid)["revision"]
        mask = self.store.get_mask(eid, frame, oid)
        state["base"] = {"frame": frame, "rle": rle.encode(mask) if mask.any() else None}
        shown = self._overlay(image, mask, opacity, outline_only, show_overlay)
        preview = self._compare(state, frame, image, mask, opacity, outline_only) if compare else shown
        objects = gr.update(choices=[(f"object {o['label']}", o["id"]) for o in self.store.list_objects(eid)],
                            value=oid)
        return (state, _editor(shown), preview, self.info(state, frame, mask), self.strip(state, frame),
                self.history(state), objects)

    def _overlay(self, image, mask, opacity, outline_only, show_overlay, color=MASK_RGB) -> str:
        """The frame with the mask drawn over it, as a file for the browser."""
        if show_overlay:
            image = render_overlay(image, mask, opacity=opacity, outline_only=outline_only, color=color)
        return self.display.write(image)

    def _compare(self, state, frame, image, mask, opacity, outline_only) -> str:
        """Model proposal (left, cyan) beside the corrected mask (right, magenta)."""
        proposal = self.store.get_proposal(state["expression_id"], frame, state["object_id"])
        left = image.copy() if proposal is None else render_overlay(
            image, proposal[0], opacity=opacity, outline_only=outline_only, color=PROPOSAL_RGB)
        right = render_overlay(image, mask, opacity=opacity, outline_only=outline_only, color=MASK_RGB)
        gap = np.full((image.shape[0], 4, 3), 255, np.uint8)
        return self.display.write(np.concatenate([left, gap, right], axis=1))

    def info(self, state, frame: int, mask: np.ndarray) -> str:
        eid, oid = state["expression_id"], state["object_id"]
        expr = self.store.get_expression(eid)
        source = self.store.mask_sources(eid, oid).get(frame, "empty")
        can_undo, can_redo = self.store.can_undo_redo(eid)
        label = next((o["label"] for o in self.store.list_objects(eid) if o["id"] == oid), "?")
        text = (f"**{expr['text']}** · {STATUS_LABELS[expr['status']]} · frame {frame} · object {label} · "
                f"mask: {int(mask.sum())} px ({source}) · revision {expr['revision']}"
                f"{' · undo available' if can_undo else ''}{' · redo available' if can_redo else ''}")
        notes = self.store.notes(eid)
        if notes:
            text += "\n\n" + "\n".join(f"> **{n['kind']}** ({n['created_at'][:16]}): {n['text']}" for n in notes[-3:])
        if state.get("points"):
            text += f"\n\n{len(state['points'])} point(s) placed"
        return text

    def strip(self, state, frame: int) -> np.ndarray:
        media = self.store.get_media(state["media_id"])
        return frame_strip(media["frames"], self.store.mask_sources(state["expression_id"], state["object_id"]), frame)

    def history(self, state) -> list[list]:
        return [[r["id"], r["action"], r["state"], r["created_at"][:19].replace("T", " "), r["changes"]]
                for r in reversed(self.store.history(state["expression_id"]))]

    # -- edits -----------------------------------------------------------------------------
    def current_mask(self, state, frame: int, editor_value) -> np.ndarray:
        """The base the editor was loaded with (or the stored mask) plus the strokes on it."""
        base = state.get("base")
        if base and base.get("frame") == frame:
            media = self.store.get_media(state["media_id"])
            base = rle.decode(base["rle"]) if base["rle"] else np.zeros((media["height"], media["width"]), bool)
        else:
            base = self.store.get_mask(state["expression_id"], frame, state["object_id"])
        return apply_strokes(base, editor_value)

    @user_errors
    def autosave(self, state, frame, editor_value, opacity, outline_only, show_overlay, compare=False):
        """The editor's input event also fires when the page reloads the editor (after Segment,
        say): only a change to the mask is saved, so a model's proposal never turns "manual" by
        itself. The Save button (save) still accepts a mask as it is."""
        eid, frame = self._require(state), int(frame)
        mask = self.current_mask(state, frame, editor_value)
        if np.array_equal(mask, self.store.get_mask(eid, frame, state["object_id"])):
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        return self.save(state, frame, editor_value, opacity, outline_only, show_overlay, compare)

    @user_errors
    def save(self, state, frame, editor_value, opacity, outline_only, show_overlay, compare=False):
        """Save the editor's mask (the Save button, and autosave when strokes changed it); the
        editor is left as it is."""
        eid, frame = self._require(state), int(frame)
        mask = self.current_mask(state, frame, editor_value)
        revision = self.store.save_mask(eid, frame, mask, object_id=state["object_id"],
                                        base_revision=state["revision"])
        state = {**state, "revision": revision}
        image = self.studio.frame(state["media_id"], frame)
        preview = self._compare(state, frame, image, mask, opacity, outline_only) if compare else \
            self._overlay(image, mask, opacity, outline_only, show_overlay)
        return state, preview, self.info(state, frame, mask), self.strip(state, frame)

    @user_errors
    def correct(self, op, state, frame, editor_value, opacity, outline_only, show_overlay, compare, min_area):
        eid, frame = self._require(state), int(frame)
        mask = self.current_mask(state, frame, editor_value)
        _, revision = self.studio.apply_op(eid, frame, op, mask=mask, base_revision=state["revision"],
                                           min_area=int(min_area or 0), object_id=state["object_id"])
        return self.view({**state, "revision": revision}, frame, opacity, outline_only, show_overlay, compare)

    @user_errors
    def click(self, tool, state, frame, editor_value, opacity, outline_only, show_overlay, compare,
              evt: gr.SelectData):
        """A click on the overlay with the box, click or polygon tool."""
        eid, frame = self._require(state), int(frame)
        if tool == "Paint":
            raise gr.Error("Pick Box, Click +, Click − or Polygon to use clicks on the overlay; paint in the editor.")
        media = self.store.get_media(state["media_id"])
        x, y = int(evt.index[0]), int(evt.index[1])
        if compare:  # side by side: the right half is the corrected mask
            x = x - media["width"] - 4 if x >= media["width"] + 4 else x
        point = [x, y, -1 if tool == "Click −" else 1]
        points = [*state.get("points", []), point]
        if tool == "Box" and len(points) < 2:
            return self._pending(state, points, frame, opacity, outline_only, show_overlay, compare)
        if tool == "Polygon":
            return self._pending(state, points, frame, opacity, outline_only, show_overlay, compare)
        kind = "box" if tool == "Box" else "click"
        mask = self.current_mask(state, frame, editor_value)
        _, revision = self.studio.apply_tool(eid, frame, kind, points[-2:] if kind == "box" else [point], mask=mask,
                                             object_id=state["object_id"], base_revision=state["revision"])
        return self.view({**state, "revision": revision}, frame, opacity, outline_only, show_overlay, compare)

    def _pending(self, state, points, frame, opacity, outline_only, show_overlay, compare):
        """Show the points placed so far on the overlay, without saving."""
        out = list(self.view(state, frame, opacity, outline_only, show_overlay, compare))
        out[0] = {**out[0], "points": points}
        image = cv2.imread(out[2])[:, :, ::-1].copy()
        for i, (x, y, _) in enumerate(points):
            cv2.circle(image, (x, y), 4, (255, 255, 0), -1)
            if i:
                cv2.line(image, tuple(points[i - 1][:2]), (x, y), (255, 255, 0), 1)
        out[2] = self.display.write(image)
        out[3] = self.info(out[0], frame, self.store.get_mask(state["expression_id"], frame, state["object_id"]))
        return tuple(out)

    @user_errors
    def close_polygon(self, state, frame, editor_value, opacity, outline_only, show_overlay, compare):
        eid, frame = self._require(state), int(frame)
        points = state.get("points") or []
        if len(points) < 3:
            raise gr.Error("Place at least 3 points on the overlay with the Polygon tool, then close it.")
        mask = self.current_mask(state, frame, editor_value)
        _, revision = self.studio.apply_tool(eid, frame, "polygon", points, mask=mask,
                                             object_id=state["object_id"], base_revision=state["revision"])
        return self.view({**state, "revision": revision}, frame, opacity, outline_only, show_overlay, compare)

    @user_errors
    def undo_redo(self, undo, state, frame, opacity, outline_only, show_overlay, compare=False):
        eid = self._require(state)
        step = self.store.undo if undo else self.store.redo
        revision = step(eid, base_revision=state["revision"])
        objects = [o["id"] for o in self.store.list_objects(eid)]
        oid = state["object_id"] if state["object_id"] in objects else objects[0]
        return self.view({**state, "revision": revision, "object_id": oid}, frame, opacity, outline_only,
                         show_overlay, compare)

    @user_errors
    def add_object(self, state, frame, opacity, outline_only, show_overlay, compare):
        eid = self._require(state)
        oid = self.store.add_object(eid)
        state = {**state, "object_id": oid, "revision": self.store.get_expression(eid)["revision"]}
        return self.view(state, frame, opacity, outline_only, show_overlay, compare)

    @user_errors
    def remove_object(self, state, frame, opacity, outline_only, show_overlay, compare):
        eid = self._require(state)
        revision = self.store.remove_object(eid, state["object_id"], base_revision=state["revision"])
        state = {**state, "object_id": self.store.list_objects(eid)[0]["id"], "revision": revision}
        return self.view(state, frame, opacity, outline_only, show_overlay, compare)

    # -- video -----------------------------------------------------------------------------
    @user_errors
    def propagate(self, direction, state, frame, count, overwrite, opacity, outline_only, show_overlay, compare,
                  progress=gr.Progress()):
        eid = self._require(state)
        result = self.studio.propagate(eid, int(frame), direction, int(count) if count else None,
                                       object_id=state["object_id"], overwrite_manual=bool(overwrite),
                                       progress=lambda f, msg="": progress(f, desc=msg))
        done = result["frames"]
        if result.get("absent"):
            gr.Warning(f"SAM 2 found the object absent on {len(result['absent'])} frame(s), first {result['flagged']}: "
                       "they are left empty and noted for review.")
        elif result["flagged"] is not None:
            gr.Warning(f"Tracking confidence dropped at frame {result['flagged']}: propagation stopped there. "
                       "Check that frame and correct it.")
        elif done:
            gr.Info(f"Propagated to frames {done[0]}–{done[-1]} ({len(done)} frames); manual frames kept.")
        return self.view({**state, "revision": result["revision"]}, frame, opacity, outline_only, show_overlay,
                         compare)

    @user_errors
    def next_to_check(self, state, frame):
        """The frame whose mask changes most from its neighbour, among those no one corrected."""
        eid = self._require(state)
        target = self.studio.next_to_check(eid, int(frame), state["object_id"])
        if target is None:
            gr.Info("No frame stands out: masks change smoothly (or are all corrected).")
            return int(frame)
        return target

    # -- status and review -----------------------------------------------------------------
    @user_errors
    def set_status(self, status, state, show):
        eid = self._require(state)
        revision = self.store.set_status(eid, status, base_revision=state["revision"])
        state = {**state, "revision": revision}
        return state, gr.update(choices=expression_choices(self.studio, state["media_id"], show), value=eid), \
            gr.update(choices=media_choices(self.studio), value=state["media_id"])

    @user_errors
    def reject(self, state, comment, show):
        eid = self._require(state)
        revision = self.store.reject(eid, comment, base_revision=state["revision"])
        state = {**state, "revision": revision}
        return state, gr.update(choices=expression_choices(self.studio, state["media_id"], show), value=eid), \
            gr.update(choices=media_choices(self.studio), value=state["media_id"]), ""

    def agreement(self, state):
        """Plot data: IoU between the proposal and the final mask, per frame, and a summary line."""
        import pandas as pd
        eid = self._require(state)
        rows = self.studio.proposal_agreement(eid, state["object_id"])
        if not rows:
            return pd.DataFrame({"frame": [], "iou": [], "source": []}), \
                "No model or propagation proposal for this object yet."
        table = pd.DataFrame(rows)
        moved = int((table["iou"] < 0.99).sum())
        return table, (f"Mean IoU between proposal and final mask: {table['iou'].mean():.3f} over {len(table)} "
                       f"frame(s); the annotator changed {moved} of them.")

    # -- settings --------------------------------------------------------------------------
    def shortcuts(self) -> str:
        return json.dumps({**DEFAULT_SHORTCUTS, **self.store.get_setting("shortcuts", {})}, indent=1)

    def save_shortcuts(self, text):
        data = parse_shortcuts(text)
        self.store.set_setting("shortcuts", data)
        gr.Info("Shortcuts saved in this project.")
        merged = self.shortcuts()
        return merged, merged

    # -- media and expressions -------------------------------------------------------------
    @user_errors
    def engine_choice(self, state, current):
        """The engine dropdown follows the media kind (flowseg-demo for images, flowrvs-demo
        for videos) unless the annotator picked an engine that fits."""
        kind = self.store.get_media(state["media_id"])["kind"] if state.get("media_id") else None
        return gr.update(value=engine_for_kind(kind, current, engine.available_segmenters()))

    @user_errors
    def add_media(self, files, keep_partial=False):
        added = []
        for f in files or []:
            added += self.studio.add_media(f, keep_partial=bool(keep_partial))
        if not added:
            raise gr.Error("Choose an image, a video or a folder of images to add.")
        state = {**empty_state(), "media_id": added[-1]["id"]}
        gr.Info(f"Added {', '.join(r['name'] for r in added)}")
        return state, gr.update(choices=media_choices(self.studio), value=state["media_id"]), \
            gr.update(choices=expression_choices(self.studio, state["media_id"]), value=None), None

    @user_errors
    def add_expression(self, state, text):
        if not (state or {}).get("media_id"):
            raise gr.Error("Pick a media first, then write an expression for it.")
        expr = self.store.add_expression(state["media_id"], text)
        state = self.pick_expression(state, expr["id"])
        return state, gr.update(choices=expression_choices(self.studio, state["media_id"]), value=expr["id"]), ""

    @user_errors
    def segment(self, state, engine_name, overwrite=False, progress=gr.Progress()):
        eid = self._require(state)
        if not engine_name:
            raise gr.Error("No segmentation engine is installed yet; paint the mask by hand."
                           if not engine.available_segmenters() else "Choose an engine first.")
        result = self.studio.segment(eid, engine_name, progress=lambda f, msg="": progress(f, desc=msg),
                                     object_id=state["object_id"], overwrite_manual=bool(overwrite))
        return {**state, "revision": result["revision"]}

    def candidate_gallery(self, state):
        """Thumbnails of the last model run's top candidates (FlowSeg), best first."""
        found = self.studio.candidates(state["expression_id"], state["object_id"]) \
            if (state or {}).get("expression_id") else None
        if found is None:
            return gr.update(value=None, visible=False)
        image = self.studio.frame(state["media_id"], self.studio.candidate_frame(state["expression_id"],
                                                                                 state["object_id"]))
        items = [(self.display.write(render_overlay(image, m, opacity=0.5, color=MASK_RGB)), f"{i + 1}: {score:.2f}")
                 for i, (m, score) in enumerate(zip(*found))]
        return gr.update(value=items, visible=True)

    @user_errors
    def choose_candidate(self, index, state, frame, opacity, outline_only, show_overlay, compare):
        eid = self._require(state)
        revision = self.studio.choose_candidate(eid, int(index), state["object_id"], base_revision=state["revision"])
        return self.view({**state, "revision": revision}, frame, opacity, outline_only, show_overlay, compare)

    def choose_from_gallery(self, state, frame, opacity, outline_only, show_overlay, compare, evt: gr.SelectData):
        return self.choose_candidate(evt.index, state, frame, opacity, outline_only, show_overlay, compare)

    def export(self):
        out = self.studio.store.path.with_name(self.studio.store.path.stem + "_coco.json")
        return str(self.studio.export_coco(out))

    @user_errors
    def export_dataset(self, fmt):
        path, report = self.studio.export_dataset(fmt, self.exports.new_job())
        for warning in getattr(report, "warnings", []) or []:
            gr.Warning(str(warning))
        return str(path)

    @user_errors
    def import_dataset(self, fmt, src, media_root):
        if not (src or "").strip():
            raise gr.Error("Type the path of the dataset (file or folder) on this machine.")
        report = self.studio.import_dataset(fmt, src.strip(), (media_root or "").strip() or None)
        return report.summary(), gr.update(choices=media_choices(self.studio))

    @staticmethod
    def _require(state) -> int:
        if not (state or {}).get("expression_id"):
            raise gr.Error("Pick or add an expression first.")
        return state["expression_id"]


def _editor(background: str) -> dict:
    return {"background": background, "layers": [], "composite": None}
