"""The studio's verbs: plain functions over one project, used by the UI, the scripting API
and the CLI alike (and tested without a browser).

Heavy things live here, server-side: the store, the bounded frame cache and the engine
service. The UI keeps only ids and a revision number per browser tab.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np

import engine
from app import formats
from app.errors import UsageError
from app.formats import coco_build
from app.masks import frame_tools
from app.masks import ops as mask_ops
from app.masks.propagate import propagate, review_scores
from app.media import files as media_io
from app.media import limits
from app.project import fill_rule
from app.project.store import FINISHED, ProjectStore
from app.render import job as render_job
from app.studio.candidates import Offer, image_offer, track_offer
from app.studio.exposure import allowed_roots, check_readable
from app.studio.sam_assist import FramePreparer
from engine.bounds import BOUNDS, Recent
from engine.track_masks import ReachedFrames


class Studio:
    def __init__(self, project: str | Path, device: str | None = None, engine_paths: dict | None = None,
                 cache_bytes: int = 512 * 2**20, import_roots: list[Path] | None = None, readonly: bool = False):
        """`readonly`: for readers such as `launch.py render` (no write, also on a read-only mount)."""
        self.store = ProjectStore(project, readonly=readonly)
        if not readonly:
            self.store.sweep_partial_media()
        # Server folders the page may import datasets from (the CLI passes its own paths directly).
        self.import_roots = import_roots or allowed_roots(self.store.path)
        self.frames = media_io.FrameCache(max_bytes=cache_bytes)
        self.engines = engine.EngineService(device=device, paths=engine_paths)
        self.cancel_event = threading.Event()  # stops a running propagation
        self._offers: Recent = Recent(BOUNDS.offers)  # (expression, object) -> what the annotator can pick from
        self._to_check: Recent = Recent(BOUNDS.checks)  # (expression, object) -> frames to check
        self.preparer = FramePreparer(self.engines.sam_prepare)

    def cancel(self) -> None:
        self.cancel_event.set()
        self.engines.cancel()

    def close(self) -> None:
        self.frames.clear()
        self.store.close()

    # -- media -----------------------------------------------------------------------------
    def add_media(self, path: str | Path, name: str | None = None, keep_partial: bool = False) -> list[dict]:
        """Import a file, or every supported file of a folder (all or nothing). keep_partial
        keeps the frames of a video that decodes short of its declared count, instead of
        refusing it as truncated."""
        files = media_io.list_media_files(path)
        # validate everything before recording anything; each file is decoded once
        infos = [media_io.probe(f, keep_partial=bool(keep_partial)) for f in files]
        added = []
        try:
            for f, info in zip(files, infos):
                added.append(self.store.add_media(f, name=name if len(files) == 1 else None, info=info))
        except BaseException:
            for row in added:
                if not row["existing"]:
                    self.store.remove_media(row["id"])
            raise
        return added

    def frame(self, media_id: int, index: int) -> np.ndarray:
        """Exactly the frame sequential decoding gives at `index` (RGB uint8), however it is reached."""
        media = self.store.get_media(media_id)
        index = limits.frame_number(index, media["frames"], media["name"])
        return self.frames.frame(self.store.media_file(media_id), media["kind"], index, frames=media["frames"],
                                 frame_index=lambda: self.store.frame_index(media_id))

    def show_frame(self, media_id: int, index: int) -> np.ndarray:
        """The frame a page is about to show: with SAM 2 configured, its embedding starts now in
        the background, so the first click on it answers fast."""
        image = self.frame(media_id, index)
        if self.engines.sam_configured():
            self.preparer.request((media_id, index), image)
        return image

    def media_clip(self, media_id: int) -> engine.Clip:
        """A media's frames as an engine reads them: one at a time from the frame cache, for
        engines that stream; stacked by the engine service for the others."""
        media = self.store.get_media(media_id)
        return engine.Clip(lambda i: self.frame(media_id, i), media["frames"], media["height"], media["width"])

    def media_frames(self, media_id: int) -> np.ndarray:
        """Every frame of a media, uint8 [T,H,W,3] RGB (an image is T=1): what an engine reads."""
        media = self.store.get_media(media_id)
        return np.stack([self.frame(media_id, i) for i in range(media["frames"])])

    # -- corrections -----------------------------------------------------------------------
    def apply_op(self, expression_id: int, frame: int, op: str, mask: np.ndarray | None = None,
                 base_revision: int | None = None, min_area: int = 64, object_id: int | None = None,
                 radius: int = 2) -> tuple[np.ndarray, int]:
        """Fill holes / remove specks / smooth / clear the given (or stored) mask, and save it."""
        if mask is None:
            mask = self.store.get_mask(expression_id, frame, object_id)
        ops = {"fill_holes": mask_ops.fill_holes, "clear": mask_ops.clear,
               "remove_specks": lambda m: mask_ops.remove_specks(m, min_area=min_area),
               "smooth": lambda m: frame_tools.smooth_edges(m, radius=radius)}
        if op not in ops:
            raise UsageError(f"unknown correction {op!r}; use one of {', '.join(ops)}")
        new = ops[op](mask)
        revision = self.store.save_mask(expression_id, frame, new, object_id=object_id, base_revision=base_revision)
        return new, revision

    def apply_tool(self, expression_id: int, frame: int, tool: str, points: list, mask: np.ndarray | None = None,
                   object_id: int | None = None, base_revision: int | None = None) -> tuple[np.ndarray, int]:
        """Box (two corners) -> mask; clicks refine (+ inside, - outside); polygon adds its area.

        Box and clicks use SAM 2 when its weights are configured (its multimask alternatives become
        the candidates), GrabCut otherwise. A box restarts the object; clicks refine it."""
        expr = self.store.get_expression(expression_id)
        image = self.frame(expr["media_id"], frame)
        if mask is None:
            mask = self.store.get_mask(expression_id, frame, object_id)
        pts = [(float(x), float(y)) for x, y, *_ in points]
        if tool in ("box", "click") and self.engines.sam_configured():
            new = self._sam_tool(expr, frame, image, tool, points, mask, object_id)
        elif tool == "box":
            (x0, y0), (x1, y1) = pts[:2]
            new = frame_tools.box_to_mask(image, (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        elif tool == "click":
            positives = [p[:2] for p in points if p[2] > 0]
            negatives = [p[:2] for p in points if p[2] <= 0]
            new = frame_tools.refine_with_clicks(image, mask, positives, negatives)
        elif tool == "polygon":
            new = mask | frame_tools.polygon_to_mask(mask.shape, pts)
        else:
            raise UsageError(f"unknown tool {tool!r}; use box, click or polygon")
        revision = self.store.save_mask(expression_id, frame, new, object_id=object_id, base_revision=base_revision)
        return new, revision

    def _sam_tool(self, expr, frame, image, tool, points, mask, object_id) -> np.ndarray:
        key, obj = (expr["media_id"], frame), (expr["id"], object_id, frame)
        if len(points) < (2 if tool == "box" else 1) or any(len(p) < 3 for p in points):
            raise UsageError(f"the {tool} tool needs {'two corners' if tool == 'box' else 'a click'} as [x, y, +1/-1]")
        try:
            if tool == "box":
                (x0, y0), (x1, y1) = [(float(x), float(y)) for x, y, *_ in points[:2]]
                masks, scores = self.engines.sam_box(key, image, obj, (x0, y0, x1, y1))
            else:
                current = mask
                for x, y, label in points:
                    masks, scores = self.engines.sam_click(key, image, obj, float(x), float(y), label > 0, current)
                    current = masks[0]
        except ValueError as e:  # a prompt outside the frame, a box too small: the user's to fix
            raise UsageError(str(e)) from e
        if len(masks) > 1:  # SAM's alternatives: one click away, as a model's candidates are
            self._remember_candidates(expr["id"], object_id, image_offer(masks, scores, frame, obj))
        else:
            self._offers.pop((expr["id"], object_id), None)
        return masks[0]

    # -- video -----------------------------------------------------------------------------
    def propagate(self, expression_id: int, frame: int, direction: str = "forward", count: int | None = None,
                  object_id: int | None = None, progress=None, overwrite_manual: bool = False,
                  method: str | None = None) -> dict:
        """Carry the frame's mask through the video: method "sam2" (SAM 2's memory; the default
        when its weights are configured) or "dis" (optical flow). Manual frames are anchors: DIS
        re-seeds from them, SAM 2 conditions on them. The annotator's frames are kept unless
        overwrite_manual (app/project/fill_rule.py); "report" says what was filled, kept and replaced."""
        if direction not in ("forward", "backward"):
            raise UsageError(f"direction must be 'forward' or 'backward', not {direction!r}")
        method = method or ("sam2" if self.engines.sam_configured() else "dis")
        if method not in ("sam2", "dis"):
            raise UsageError(f"method must be 'sam2' or 'dis', not {method!r}")
        expr = self.store.get_expression(expression_id)
        media = self.store.get_media(expr["media_id"])
        start = self.store.get_mask(expression_id, frame, object_id)
        if not start.any():
            raise UsageError(f"frame {frame} has no mask to propagate; draw one there first")
        sources = self.store.mask_sources(expression_id, object_id)
        seed = fill_rule.MODEL if self.store.mask_kinds(expression_id, object_id).get(frame) == "model" \
            else fill_rule.ANNOTATOR  # whose mask is carried: what it writes is as protected as it was
        anchors = {} if overwrite_manual else {
            f: self.store.get_mask(expression_id, f, object_id) for f, src in sources.items()
            if src == "manual" and f != frame}
        if method == "sam2":
            return self._propagate_sam(expr, media, frame, start, direction, count, object_id, anchors, progress,
                                       overwrite_manual, seed)
        self.cancel_event.clear()
        total = count or media["frames"]
        masks, confidence, flagged = {}, {}, None
        for step in propagate(lambda i: self.frame(media["id"], i), start, frame, direction, count,
                              media["frames"], anchors=anchors, cancel=self.cancel_event.is_set):
            if step.flagged:  # its mask is unreliable (maybe empty): report the frame, save nothing there
                flagged = step.frame
                break
            masks[step.frame], confidence[step.frame] = step.mask, step.confidence
            if progress:
                progress(min(len(masks) / total, 1.0), f"frame {step.frame}")
        if self.cancel_event.is_set():
            raise engine.Cancelled("propagation cancelled; nothing was saved")
        report = self.store.fill_masks(expression_id, masks, object_id=object_id, source="propagated",
                                       keep_manual=not overwrite_manual, seed_origin=seed,
                                       action=f"propagate {direction} from frame {frame}")
        return {"frames": sorted(masks), "flagged": flagged, "revision": report.revision, "report": report,
                "confidence": {f: round(c, 3) for f, c in confidence.items()}}

    def _propagate_sam(self, expr, media, frame, start, direction, count, object_id, anchors, progress,
                       overwrite_manual, seed) -> dict:
        if count is not None and (int(count) != count or count < 1):
            raise UsageError(f"count must be a whole number of frames >= 1 (or empty: to the end), not {count!r}")
        masks, absent = ReachedFrames(media["frames"], start.shape), []

        def keep(step) -> None:
            masks[step.frame] = step.mask
            if step.absent:
                absent.append(step.frame)

        try:
            self.engines.sam_track(lambda i: self.frame(media["id"], i), media["frames"], frame, keep,
                                   progress=progress, seed_mask=start, direction=direction, count=count,
                                   anchors=anchors)
        except engine.Cancelled:
            raise engine.Cancelled("propagation cancelled; nothing was saved") from None
        report = self.store.fill_masks(expr["id"], masks, object_id=object_id, source="sam2",
                                       keep_manual=not overwrite_manual, seed_origin=seed,
                                       action=f"SAM 2 track {direction} from frame {frame}")
        if absent:  # recorded (no mask there) and flagged for a look, not painted
            self.store.add_note(expr["id"], f"SAM 2 found the object absent on {len(absent)} frame(s): "
                                            f"{_frame_list(absent)}; check them")
        return {"frames": sorted(masks), "flagged": absent[0] if absent else None, "absent": sorted(absent),
                "revision": report.revision, "report": report, "method": "sam2"}

    # -- engines ---------------------------------------------------------------------------
    def propose(self, expression_id: int, engine_name: str, progress=None) -> engine.Proposal:
        """Run an engine on the expression's media and return its proposal; saves nothing."""
        expr = self.store.get_expression(expression_id)
        media = self.store.get_media(expr["media_id"])
        # Check the engine before decoding anything: a long video is many GB of frames.
        info = engine.engine_info(str(engine_name))
        if media["kind"] not in info.kinds:
            raise UsageError(f"engine {info.name!r} segments {' and '.join(info.kinds)}s, but {media['name']} "
                             f"is a {media['kind']}; choose an engine for {media['kind']}s")
        self.engines.load(engine_name)
        return self.engines.run(engine_name, media["kind"], self.media_clip(media["id"]), expr["text"],
                                progress=progress)

    def save_proposal(self, expression_id: int, engine_name: str, masks: np.ndarray, object_id: int | None = None,
                      overwrite_manual: bool = False) -> fill_rule.FillReport:
        """Store an engine's masks (frame i = masks[i]) as one revision; the annotator's frames are
        kept unless overwrite_manual (app/project/fill_rule.py). Returns what was filled, kept, replaced."""
        return self.store.fill_masks(expression_id, dict(enumerate(masks)), source=engine_name, object_id=object_id,
                                     keep_manual=not overwrite_manual, action=f"segment with {engine_name}")

    def check_rerun(self, expression_id: int, overwrite_manual: bool = False) -> None:
        """A model run on a finished (done, reviewed) expression must be asked for explicitly."""
        expr = self.store.get_expression(expression_id)
        if expr["status"] in FINISHED and not overwrite_manual:
            raise UsageError(f"expression {expression_id} is marked {expr['status']}: a model run could change "
                             "frames a person vouched for. Pass overwrite_manual=True (CLI: --overwrite-manual) "
                             "to run it anyway, or mark it in progress first; nothing was run")

    def segment(self, expression_id: int, engine_name: str, progress=None, overwrite_manual: bool = False,
                object_id: int | None = None, rerun_finished: bool | None = None) -> dict:
        """Run an engine and save its masks, filling only empty and model frames unless
        overwrite_manual; its candidates wait for a click. A finished expression is refused
        unless rerun_finished (default: overwrite_manual; the page asks first, then passes it).
        Returns {"frames": n, "revision": r, "report": FillReport}."""
        self.check_rerun(expression_id, overwrite_manual if rerun_finished is None else rerun_finished)
        proposal = self.propose(expression_id, engine_name, progress=progress)
        if proposal.tracks:
            self._remember_candidates(expression_id, object_id, track_offer(proposal.tracks, engine_name))
        elif proposal.candidates is not None:
            self._remember_candidates(expression_id, object_id, image_offer(*proposal.candidates))
        else:  # an earlier run's candidates would no longer be alternatives to this one
            self._offers.pop((expression_id, object_id), None)
        report = self.save_proposal(expression_id, engine_name, proposal.masks, object_id=object_id,
                                    overwrite_manual=overwrite_manual)
        return {"frames": int(len(proposal.masks)), "revision": report.revision, "report": report}

    def _remember_candidates(self, expression_id, object_id, offer: Offer) -> Offer:
        self._offers[(expression_id, object_id)] = offer
        return offer

    def weights_status(self) -> list[dict]:
        """Each engine's weights as this studio is configured: ready, missing files, where looked,
        and what to do (`launch.py models list` prints the same)."""
        from engine import models
        paths = self.engines.paths()
        for w in models.CATALOG:  # flags given to the studio win; the variables fill the rest
            if os.environ.get(w.env):
                paths.setdefault(w.engine, {}).setdefault(w.setting, os.environ[w.env])
        return [{"engine": s.weights.engine, "setting": s.weights.setting, "ready": s.ready, "missing": s.missing,
                 "where": s.where, "hint": s.hint} for s in models.report(paths)]

    def candidates(self, expression_id: int, object_id: int | None = None):
        """The last top candidates (a model run's, or SAM 2's alternatives): (masks, scores) or None.
        A video candidate's mask here is its thumbnail: the track on the frame it was detected."""
        offer = self._offers.get((expression_id, object_id))
        return None if offer is None else (offer.masks, offer.scores)

    def candidate_frames(self, expression_id: int, object_id: int | None = None) -> list[int]:
        """The frame each candidate shows (all 0 for an image model's)."""
        offer = self._offers.get((expression_id, object_id))
        return [] if offer is None else list(offer.frames)

    def offer(self, expression_id: int, object_id: int | None = None) -> Offer | None:
        return self._offers.get((expression_id, object_id))

    def choose_candidate(self, expression_id: int, index: int, object_id: int | None = None,
                         base_revision: int | None = None, overwrite_manual: bool = False) -> int:
        """Replace the mask with candidate `index` (0-based); the choice is the annotator's. After a
        SAM 2 alternative, the next click refines the chosen one. A video candidate's whole track is
        saved as one revision, manual frames kept unless overwrite_manual (as a model run)."""
        offer = self._offers.get((expression_id, object_id))
        if offer is None:
            raise UsageError("no candidates for this expression: run an engine that offers them (FlowSeg, SAM 3), "
                             "or click with SAM 2, first")
        if not 0 <= index < len(offer.masks):
            raise UsageError(f"there are {len(offer.masks)} candidates; choose 1 to {len(offer.masks)}")
        if offer.tracks is not None:
            return self.store.save_masks(expression_id, offer.tracks[index], object_id=object_id,
                                         source=offer.source, base_revision=base_revision,
                                         keep_manual=not overwrite_manual,
                                         action=f"choose {offer.source} instance {index + 1}")
        revision = self.store.save_mask(expression_id, offer.frames[index], offer.masks[index],
                                        object_id=object_id, base_revision=base_revision)
        if offer.sam_object is not None:
            self.engines.sam_choose(offer.sam_object, offer.keep[index])
        return revision

    def next_to_check(self, expression_id: int, frame: int, object_id: int | None = None,
                      min_change: float = 0.3) -> int | None:
        """The next frame after `frame` (wrapping around) that no one corrected and whose mask
        changes from the frame before it (1 - IoU) by more than `min_change` and than twice the
        clip's median change (steady motion is not a reason to look); None if none."""
        flagged = self._flagged_frames(expression_id, object_id, min_change)
        ordered = sorted(f for f in flagged if f > frame) + sorted(f for f in flagged if f <= frame)
        return ordered[0] if ordered else None

    def _flagged_frames(self, expression_id: int, object_id: int | None, min_change: float) -> list[int]:
        expr = self.store.get_expression(expression_id)
        n = self.store.get_media(expr["media_id"])["frames"]
        sources = self.store.mask_sources(expression_id, object_id)
        # Only stored masks are decoded: two empty frames in a row change by 0 (IoU of nothing is 1).
        stored = {f: self.store.get_mask(expression_id, f, object_id) for f in sources}
        empty = np.zeros_like(next(iter(stored.values()))) if stored else None
        pairs = {f for f in stored for f in (f, f + 1) if 0 < f < n}
        scores = dict.fromkeys(range(1, n), 0.0)
        scores.update(review_scores({g: stored.get(g, empty) for f in pairs for g in (f - 1, f)}))
        scores = {f: scores[f] for f in range(1, n)}
        bar = max(min_change, 2 * float(np.median(list(scores.values())))) if scores else min_change
        return sorted(f for f, score in scores.items() if score > bar and sources.get(f) != "manual")

    def proposal_agreement(self, expression_id: int, object_id: int | None = None) -> list[dict]:
        """Per frame with a model or propagation proposal: IoU between it and the final mask
        (1 = the annotator kept it as proposed). Shows where a model fails."""
        rows = []
        for frame, source in sorted(self.store.proposal_frames(expression_id, object_id).items()):
            proposal, source = self.store.get_proposal(expression_id, frame, object_id)
            final = self.store.get_mask(expression_id, frame, object_id)
            rows.append({"frame": frame, "iou": frame_tools.mask_iou(proposal, final), "source": source})
        return rows

    # -- sharing ---------------------------------------------------------------------------
    def render_clip(self, out: str | Path, *, expression_id: int | None = None, media_id: int | None = None,
                    fmt: str | None = None, frames=None, scale: float = 1.0, fps: float | None = None,
                    layers: str = "image+mask", compare: list[str] | None = None, progress=None,
                    cancel=None) -> dict:
        """An overlay clip (mp4, gif, webp) or picture (png) of one expression or of every expression
        of a media; `compare` names two or more mask sources to show side by side. Streams frame by
        frame; `cancel()` is checked per frame and a cancelled render leaves no file."""
        return render_job.render_clip(self.store, out, expression_id=expression_id, media_id=media_id, fmt=fmt,
                                      frames=frames, scale=scale, fps=fps, layers=layers, compare=compare,
                                      progress=progress, cancel=cancel)

    # -- datasets in and out ---------------------------------------------------------------
    def export_coco(self, out: str | Path) -> Path:
        return coco_build.write_coco(self.store, out)

    def export_dataset(self, fmt: str, out_dir: str | Path) -> tuple[Path, object]:
        """Export in any format; a folder format comes back zipped, for download."""
        spec = formats.get(fmt)
        out_dir = Path(out_dir)
        target = out_dir / (f"{self.store.path.stem}-{fmt}" + (".json" if spec.target == "file" else ""))
        report = spec.export(self.store, target)
        if spec.target == "folder":
            folder, target = target, Path(shutil.make_archive(str(target), "zip", root_dir=target))
            shutil.rmtree(folder)  # the zip is what is served; the folder would double the disk used
        return target, report

    def import_dataset(self, fmt: str, src: str | Path, media_root: str | Path | None = None):
        """All or nothing: a FormatError lists every problem and leaves the project unchanged.
        Both paths must lie under import_roots (ExposureError otherwise): the page is a remote user."""
        src = check_readable(src, self.import_roots)
        media_root = check_readable(media_root, self.import_roots, "frames folder") if media_root else None
        return formats.get(fmt).import_(self.store, src, media_root=media_root)

    # -- edits the page makes (every page write goes through these) -------------------------
    def paint(self, expression_id: int, frame: int, points: list, radius: int, erase: bool = False,
              object_id: int | None = None, base_revision: int | None = None) -> tuple[np.ndarray, int]:
        """One brush or eraser stroke (a polyline of (x, y) pixels and a radius) applied to the
        stored mask and saved as one revision."""
        mask = self.store.get_mask(expression_id, frame, object_id)
        try:
            new = mask_ops.paint(mask, points, radius, not erase)
        except ValueError as e:  # a radius or points from a caller: theirs to fix
            raise UsageError(f"stroke not saved: {e}") from e
        revision = self.store.save_mask(expression_id, frame, new, object_id=object_id, base_revision=base_revision)
        return new, revision

    def accept(self, expression_id: int, frame: int, object_id: int | None = None,
               base_revision: int | None = None) -> int:
        """Keep the frame's mask as it is, as the annotator's own (a model's proposal becomes manual)."""
        mask = self.store.get_mask(expression_id, frame, object_id)
        return self.store.save_mask(expression_id, frame, mask, object_id=object_id, base_revision=base_revision)

    def undo(self, expression_id: int, base_revision: int | None = None) -> int:
        return self.store.undo(expression_id, base_revision=base_revision)

    def redo(self, expression_id: int, base_revision: int | None = None) -> int:
        return self.store.redo(expression_id, base_revision=base_revision)

    def add_expression(self, media_id: int, text: str) -> dict:
        return self.store.add_expression(media_id, text)

    def add_object(self, expression_id: int) -> int:
        return self.store.add_object(expression_id)

    def remove_object(self, expression_id: int, object_id: int, base_revision: int | None = None) -> int:
        return self.store.remove_object(expression_id, object_id, base_revision=base_revision)

    def set_status(self, expression_id: int, status: str, base_revision: int | None = None, force: bool = False) -> int:
        """Marking an expression done (or reviewed) while frames are empty is refused, saying
        how many and where, unless force (the annotator confirmed they are meant to be empty)."""
        if status.replace(" ", "_") in FINISHED and not force:
            check_finishable(self.store, expression_id)
        return self.store.set_status(expression_id, status, base_revision=base_revision)

    def reject(self, expression_id: int, comment: str, base_revision: int | None = None) -> int:
        return self.store.reject(expression_id, comment, base_revision=base_revision)

    def frames_to_check(self, expression_id: int, object_id: int | None = None, refresh: bool = True) -> list[int]:
        """Every frame next_to_check would stop at, in order. refresh=False reuses the last answer
        for this object (the timeline asks on every frame step; decoding a long video's masks
        each time would make stepping slow); callers drop frames corrected since."""
        key = (expression_id, object_id)
        if refresh or key not in self._to_check:
            self._to_check[key] = self._flagged_frames(expression_id, object_id, 0.3)
        return self._to_check[key]


_frame_list = fill_rule.frame_ranges


class EmptyFramesError(UsageError):
    """Marking done with empty frames: `frames` says which (the page asks to confirm)."""

    def __init__(self, message: str, frames: list[int]):
        super().__init__(message)
        self.frames = frames


def check_finishable(store: ProjectStore, expression_id: int) -> None:
    expr = store.get_expression(expression_id)
    if expr["status"] in FINISHED:
        return  # done -> reviewed: the empty frames were confirmed when it was marked done
    empty = store.empty_frames(expression_id)
    if empty:
        total = store.get_media(expr["media_id"])["frames"]
        raise EmptyFramesError(f"{len(empty)} of {total} frame(s) have no mask for at least one object: frames "
                               f"{_frame_list(empty)} (grey on the timeline). Draw them, or confirm they are meant "
                               "to be empty (force=True; CLI: --force).", empty)
