"""What the annotation page does, as plain functions of (studio, small values).

The page keeps a tiny per-tab state {"media_id", "expression_id", "revision"}; frames, masks
and history stay on the server. Every function returns plain values or gr.update()s, so the
whole page logic is testable without a browser.
"""
from __future__ import annotations

import cv2
import gradio as gr
import numpy as np

import engine
from app import rle
from app.api import user_errors
from app.display import DisplayImages
from app.overlay import render_overlay
from app.studio import Studio

MASK_RGB = (255, 0, 255)  # magenta: rare in natural images, so the mask stands out
ADD_COLOR, ERASE_COLOR = "rgb(255, 0, 255)", "rgb(0, 255, 0)"  # the two brush colours
STATUS_LABELS = {"todo": "to do", "in_progress": "in progress", "done": "done", "reviewed": "reviewed"}
STATUS_ICONS = {"todo": "○", "in_progress": "◐", "done": "●", "reviewed": "✔"}


def empty_state() -> dict:
    # "base": the frame's saved mask (RLE) the editor was loaded with; strokes apply to it.
    return {"media_id": None, "expression_id": None, "revision": None, "base": None}


def media_choices(studio: Studio) -> list[tuple[str, int]]:
    return [(f"{m['name']} · {m['kind']}, {m['frames']} frame{'s' if m['frames'] != 1 else ''} · "
             f"{m['finished'] or 0}/{m['expressions']} done", m["id"]) for m in studio.store.list_media()]


def expression_choices(studio: Studio, media_id: int | None) -> list[tuple[str, int]]:
    if media_id is None:
        return []
    return [(f"{STATUS_ICONS[e['status']]} {e['text']}  [{STATUS_LABELS[e['status']]}]", e["id"])
            for e in studio.store.list_expressions(media_id)]


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


def _encode_base(frame: int, mask: np.ndarray) -> dict:
    return {"frame": frame, "rle": rle.encode(mask) if mask.any() else None}


def _decode_base(base: dict | None, frame: int, shape: tuple[int, int]) -> np.ndarray | None:
    if not base or base.get("frame") != frame:
        return None
    return rle.decode(base["rle"]) if base["rle"] else np.zeros(shape, bool)


def _editor(background: str) -> dict:
    return {"background": background, "layers": [], "composite": None}


class PageLogic:
    def __init__(self, studio: Studio):
        self.studio = studio
        self.store = studio.store
        self.display = DisplayImages()

    # -- choosing what to look at ----------------------------------------------------------
    def initial(self):
        """On page load: reopen the last expression this project worked on."""
        last = self.store.get_setting("last_expression")
        media = media_choices(self.studio)
        state = empty_state()
        if last is not None:
            try:
                expr = self.store.get_expression(last)
                state.update(media_id=expr["media_id"], expression_id=expr["id"], revision=expr["revision"])
            except LookupError:
                pass
        if state["media_id"] is None and media:
            state["media_id"] = media[0][1]
            exprs = self.store.list_expressions(state["media_id"])
            if exprs:
                state.update(expression_id=exprs[0]["id"], revision=exprs[0]["revision"])
        return state, gr.update(choices=media, value=state["media_id"]), \
            gr.update(choices=expression_choices(self.studio, state["media_id"]), value=state["expression_id"])

    def pick_media(self, media_id):
        state = empty_state()
        if media_id is None:
            return state, gr.update(choices=[], value=None)
        state["media_id"] = int(media_id)
        exprs = self.store.list_expressions(state["media_id"])
        if exprs:
            state.update(expression_id=exprs[0]["id"], revision=exprs[0]["revision"])
        return state, gr.update(choices=expression_choices(self.studio, state["media_id"]),
                                value=state["expression_id"])

    def pick_expression(self, state, expression_id):
        state = dict(state or empty_state())
        if expression_id is None:
            state.update(expression_id=None, revision=None)
            return state
        expr = self.store.get_expression(int(expression_id))
        state.update(media_id=expr["media_id"], expression_id=expr["id"], revision=expr["revision"])
        self.store.set_setting("last_expression", expr["id"])
        return state

    def next_expression(self, state):
        """The next expression that is not finished, across media; wraps around."""
        exprs = self.store.list_expressions()
        if not exprs:
            return state, gr.update(), gr.update()
        current = (state or {}).get("expression_id")
        ids = [e["id"] for e in exprs]
        start = ids.index(current) + 1 if current in ids else 0
        ordered = exprs[start:] + exprs[:start]
        pick = next((e for e in ordered if e["status"] in ("todo", "in_progress")), ordered[0])
        state = self.pick_expression(state, pick["id"])
        return state, gr.update(value=pick["media_id"]), \
            gr.update(choices=expression_choices(self.studio, pick["media_id"]), value=pick["id"])

    # -- the frame view --------------------------------------------------------------------
    def slider(self, state):
        media_id = (state or {}).get("media_id")
        frames = self.store.get_media(media_id)["frames"] if media_id else 1
        # A slider needs max > min; a still image simply hides it.
        return gr.update(minimum=0, maximum=max(frames - 1, 1), value=0, step=1,
                         visible=frames > 1, label=f"Frame (of {frames})")

    def view(self, state, frame, opacity, outline_only, show_overlay):
        """(state, editor, preview, info) for one frame. The editor shows the saved mask baked
        into its background and an empty paint layer; state remembers that mask as the base."""
        state = dict(state or empty_state())
        frame = int(frame or 0)
        if state.get("media_id") is None:
            return state, None, None, "Add media to start: drop an image or a video under **Add media**."
        image = self.studio.frame(state["media_id"], frame)
        if state.get("expression_id") is None:
            state["base"] = None
            shown = self.display.write(image)
            return state, _editor(shown), shown, "Write a referring expression for this media, then paint its mask."
        eid = state["expression_id"]
        mask = self.store.get_mask(eid, frame)
        state["base"] = _encode_base(frame, mask)
        shown = self._overlay(image, mask, opacity, outline_only, show_overlay)
        return state, _editor(shown), shown, self.info(eid, frame, mask)

    def _overlay(self, image, mask, opacity, outline_only, show_overlay) -> str:
        """The frame with the mask drawn over it, as a file for the browser."""
        if show_overlay:
            image = render_overlay(image, mask, opacity=opacity, outline_only=outline_only, color=MASK_RGB)
        return self.display.write(image)

    def info(self, expression_id: int, frame: int, mask: np.ndarray | None = None) -> str:
        expr = self.store.get_expression(expression_id)
        if mask is None:
            mask = self.store.get_mask(expression_id, frame)
        source = self.store.mask_sources(expression_id).get(frame, "empty")
        can_undo, can_redo = self.store.can_undo_redo(expression_id)
        return (f"**{expr['text']}** · {STATUS_LABELS[expr['status']]} · frame {frame} · "
                f"mask: {int(mask.sum())} px ({source}) · revision {expr['revision']}"
                f"{' · undo available' if can_undo else ''}{' · redo available' if can_redo else ''}")

    # -- edits -----------------------------------------------------------------------------
    def current_mask(self, state, frame: int, editor_value) -> np.ndarray:
        """The base the editor was loaded with (or the stored mask) plus the strokes on it."""
        media = self.store.get_media(state["media_id"])
        shape = (media["height"], media["width"])
        base = _decode_base(state.get("base"), frame, shape)
        if base is None:
            base = self.store.get_mask(state["expression_id"], frame)
        return apply_strokes(base, editor_value)

    @user_errors
    def save(self, state, frame, editor_value, opacity, outline_only, show_overlay):
        """Autosave after each stroke (and the Save button): the editor is left as it is."""
        eid, frame = self._require(state), int(frame)
        mask = self.current_mask(state, frame, editor_value)
        revision = self.store.save_mask(eid, frame, mask, base_revision=state["revision"])
        image = self.studio.frame(state["media_id"], frame)
        return {**state, "revision": revision}, self._overlay(image, mask, opacity, outline_only, show_overlay), \
            self.info(eid, frame, mask)

    @user_errors
    def correct(self, op, state, frame, editor_value, opacity, outline_only, show_overlay, min_area):
        eid, frame = self._require(state), int(frame)
        mask = self.current_mask(state, frame, editor_value)
        _, revision = self.studio.apply_op(eid, frame, op, mask=mask, base_revision=state["revision"],
                                           min_area=int(min_area or 0))
        return self.view({**state, "revision": revision}, frame, opacity, outline_only, show_overlay)

    @user_errors
    def undo_redo(self, undo, state, frame, opacity, outline_only, show_overlay):
        eid = self._require(state)
        step = self.store.undo if undo else self.store.redo
        revision = step(eid, base_revision=state["revision"])
        return self.view({**state, "revision": revision}, frame, opacity, outline_only, show_overlay)

    @user_errors
    def set_status(self, status, state):
        eid = self._require(state)
        revision = self.store.set_status(eid, status, base_revision=state["revision"])
        state = {**state, "revision": revision}
        return state, gr.update(choices=expression_choices(self.studio, state["media_id"]), value=eid), \
            gr.update(choices=media_choices(self.studio), value=state["media_id"])

    @user_errors
    def add_media(self, files):
        added = []
        for f in files or []:
            added += self.studio.add_media(f)
        if not added:
            raise gr.Error("Choose an image, a video or a folder of images to add.")
        state = empty_state()
        state["media_id"] = added[-1]["id"]
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
    def segment(self, state, engine_name, progress=gr.Progress()):
        eid = self._require(state)
        if not engine_name:
            raise gr.Error(str(engine.UnknownEngineError("no engine chosen")) if engine.available_segmenters()
                           else "No segmentation engine is installed yet; paint the mask by hand.")
        result = self.studio.segment(eid, engine_name, progress=lambda f, msg="": progress(f, desc=msg))
        return {**state, "revision": result["revision"]}

    def export(self):
        out = self.studio.store.path.with_name(self.studio.store.path.stem + "_coco.json")
        return str(self.studio.export_coco(out))

    @staticmethod
    def _require(state) -> int:
        if not (state or {}).get("expression_id"):
            raise gr.Error("Pick or add an expression first.")
        return state["expression_id"]

