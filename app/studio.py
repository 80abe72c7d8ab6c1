"""The studio's verbs: plain functions over one project, used by the UI, the scripting API
and the CLI alike (and tested without a browser).

Heavy things live here, server-side: the store, the bounded frame cache and the engine
service. The UI keeps only ids and a revision number per browser tab.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import engine
from app import export_coco, mask_ops
from app import media as media_io
from app.overlay import render_overlay
from app.store import ProjectStore, StoreError


class Studio:
    def __init__(self, project: str | Path, device: str | None = None, engine_paths: dict | None = None,
                 cache_bytes: int = 512 * 2**20):
        self.store = ProjectStore(project)
        self.frames = media_io.FrameCache(max_bytes=cache_bytes)
        self.engines = engine.EngineService(device=device, paths=engine_paths)

    def close(self) -> None:
        self.frames.clear()
        self.store.close()

    # -- media -----------------------------------------------------------------------------
    def add_media(self, path: str | Path, name: str | None = None) -> list[dict]:
        """Import a file, or every supported file of a folder (all or nothing)."""
        files = media_io.list_media_files(path)
        for f in files:  # validate everything before recording anything
            media_io.probe(f)
        added = []
        try:
            for f in files:
                added.append(self.store.add_media(f, name=name if len(files) == 1 else None))
        except BaseException:
            for row in added:
                if not row["existing"]:
                    self.store.remove_media(row["id"])
            raise
        return added

    def frame(self, media_id: int, index: int) -> np.ndarray:
        media = self.store.get_media(media_id)
        if not 0 <= index < media["frames"]:
            raise StoreError(f"frame {index} is outside {media['name']} (frames 0..{media['frames'] - 1})")
        return self.frames.frame(self.store.media_file(media_id), media["kind"], index)

    def all_frames(self, media_id: int) -> np.ndarray:
        media = self.store.get_media(media_id)
        return np.stack([self.frame(media_id, i) for i in range(media["frames"])])

    # -- view ------------------------------------------------------------------------------
    def render(self, expression_id: int, frame: int, opacity: float = 0.5, outline_only: bool = False,
               mask: np.ndarray | None = None, color: tuple[int, int, int] = (255, 0, 255)) -> np.ndarray:
        expr = self.store.get_expression(expression_id)
        image = self.frame(expr["media_id"], frame)
        if mask is None:
            mask = self.store.get_mask(expression_id, frame)
        return render_overlay(image, mask, opacity=opacity, outline_only=outline_only, color=color)

    # -- corrections -----------------------------------------------------------------------
    def apply_op(self, expression_id: int, frame: int, op: str, mask: np.ndarray | None = None,
                 base_revision: int | None = None, min_area: int = 64) -> tuple[np.ndarray, int]:
        """Fill holes / remove specks / clear on the given (or stored) mask, and save it."""
        if mask is None:
            mask = self.store.get_mask(expression_id, frame)
        ops = {"fill_holes": mask_ops.fill_holes, "clear": mask_ops.clear,
               "remove_specks": lambda m: mask_ops.remove_specks(m, min_area=min_area)}
        if op not in ops:
            raise StoreError(f"unknown correction {op!r}; use one of {', '.join(ops)}")
        new = ops[op](mask)
        revision = self.store.save_mask(expression_id, frame, new, base_revision=base_revision)
        return new, revision

    # -- engines ---------------------------------------------------------------------------
    def segment(self, expression_id: int, engine_name: str, progress=None, overwrite_manual: bool = False) -> dict:
        """Run an engine on the expression's media; its masks never replace manual frames
        unless overwrite_manual is set. Returns {"frames": n, "revision": r}."""
        expr = self.store.get_expression(expression_id)
        media = self.store.get_media(expr["media_id"])
        # Check the engine before decoding anything: a long video is many GB of frames.
        info = engine.segmenter_info(str(engine_name))
        if media["kind"] not in info.kinds:
            raise StoreError(f"engine {info.name!r} segments {' and '.join(info.kinds)}s, but {media['name']} "
                             f"is a {media['kind']}; choose an engine for {media['kind']}s")
        if media["kind"] == "video":
            masks = self.engines.segment_video(engine_name, self.all_frames(media["id"]), expr["text"],
                                               progress=progress)
        else:
            masks = self.engines.segment_image(engine_name, self.frame(media["id"], 0), expr["text"])[None]
        revision = self.store.save_masks(expression_id, dict(enumerate(masks)), source=engine_name,
                                         keep_manual=not overwrite_manual, action=f"segment with {engine_name}")
        return {"frames": int(len(masks)), "revision": revision}

    # -- export ----------------------------------------------------------------------------
    def export_coco(self, out: str | Path) -> Path:
        return export_coco.write_coco(self.store, out)
