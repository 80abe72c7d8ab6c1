"""Scripting API: Gradio named endpoints for gradio_client (see the README's example).

Each endpoint is a thin, typed wrapper over a Studio verb; errors reach the client as
gr.Error with the store's or importer's own message.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

import engine
from app.formats import FormatError
from app.mask_png import read_mask_png, write_mask_png
from app.media import MediaError
from app.store import StoreError
from app.studio import Studio

# Mistakes a user can fix; anything else is a bug and keeps its traceback in the log.
USER_ERRORS = (StoreError, MediaError, FormatError, engine.UnknownEngineError, engine.EngineNotConfigured,
               engine.Cancelled, FileNotFoundError)


def user_errors(fn):
    """Turn the project's own errors into gr.Error at the UI edge, messages intact."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise gr.Error(str(e), print_exception=False) from e
    return wrapper


def _file(file: FileData | dict) -> tuple[str, str | None]:
    """gr.api hands files over as FileData or as its dict form, depending on the caller."""
    if isinstance(file, dict):
        return file["path"], file.get("orig_name")
    return file.path, file.orig_name


def register(studio: Studio) -> None:
    """Declare the endpoints; call inside a gr.Blocks context."""
    out_dir = Path(tempfile.mkdtemp(prefix="flowlabel-api-"))
    atexit.register(shutil.rmtree, out_dir, ignore_errors=True)

    @user_errors
    def add_media(file: FileData) -> dict:
        """Import an image or video into the project."""
        path, orig_name = _file(file)
        row = studio.add_media(path, name=orig_name or Path(path).name)[0]
        return {"media_id": row["id"], "kind": row["kind"], "frames": row["frames"],
                "width": row["width"], "height": row["height"]}

    @user_errors
    def add_expression(media_id: int, text: str) -> dict:
        """Add a referring expression (one new object) to a media."""
        return {"expression_id": studio.store.add_expression(int(media_id), text)["id"]}

    @user_errors
    def save_mask(expression_id: int, frame: int, mask: FileData, base_revision: int | None = None) -> dict:
        """Save a frame's mask from a PNG (nonzero = object); refuses a stale base_revision."""
        revision = studio.store.save_mask(int(expression_id), int(frame), read_mask_png(_file(mask)[0]),
                                          base_revision=base_revision)
        return {"revision": revision}

    @user_errors
    def get_mask(expression_id: int, frame: int) -> FileData:
        """A frame's mask as a PNG, 0/255, the frame's size."""
        mask = studio.store.get_mask(int(expression_id), int(frame))
        # One file per (expression, frame), rewritten: a script looping over frames leaves no pile.
        return FileData(path=str(write_mask_png(mask, out_dir / f"mask-{int(expression_id)}-{int(frame)}.png")))

    @user_errors
    def segment(expression_id: int, engine: str, overwrite_manual: bool = False) -> dict:
        """Run a registered engine on the expression's media; frames an annotator saved are
        kept unless overwrite_manual."""
        return {"frames": studio.segment(int(expression_id), engine, overwrite_manual=bool(overwrite_manual))["frames"]}

    @user_errors
    def propagate(expression_id: int, frame: int, direction: str = "forward", count: int | None = None,
                  overwrite_manual: bool = False, method: str | None = None) -> dict:
        """Carry the frame's mask forward or backward (count frames, or to the end) with method "sam2"
        (SAM 2's memory; the default when its weights are configured) or "dis" (optical flow); manual
        frames are kept as anchors, unless overwrite_manual. "absent": frames where SAM 2 lost the object."""
        result = studio.propagate(int(expression_id), int(frame), direction, int(count) if count else None,
                                  overwrite_manual=bool(overwrite_manual), method=method or None)
        return {"frames": result["frames"], "flagged": result["flagged"], "revision": result["revision"],
                "absent": result.get("absent", []), "method": result.get("method", "dis")}

    @user_errors
    def export_coco() -> FileData:
        """The COCO JSON (with RefCOCO-style refs) of the whole project."""
        return FileData(path=str(studio.export_coco(out_dir / "coco.json")))

    for fn in (add_media, add_expression, save_mask, get_mask, propagate, export_coco):
        gr.api(fn, api_name=fn.__name__)
    gr.api(segment, api_name="segment", concurrency_id="engine", concurrency_limit=1)
