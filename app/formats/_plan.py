"""An import as a plan: what a reader found, checked, then written in one transaction.

Readers build a Plan without touching the project. apply_plan() then
  1. builds the media files outside the project (frame folders -> lossless videos) and
     probes images, collecting problems (missing or unreadable frames, wrong sizes);
  2. raises one FormatError if anything is wrong (the project is unchanged);
  3. writes media, then objects, expressions and masks (store.import_baseline) inside one
     store.transaction(), removing the media files it copied if anything fails, so the import
     is all or nothing.

Masks are written as the baseline of their expressions (in the store's canonical RLE), not as
an undoable revision; a later edit's undo returns to the imported mask, never to nothing.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import UserError
from app.formats import _frames
from app.formats._base import FormatError, ImportReport, Problems
from app.formats.coco_build import CATEGORY_IDS
from app.media import files as media_io
from app.project.store import BaselineExpression, BaselineObject, ProjectStore

DEFAULT_FPS = 24.0  # for frame folders whose dataset gives no frame rate


@dataclass
class MediaPlan:
    name: str  # the media's name in the project
    entry: str  # where it comes from in the dataset, for messages
    file: Path | None = None  # an image added as it is
    frames: list[Path] | None = None  # frame files assembled into one lossless video
    fps: float | None = None
    size: tuple[int, int] | None = None  # (width, height) the dataset's masks/entries expect
    n_frames: int = 1


@dataclass
class ObjectPlan:
    media: str  # key of its MediaPlan
    label: int | None = None  # wanted label (palette id); kept when free in the media
    category: str = "object"
    masks: dict[int, str] = field(default_factory=dict)  # frame -> canonical counts (non-empty)
    sources: dict[int, str] = field(default_factory=dict)  # frame -> source, where the dataset says


@dataclass
class ExpressionPlan:
    media: str
    text: str
    objects: list  # keys of ObjectPlans
    status: str = "todo"


@dataclass
class Plan:
    format: str
    source: Path
    media: dict[str, MediaPlan] = field(default_factory=dict)
    objects: dict = field(default_factory=dict)  # key -> ObjectPlan
    expressions: list[ExpressionPlan] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    category_ids: dict[str, int] = field(default_factory=dict)  # the dataset's, where it has them


def _prepare_media(plan: Plan, tmp: Path, problems: Problems) -> dict[str, Path]:
    """Files to add, one per media: images as they are, frame folders as FFV1 videos."""
    files: dict[str, Path] = {}
    for n, (key, mp) in enumerate(plan.media.items()):
        if mp.frames is not None:
            out = tmp / f"{n}{_frames.LOSSLESS_EXT}"
            size = _frames.assemble_video(mp.frames, out, mp.fps or DEFAULT_FPS, mp.size, problems, mp.entry)
            if size is not None:
                files[key] = out
            continue
        too_big = _frames.header_problem(mp.file)  # before anything is decoded
        if too_big:
            problems.add(mp.file, mp.entry, f"image refused: {too_big}")
            continue
        try:
            info = media_io.probe(mp.file)
        except UserError as e:  # unreadable, or over a size limit
            problems.add(mp.file, mp.entry, str(e))
            continue
        if mp.size is not None and (info.width, info.height) != tuple(mp.size):
            problems.add(mp.file, mp.entry, f"image is {info.width}x{info.height} but the dataset says "
                                            f"{mp.size[0]}x{mp.size[1]}")
            continue
        files[key] = mp.file
    return files


def apply_plan(store: ProjectStore, plan: Plan, problems: Problems) -> ImportReport:
    problems.raise_if_any(plan.source)
    if not plan.media and not plan.expressions:
        raise FormatError(nothing_found(plan))
    report = ImportReport(plan.format, str(plan.source), skipped=list(plan.skipped), notes=list(plan.notes))
    if any(mp.frames is not None for mp in plan.media.values()):
        report.notes.append(_frames.FRAME_NOTE)
    store.path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".flowlabel-import-", dir=store.path.parent) as tmp:
        files = _prepare_media(plan, Path(tmp), problems)
        problems.raise_if_any(plan.source)
        copied: list[Path] = []
        try:
            with store.transaction():
                _write(store, plan, files, copied, report)
        except BaseException:
            for path in copied:  # the rows went with the transaction; the files go too
                path.unlink(missing_ok=True)
            raise
    return report


def remember_category_ids(store: ProjectStore, ids: dict[str, int]) -> None:
    """Keep the dataset's category ids for exports; a name or id the project has already keeps its."""
    known = store.get_setting(CATEGORY_IDS, {})
    known = dict(known) if isinstance(known, dict) else {}
    used = set(known.values())
    for name, cid in ids.items():
        if name not in known and cid not in used:
            known[name] = cid
            used.add(cid)
    store.set_setting(CATEGORY_IDS, known)


def nothing_found(plan: Plan) -> str:
    why = "; ".join(f"{entry}: {reason}" for entry, reason in plan.skipped[:5])
    return (f"{plan.source} holds nothing to import: no media and no expressions were found"
            + (f" ({why})" if why else "") + ". Check that this is a " + plan.format + " dataset with "
            "entries; nothing was imported, the project is unchanged")


def _write(store: ProjectStore, plan: Plan, files: dict[str, Path], copied: list[Path],
           report: ImportReport) -> None:
    media_id, seen, identical = {}, set(), 0
    for key, mp in plan.media.items():
        info = media_io.probe(files[key])
        # Media the project had before are reused (a dataset imported again adds its expressions);
        # within the dataset, byte-identical items stay separate media, sharing one file.
        row = store.add_media(files[key], name=mp.name, info=info, own=info.sha256 in seen)
        if row["copied"]:
            copied.append(store.media_dir / row["path"])
        identical += info.sha256 in seen
        seen.add(info.sha256)
        expected = (mp.size or (row["width"], row["height"])) + (mp.n_frames,)
        if (row["width"], row["height"], row["frames"]) != tuple(expected):
            raise FormatError(f"{mp.entry}: the media decodes to {row['width']}x{row['height']}, "
                              f"{row['frames']} frame(s), but the dataset has {expected[0]}x{expected[1]}, "
                              f"{expected[2]} frame(s); nothing was imported")
        media_id[key] = row["id"]
        if row["id"] not in report.media_ids:
            report.media_ids.append(row["id"])

    position = {key: i for i, key in enumerate(plan.objects)}
    objects = [BaselineObject(media_id[op.media], op.label, op.category,
                              {f: c for f, c in op.masks.items() if 0 <= f < plan.media[op.media].n_frames},
                              op.sources)
               for op in plan.objects.values()]
    expressions = [BaselineExpression(media_id[ep.media], ep.text, [position[k] for k in ep.objects], ep.status)
                   for ep in plan.expressions]
    result = store.import_baseline(objects, expressions)
    if identical:
        report.notes.append(f"{identical} item(s) were byte-identical to an earlier item; each stays its own "
                            "media under its own name (they share one file on disk)")
    if result.relabelled:
        report.notes.append(f"{result.relabelled} object id(s) were taken in their media already; "
                            "they got new labels")
    if plan.category_ids:
        remember_category_ids(store, plan.category_ids)
    n_masks = result.masks
    report.read = {"media": len(plan.media), "expressions": len(plan.expressions),
                   "objects": len(plan.objects), "masks": n_masks}
