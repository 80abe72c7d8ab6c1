"""Scripting API: Gradio named endpoints for gradio_client (see docs/scripting.md).

Each endpoint is a thin, typed wrapper over a Studio verb; errors reach the client as
gr.Error with the store's or importer's own message.
"""
from __future__ import annotations

import functools
from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData

from app.errors import USER_ERRORS
from app.masks.png import read_mask_png, write_mask_png, write_png
from app.render import job as render_job
from app.serve import api_args as arg
from app.serve import api_manage
from app.serve.tempfiles import Spool
from app.studio.studio import Studio


def user_errors(fn):
    """The page's and the API's one translation: a UserError becomes gr.Error, message intact; a
    failed read or write of the server's files (OSError) is said without its paths; anything else
    is a bug. Both keep their traceback in the log."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            raise gr.Error(str(e), print_exception=False) from e
        except OSError as e:  # a full disk, say: its message would show server paths to a remote user
            raise gr.Error(f"the server could not read or write a file ({e.strerror or type(e).__name__}); "
                           "tell whoever runs the studio") from e
    return wrapper


def _file(file: FileData | dict, name: str = "file") -> tuple[str, str | None]:
    """gr.api hands files over as FileData or as its dict form, depending on the caller."""
    if isinstance(file, dict) and isinstance(file.get("path"), str):
        return file["path"], file.get("orig_name")
    if isinstance(file, FileData):
        return file.path, file.orig_name
    raise arg.ApiArgumentError(f"{name} must be a file (gradio_client.handle_file(path)), got "
                               f"{type(file).__name__}")


def register(studio: Studio) -> None:
    """Declare the endpoints; call inside a gr.Blocks context."""
    # Files returned are copied into Gradio's cache on return; ours are kept only briefly.
    spool = Spool("api", keep=16)

    @user_errors
    def add_media(file: FileData, keep_partial: bool = False) -> dict:
        """Import an image or video into the project. A video that decodes well short of what its
        container declares is refused as truncated, unless keep_partial (keep what decodes)."""
        path, orig_name = _file(file)
        keep = arg.flag(keep_partial, "keep_partial")
        row = studio.add_media(path, name=orig_name or Path(path).name, keep_partial=keep)[0]
        return {"media_id": row["id"], "kind": row["kind"], "frames": row["frames"],
                "width": row["width"], "height": row["height"]}

    @user_errors
    def add_expression(media_id: int, text: str) -> dict:
        """Add a referring expression (one new object) to a media."""
        return {"expression_id": studio.store.add_expression(arg.whole(media_id, "media_id"),
                                                             arg.text(text, "text"))["id"]}

    @user_errors
    def save_mask(expression_id: int, frame: int, mask: FileData, base_revision: int | None = None) -> dict:
        """Save a frame's mask from a PNG (nonzero = object); refuses a stale base_revision."""
        eid, frame = arg.whole(expression_id, "expression_id"), arg.whole(frame, "frame")
        base = arg.optional_whole(base_revision, "base_revision")
        media = studio.store.get_media(studio.store.get_expression(eid)["media_id"])
        png = read_mask_png(_file(mask, "mask")[0], size=(media["width"], media["height"]))  # header checked first
        revision = studio.store.save_mask(eid, frame, png, base_revision=base)
        return {"revision": revision}

    @user_errors
    def get_mask(expression_id: int, frame: int) -> FileData:
        """A frame's mask as a PNG, 0/255, the frame's size."""
        eid, frame = arg.whole(expression_id, "expression_id"), arg.whole(frame, "frame")
        mask = studio.store.get_mask(eid, frame)
        return FileData(path=str(write_mask_png(mask, spool.new_job() / f"mask-{eid}-{frame}.png")))

    @user_errors
    def get_frame(media_id: int, frame: int) -> FileData:
        """A media's frame as an RGB PNG: exactly the pixels its masks belong to (what decoding
        the video in sequence gives at that index)."""
        media_id, frame = arg.whole(media_id, "media_id"), arg.whole(frame, "frame")
        rgb = studio.frame(media_id, frame)  # checks the index before decoding anything
        return FileData(path=str(write_png(rgb, spool.new_job() / f"frame-{media_id}-{frame}.png")))

    @user_errors
    def segment(expression_id: int, engine: str, overwrite_manual: bool = False) -> dict:
        """Run a registered engine on the expression's media. It fills empty frames and replaces
        model proposals; the annotator's frames (drawn, accepted, imported, propagated from them)
        are kept, and a done/reviewed expression is refused, unless overwrite_manual. "report":
        frames filled, replaced and kept, by kind; "notice": the same in words."""
        done = studio.segment(arg.whole(expression_id, "expression_id"), arg.text(engine, "engine"),
                              overwrite_manual=arg.flag(overwrite_manual, "overwrite_manual"))
        return {"frames": done["frames"], "revision": done["revision"], "report": done["report"].as_dict(),
                "notice": done["report"].text()}

    @user_errors
    def propagate(expression_id: int, frame: int, direction: str = "forward", count: int | None = None,
                  overwrite_manual: bool = False, method: str | None = None) -> dict:
        """Carry the frame's mask forward or backward (count frames, or to the end) with method "sam2"
        (SAM 2's memory; the default when its weights are configured) or "dis" (optical flow); manual
        frames are kept as anchors, unless overwrite_manual. "absent": frames where SAM 2 lost the object."""
        result = studio.propagate(arg.whole(expression_id, "expression_id"), arg.whole(frame, "frame"),
                                  direction,
                                  arg.optional_whole(count, "count", minimum=0) or None,
                                  overwrite_manual=arg.flag(overwrite_manual, "overwrite_manual"),
                                  method=None if method is None else arg.text(method, "method") or None)
        return {"frames": result["frames"], "flagged": result["flagged"], "revision": result["revision"],
                "absent": result.get("absent", []), "method": result.get("method", "dis"),
                "report": result["report"].as_dict(), "notice": result["report"].text()}

    @user_errors
    def export_coco() -> FileData:
        """The COCO JSON (with RefCOCO-style refs) of the whole project."""
        return FileData(path=str(studio.export_coco(spool.new_job() / "coco.json")))

    @user_errors
    def render(expression_id: int | None = None, media_id: int | None = None, format: str | None = None,
               frames: str | None = None, scale: float = 1.0, fps: float | None = None, layers: str = "image+mask",
               compare: list[str] | None = None) -> FileData:
        """An overlay clip (mp4, gif, webp) or picture (png) of one expression, or of every expression of
        a media; compare: mask sources side by side (mask, proposal, or a proposal's source name)."""
        name = render_job.default_name(studio.store, expression_id, media_id, format)
        result = studio.render_clip(spool.new_job() / name, expression_id=expression_id, media_id=media_id, fmt=format,
                                    frames=frames or None, scale=float(scale), fps=fps, layers=layers,
                                    compare=list(compare) if compare else None)
        return FileData(path=result["path"])

    for fn in (add_media, add_expression, save_mask, get_mask, get_frame, propagate, export_coco):
        gr.api(fn, api_name=fn.__name__)
    gr.api(render, api_name="render", concurrency_id="render", concurrency_limit=1)
    gr.api(segment, api_name="segment", concurrency_id="engine", concurrency_limit=1)
    api_manage.register(studio, user_errors)
