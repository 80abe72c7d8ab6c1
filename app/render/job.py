"""One render request against the project: which expressions, objects, mask sources and frames,
read from the store and the media file, then drawn and written by app.render.

Mask sources: `mask` (the corrected masks, what export writes), `proposal` (the latest model or
propagation proposal of each frame), or a proposal source by name (an engine's name, or
`propagated`). The store keeps proposals apart from the corrected masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from app.masks.overlay import object_colour
from app.media import files as media_io
from app.project.store import ProjectStore
from app.render import clip as render
from app.render.clip import MaskSource, RenderError

DEFAULT_FPS = 25.0  # for a video whose container gave no rate


def plan_expressions(store: ProjectStore, expression_id: int | None, media_id: int | None) -> tuple[dict, list[dict]]:
    """(media, expressions) for one expression, or for every expression of a media."""
    if (expression_id is None) == (media_id is None):
        raise RenderError("render one expression (expression id) or every expression of a media (media id), "
                          "giving exactly one of the two")
    if expression_id is not None:
        expressions = [store.get_expression(int(expression_id))]
        return store.get_media(expressions[0]["media_id"]), expressions
    media = store.get_media(int(media_id))
    expressions = store.list_expressions(media["id"])
    if not expressions:
        raise RenderError(f"{media['name']} has no expressions yet; write one before rendering")
    return media, expressions


def default_name(store: ProjectStore, expression_id: int | None, media_id: int | None, fmt: str | None) -> str:
    """A file name for the render: expression-<id>.<fmt> or media-<id>.<fmt>; fmt defaults by kind."""
    media, _ = plan_expressions(store, expression_id, media_id)
    fmt = fmt or ("png" if media["kind"] == "image" else "mp4")
    what = f"expression-{int(expression_id)}" if expression_id is not None else f"media-{int(media_id)}"
    return f"{what}.{str(fmt).lower()}"


def source_label(name: str) -> str:
    return {"mask": "corrected mask", "proposal": "latest proposal"}.get(name, f"{name} proposal")


def mask_source(store: ProjectStore, name: str, pairs: list[tuple[int, int]], shape: tuple[int, int]) -> MaskSource:
    """A panel reading, per frame, one mask per (expression, object) pair from source `name`."""
    empty = np.zeros(shape, bool)
    if name == "mask":
        return MaskSource(source_label(name), lambda f: [store.get_mask(e, f, o) for e, o in pairs])
    known = sorted({s for e, o in pairs for s in store.proposal_sources(e, o)})
    if name not in known and not (name == "proposal" and known):
        have = f"this expression has proposals from: {', '.join(known)}" if known else \
            "this expression has no proposals yet (run an engine or propagate first)"
        raise RenderError(f"no proposals from {name!r} to render; {have}. Sources: mask, proposal, or a "
                          "proposal's source name")
    source = None if name == "proposal" else name

    def masks(frame: int) -> list[np.ndarray]:
        found = [store.get_proposal(e, frame, o, source=source) for e, o in pairs]
        return [empty if p is None else p[0] for p in found]
    return MaskSource(source_label(name), masks)


def render_clip(store: ProjectStore, out: str | Path, *, expression_id: int | None = None, media_id: int | None = None,
                fmt: str | None = None, frames=None, scale: float = 1.0, fps: float | None = None,
                layers: str = "image+mask", compare: list[str] | None = None, caption: bool = True,
                opacity: float = 0.5, progress=None, cancel=None) -> dict:
    """Draw and write the clip; returns {"path", "format", "frames", "width", "height", "fps"}."""
    media, expressions = plan_expressions(store, expression_id, media_id)
    fmt = render.pick_format(fmt, out, media["kind"])
    start, stop = render.parse_frames(frames, media["frames"])
    source_fps = float(media["fps"] or DEFAULT_FPS)
    indices = render.frame_indices(start, stop, source_fps, float(fps) if fps is not None else None)
    fmt = render.check_format(fmt, media["kind"], len(indices))
    render.check_layers(layers)
    size = render.output_size(media["width"], media["height"], float(scale))
    names = list(compare or ["mask"])
    if len(set(names)) != len(names) or len(names) > render.MAX_SOURCES:
        raise RenderError(f"compare names each source once, at most {render.MAX_SOURCES}; got {names}")

    # Each object once, in the order its expressions name it; a colour per object.
    pairs, colour_of = [], {}
    for expr in expressions:
        for obj in store.list_objects(expr["id"]):
            if obj["id"] not in colour_of:
                colour_of[obj["id"]] = object_colour(len(colour_of))
                pairs.append((expr["id"], obj["id"]))
    lines = [(e["text"], [colour_of[o["id"]] for o in store.list_objects(e["id"])]) for e in expressions]
    shape = (media["height"], media["width"])
    sources = [mask_source(store, name, pairs, shape) for name in names]
    compositor = render.Compositor(sources, [colour_of[o] for _, o in pairs], lines if caption else None, size,
                                   layers=layers, opacity=opacity, even=fmt == "mp4")
    render.check_short_clip(fmt, len(indices), compositor.canvas)
    out_fps = source_fps if fps is None else float(fps)

    reader = media_io.FrameReader(store.media_file(media["id"]), media["kind"], media["frames"])
    try:
        # FrameReader decodes each frame into a new array: the compositor may draw on it.
        frames = render.frames_of(compositor, reader.read, indices, progress, cancel, owned=True)
        path = render.write_clip(frames, out, fmt, out_fps)
    finally:
        reader.close()
    return {"path": str(path), "format": fmt, "frames": len(indices), "width": compositor.canvas[0],
            "height": compositor.canvas[1], "fps": out_fps}
