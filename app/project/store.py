"""The project store: one SQLite file (WAL) per project, through sqlite-utils.

Every public write is one transaction. Masks are COCO RLE. Every change to an expression's
masks, status or text is recorded as a revision with before/after values, which makes
undo/redo complete and persistent. Each expression carries a revision counter; a write that
names an older `base_revision` is refused (two tabs never silently overwrite each other).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import shutil
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlite_utils import Database

from app.errors import UserError
from app.media import files as media_io
from app.media.frame_index import FrameIndex
from app.media.limits import EXPRESSION_CHARS
from app.project import fill_rule, opening
from app.project.schema import migrations
from engine import rle

STATUSES = ("todo", "in_progress", "done", "reviewed")
FINISHED = ("done", "reviewed")   # a person vouched for every frame of the expression
PARTIAL_SUFFIX = ".partial"  # a media file being copied into the project


@dataclass
class BaselineObject:
    """An object an import brings, with its masks as the baseline (not an undoable revision)."""
    media_id: int
    label: int | None = None           # wanted label (a dataset's palette id); kept when free
    category: str = "object"
    masks: dict[int, str] = field(default_factory=dict)    # frame -> canonical RLE counts
    sources: dict[int, str] = field(default_factory=dict)  # frame -> source (default "import")


@dataclass
class BaselineExpression:
    media_id: int
    text: str
    objects: list[int]                  # indices into the objects of the same import
    status: str = "todo"


@dataclass
class BaselineResult:
    object_ids: list[int]
    expression_ids: list[int]
    relabelled: int                     # objects whose wanted label was taken
    masks: int


class StoreError(UserError):
    """Base class of the store's errors; messages say what to do."""


class NotFoundError(StoreError, LookupError):
    pass


class StaleRevisionError(StoreError):
    def __init__(self, expression_id: int, current: int, base: int):
        if base > current:
            msg = (f"expression {expression_id} is at revision {current}; revision {base} does not exist "
                   "yet. Send the revision a save returned (or none); nothing was overwritten.")
        else:
            msg = (f"expression {expression_id} was changed elsewhere (another tab or script): it is at "
                   f"revision {current}, your edit was based on revision {base}. Reload the expression to "
                   "see the latest masks, then redo your edit; nothing was overwritten.")
        super().__init__(msg)
        self.current, self.base = current, base


class NothingToDoError(StoreError):
    pass


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds")


def expression_text(text) -> str:
    """An expression as stored: whitespace runs made one space, checked to be valid Unicode
    (a lone surrogate, "\\ud800" in JSON, cannot be stored) and within EXPRESSION_CHARS."""
    text = " ".join(str(text).split())
    if not text:
        raise StoreError("the expression is empty: type the words that identify the object")
    bad = next((i for i, ch in enumerate(text) if 0xD800 <= ord(ch) <= 0xDFFF), None)
    if bad is not None:
        raise StoreError(f"the expression is not valid Unicode: character {bad + 1} is a lone surrogate "
                         f"(U+{ord(text[bad]):04X}); send the text as UTF-8 or proper JSON escapes")
    too_long = EXPRESSION_CHARS.exceeded(len(text))
    if too_long:
        raise StoreError(f"the expression is too long: {too_long}")
    return text


def _mask_json(counts: str | None, source: str | None, origin: str | None = None) -> str | None:
    if counts is None:
        return None
    return json.dumps({"counts": counts, "source": source, "origin": origin or fill_rule.origin_for(source)})


def _trashed(row: dict | None) -> str:
    """Why a row is hidden: ' (in the trash since ..., deleted by ...)', or ''."""
    if not row or not row.get("deleted_at"):
        return ""
    return (f" (it is in the trash since {row['deleted_at'][:19]}, deleted by {row['deleted_by']}; "
            "`launch.py trash list` shows it and `trash restore` brings it back)")


class ProjectStore:
    """A project: `path` is the SQLite file; imported media are copied next to it."""

    def __init__(self, path: str | Path, readonly: bool = False):
        """`readonly`: for readers (export, render, check); works on a read-only mount too, and
        never migrates or writes. Either way the file is recognised (opening.check) first."""
        self.path = Path(path).expanduser().resolve()
        self.media_dir = self.path.with_name(self.path.stem + "_media")
        self.readonly = readonly
        known = [m.name for m in migrations._migrations]
        opening.check(self.path, known)
        self._lock = threading.RLock()
        if readonly:
            if opening.is_new(self.path):
                raise StoreError(f"no project at {self.path}; pass --project with the path of an existing project")
            self.db = Database(opening.connect_readonly(self.path))
            if migrations.pending(self.db):  # an older project: read an upgraded copy, never the file
                self.db = Database(opening.upgraded_copy(self.db.conn, migrations.apply))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the app's worker threads, serialised by one lock.
        conn = sqlite3.connect(str(self.path), check_same_thread=False, timeout=10)
        self.db = Database(conn)
        self.db.enable_wal()
        # FULL: an acknowledged commit is on disk, not only in the OS cache.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        migrations.apply(self.db)
        opening.stamp(self.db)

    @property
    def lock(self) -> threading.RLock:
        """Hold it to read several things consistently (as export does)."""
        return self._lock

    @contextlib.contextmanager
    def transaction(self):
        """Everything inside is one transaction (nested calls join it): all of it lands, or,
        when the block raises, none of it."""
        with self._lock, self.db.atomic():
            yield self

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self.db.close()

    def __enter__(self) -> "ProjectStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _rows(self, sql: str, params=()) -> list[dict]:
        # Reads take the lock too: the connection is shared, and a half-done write must not show.
        with self._lock:
            return list(self.db.query(sql, params))

    def _one(self, sql: str, params=()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    # -- media -----------------------------------------------------------------------------
    def add_media(self, src: str | Path, name: str | None = None, keep_partial: bool = False,
                  info: media_io.MediaInfo | None = None, own: bool = False) -> dict:
        """Validate, copy into the project and record one media file (with a video's frame index).

        Returns the media row, with `existing=True` when the same content was already there
        (`own`: a new media even then, sharing the stored file, as each item of a dataset is),
        and `copied=True` when its file was copied in now.
        Raises media.MediaError for bad files; nothing is left behind then. keep_partial keeps
        the frames of a video that decodes short of its declared count (see media.probe).
        `info`: src's probe result, when the caller has just probed it.
        """
        src = Path(src)
        info = info or media_io.probe(src, keep_partial=keep_partial)
        with self._lock:
            known = self._one("SELECT * FROM media WHERE sha256 = ? ORDER BY deleted_at IS NOT NULL, id",
                              [info.sha256])
            if known and not own:
                if known["deleted_at"]:  # the same file again: it comes back from the trash
                    with self.db.atomic():
                        self.db.execute("UPDATE media SET deleted_at = NULL, deleted_by = NULL WHERE id = ?",
                                        [known["id"]])
                return {**self.get_media(known["id"]), "existing": True, "copied": False}
            self.media_dir.mkdir(parents=True, exist_ok=True)
            stored = known["path"] if known else f"{info.sha256[:16]}{src.suffix.lower()}"
            target = self.media_dir / stored
            partial = target.with_name(target.name + PARTIAL_SUFFIX)
            copied = not target.is_file()  # the same bytes are shared with the media that has them
            try:
                if copied:
                    shutil.copyfile(src, partial)
                    partial.replace(target)
            except OSError as e:  # a full disk, say: leave nothing, and name no server path
                partial.unlink(missing_ok=True)
                raise media_io.MediaError(f"{media_io.media_name(name or src.name)} could not be stored in the "
                                          f"project ({e.strerror or e}); free space on the server's disk, "
                                          "then add it again") from None
            try:
                with self.db.atomic():
                    media_id = self.db["media"].insert({
                        "kind": info.kind, "name": media_io.media_name(name or src.name), "path": stored,
                        "sha256": info.sha256, "width": info.width, "height": info.height,
                        "frames": info.frames, "fps": info.fps, "created_at": _now(),
                    }).last_pk
                    if info.index is not None:
                        self._write_frame_index(media_id, info.index)
            except BaseException:
                if copied:
                    target.unlink(missing_ok=True)
                raise
            return {**self.get_media(media_id), "existing": False, "copied": copied}

    def drop_unused_file(self, stored: str) -> None:
        """Remove a file of the media folder once no media row (live or trashed) refers to it."""
        with self._lock:
            if self._one("SELECT 1 AS x FROM media WHERE path = ?", [stored]) is None:
                (self.media_dir / stored).unlink(missing_ok=True)

    def sweep_partial_media(self) -> int:
        """Remove copies a crash or a full disk left half-written in the media folder; returns how
        many. Call it only while no one else adds media (as the studio does when it starts)."""
        leftovers = list(self.media_dir.glob(f"*{PARTIAL_SUFFIX}")) if self.media_dir.is_dir() else []
        for path in leftovers:
            path.unlink(missing_ok=True)
        return len(leftovers)

    def get_media(self, media_id: int) -> dict:
        row = self._one("SELECT * FROM live_media WHERE id = ?", [media_id])
        if row is None:
            why = _trashed(self._one("SELECT * FROM media WHERE id = ?", [media_id]))
            raise NotFoundError(f"no media with id {media_id} in this project{why}; list media to see the ids")
        return row

    def rename_media(self, media_id: int, name: str) -> dict:
        """The media's display name (its file in the project stays as it is)."""
        name = " ".join(str(name).split())
        if not name:
            raise StoreError("the new name is empty: type the name to show for this media")
        with self._lock, self.db.atomic():
            self.get_media(media_id)
            self.db.execute("UPDATE media SET name = ? WHERE id = ?", [name, media_id])
        return self.get_media(media_id)

    def list_media(self) -> list[dict]:
        return self._rows("""
            SELECT m.*, COUNT(e.id) AS expressions,
                   SUM(e.status IN ('done', 'reviewed')) AS finished
            FROM live_media m LEFT JOIN live_expressions e ON e.media_id = m.id
            GROUP BY m.id ORDER BY m.id""")

    def remove_media(self, media_id: int) -> None:
        """Remove a media that nothing refers to yet (undoing part of a failed import)."""
        with self._lock, self.db.atomic():
            media = self.get_media(media_id)
            if self._one("SELECT 1 AS x FROM expressions WHERE media_id = ?", [media_id]):
                raise StoreError(f"{media['name']} has expressions; it cannot be removed")
            self.db.execute("DELETE FROM objects WHERE media_id = ?", [media_id])
            self.db.execute("DELETE FROM frame_index WHERE media_id = ?", [media_id])
            self.db.execute("DELETE FROM media WHERE id = ?", [media_id])
        self.drop_unused_file(media["path"])

    def media_file(self, media_id: int) -> Path:
        return self.media_dir / self.get_media(media_id)["path"]

    def frame_index(self, media_id: int) -> FrameIndex | None:
        """A video's frame index (None for images). Videos imported before indexes existed get
        theirs here, on first use: one sequential decode, then kept in the project."""
        media = self.get_media(media_id)
        if media["kind"] != "video":
            return None
        row = self._one("SELECT pts_ms, crc32 FROM frame_index WHERE media_id = ?", [media_id])
        if row is not None:
            return FrameIndex.from_blobs(row["pts_ms"], row["crc32"])
        index = media_io.build_frame_index(self.media_dir / media["path"])  # outside the lock: slow
        if len(index) != media["frames"]:
            raise media_io.MediaError(
                f"{media['name']} now decodes to {len(index)} frames, not the {media['frames']} it had when "
                "imported; its file in the project's media folder changed; import it again")
        if self.readonly:  # a reader uses it and leaves the file as it found it
            return index
        with self._lock, self.db.atomic():
            if self._one("SELECT 1 AS x FROM frame_index WHERE media_id = ?", [media_id]) is None:
                self._write_frame_index(media_id, index)
        return index

    def _write_frame_index(self, media_id: int, index: FrameIndex) -> None:
        pts, crc = index.to_blobs()
        self.db.execute("INSERT INTO frame_index (media_id, frames, pts_ms, crc32, created_at) VALUES (?, ?, ?, ?, ?)",
                        [media_id, len(index), pts, crc, _now()])

    # -- expressions and objects -----------------------------------------------------------
    def add_expression(self, media_id: int, text: str, category: str = "object") -> dict:
        """A new expression referring to one new object of its media."""
        text = expression_text(text)
        with self._lock, self.db.atomic():
            self.get_media(media_id)
            now = _now()
            expression_id = self.db["expressions"].insert(
                {"media_id": media_id, "text": text, "status": "todo", "revision": 0,
                 "created_at": now, "updated_at": now}).last_pk
            self._new_object(expression_id, media_id, category)
        return self.get_expression(expression_id)

    def _new_object(self, expression_id: int, media_id: int, category: str) -> int:
        label = self._one("SELECT COALESCE(MAX(label), 0) + 1 AS n FROM objects WHERE media_id = ?",
                          [media_id])["n"]
        object_id = self.db["objects"].insert({"media_id": media_id, "label": label, "category": category,
                                               "created_at": _now()}).last_pk
        self.db["expression_objects"].insert({"expression_id": expression_id, "object_id": object_id})
        return object_id

    def add_object(self, expression_id: int, category: str = "object") -> int:
        """A new object of the expression's media, referred to by the expression (undoable)."""
        with self._lock, self.db.atomic():
            expr = self.get_expression(expression_id)
            object_id = self._new_object(expression_id, expr["media_id"], category)
            self._record(expression_id, f"add object {object_id}", [("link", object_id, None, "false", "true")])
            return object_id

    def remove_object(self, expression_id: int, object_id: int, base_revision: int | None = None) -> int:
        """The expression stops referring to the object (undoable); its masks stay with the object."""
        with self._lock, self.db.atomic():
            self._check_revision(expression_id, base_revision)
            objects = [o["id"] for o in self.list_objects(expression_id)]
            self._object_for(expression_id, object_id)
            if len(objects) == 1:
                raise StoreError("an expression must refer to at least one object; add another object "
                                 "before removing this one")
            self.db.execute("DELETE FROM expression_objects WHERE expression_id = ? AND object_id = ?",
                            [expression_id, object_id])
            return self._record(expression_id, f"remove object {object_id}", [("link", object_id, None, "true", "false")])

    def get_expression(self, expression_id: int) -> dict:
        row = self._one("SELECT * FROM live_expressions WHERE id = ?", [expression_id])
        if row is None:
            raw = self._one("SELECT * FROM expressions WHERE id = ?", [expression_id])
            why = _trashed(raw) or (raw and _trashed(self._one("SELECT * FROM media WHERE id = ?", [raw["media_id"]]))
                                    .replace(" (it is", " (its media is"))
            raise NotFoundError(f"no expression with id {expression_id} in this project{why or ''}")
        return row

    def list_expressions(self, media_id: int | None = None) -> list[dict]:
        if media_id is None:
            return self._rows("SELECT * FROM live_expressions ORDER BY id")
        return self._rows("SELECT * FROM live_expressions WHERE media_id = ? ORDER BY id", [media_id])

    def list_objects(self, expression_id: int) -> list[dict]:
        return self._rows("""
            SELECT o.* FROM objects o JOIN expression_objects eo ON eo.object_id = o.id
            WHERE eo.expression_id = ? AND o.deleted_at IS NULL ORDER BY o.label""", [expression_id])

    def rename_object(self, expression_id: int, object_id: int, category: str) -> dict:
        """An object's name: its category, as exports write it."""
        category = " ".join(str(category).split())
        if not category:
            raise StoreError("the object's new name is empty: type its category (person, car, ...)")
        with self._lock, self.db.atomic():
            self._object_for(expression_id, object_id)
            self.db.execute("UPDATE objects SET category = ? WHERE id = ?", [category, object_id])
        return self._one("SELECT * FROM objects WHERE id = ?", [object_id])

    def _object_for(self, expression_id: int, object_id: int | None) -> int:
        objects = [o["id"] for o in self.list_objects(expression_id)]
        if object_id is None:
            if not objects:
                raise StoreError(f"expression {expression_id} refers to no object; add one first")
            return objects[0]
        if object_id not in objects:
            raise NotFoundError(f"object {object_id} is not referred to by expression {expression_id} "
                                f"(its objects: {objects})")
        return object_id

    # -- masks -----------------------------------------------------------------------------
    def get_mask(self, expression_id: int, frame: int, object_id: int | None = None) -> np.ndarray:
        """bool [H, W]; all False where nothing was saved."""
        expr = self.get_expression(expression_id)
        media = self.get_media(expr["media_id"])
        self._check_frame(media, frame)
        row = self._one("SELECT counts, height, width FROM masks WHERE object_id = ? AND frame = ?",
                        [self._object_for(expression_id, object_id), frame])
        if row is None:
            return np.zeros((media["height"], media["width"]), bool)
        return rle.decode({"size": [row["height"], row["width"]], "counts": row["counts"]})

    def mask_kinds(self, expression_id: int, object_id: int | None = None) -> dict[int, str]:
        """frame -> kind (manual, imported, propagated, model; see app/project/fill_rule.py) for stored frames."""
        rows = self._rows("SELECT frame, source, origin FROM masks WHERE object_id = ? ORDER BY frame",
                          [self._object_for(expression_id, object_id)])
        return {r["frame"]: fill_rule.frame_kind(r["source"], r["origin"]) for r in rows}

    def empty_frames(self, expression_id: int) -> list[int]:
        """Frames where at least one of the expression's objects has no mask."""
        frames = self.get_media(self.get_expression(expression_id)["media_id"])["frames"]
        missing: set[int] = set()
        for obj in self.list_objects(expression_id):
            held = {r["frame"] for r in self._rows("SELECT frame FROM masks WHERE object_id = ?", [obj["id"]])}
            missing.update(f for f in range(frames) if f not in held)
        return sorted(missing)

    def mask_sources(self, expression_id: int, object_id: int | None = None) -> dict[int, str]:
        """frame -> source ('manual' or an engine name) for frames holding a non-empty mask."""
        rows = self._rows("SELECT frame, source FROM masks WHERE object_id = ? ORDER BY frame",
                             [self._object_for(expression_id, object_id)])
        return {r["frame"]: r["source"] for r in rows}

    def save_mask(self, expression_id: int, frame: int, mask: np.ndarray, *, object_id: int | None = None,
                  source: str = "manual", base_revision: int | None = None) -> int:
        """Store one frame's mask; returns the expression's new revision."""
        return self.save_masks(expression_id, {frame: mask}, object_id=object_id, source=source,
                               base_revision=base_revision, action=f"save frame {frame}")

    def save_masks(self, expression_id: int, masks: dict[int, np.ndarray], *, object_id: int | None = None,
                   source: str = "manual", base_revision: int | None = None, action: str | None = None,
                   keep_manual: bool = False, seed_origin: str | None = None) -> int:
        """Store several frames' masks in one transaction and one revision; returns the revision.
        keep_manual: see fill_masks."""
        return self.fill_masks(expression_id, masks, object_id=object_id, source=source, base_revision=base_revision,
                               action=action, keep_manual=keep_manual, seed_origin=seed_origin).revision

    def fill_masks(self, expression_id: int, masks: dict[int, np.ndarray], *, object_id: int | None = None,
                   source: str = "manual", base_revision: int | None = None, action: str | None = None,
                   keep_manual: bool = False, seed_origin: str | None = None) -> fill_rule.FillReport:
        """save_masks, reporting what it did frame by frame (app/project/fill_rule.py).

        keep_manual=True (model runs, propagations) leaves the annotator's frames untouched: drawn,
        accepted, imported, or propagated from such a mask. seed_origin: for a propagation, the
        origin of the mask it carried ('annotator' or 'model'). The first annotator's edit of a
        *to do* expression sets it *in progress*, in the same revision.
        """
        origin = fill_rule.origin_for(source, seed_origin)
        report = fill_rule.FillReport()
        with self._lock, self.db.atomic():
            expr = self.get_expression(expression_id)
            media = self.get_media(expr["media_id"])
            obj = self._object_for(expression_id, object_id)
            changes = []
            for frame in sorted(masks):  # one at a time: `masks` may decode lazily (a long run's RLE)
                self._check_frame(media, frame)
                mask = self._check_mask(media, masks[frame])
                new_counts = rle.encode(mask)["counts"] if mask.any() else None
                if source != "manual":  # kept apart, even where a manual frame wins below
                    self._write_proposal(obj, frame, source, new_counts, media)
                old = self._one("SELECT counts, source, origin FROM masks WHERE object_id = ? AND frame = ?",
                                [obj, frame])
                kind = fill_rule.frame_kind(*(old["source"], old["origin"]) if old else (None, None))
                if keep_manual and kind in fill_rule.KEPT_KINDS:
                    report.count(kind, written=False)
                    continue
                before = _mask_json(old["counts"], old["source"], old["origin"]) if old else None
                after = _mask_json(new_counts, source, origin)
                if before == after:
                    continue
                report.count(kind, written=True)
                changes.append(("mask", obj, frame, before, after))
            if changes:  # re-saving what is already stored overwrites nothing, stale or not
                self._check_revision(expression_id, base_revision)
                if expr["status"] == "todo" and fill_rule.is_annotator_edit(source):
                    self.db.execute("UPDATE expressions SET status = 'in_progress' WHERE id = ?", [expression_id])
                    changes.append(("status", None, None, json.dumps("todo"), json.dumps("in_progress")))
            for field_, obj, frame, _, after in changes:
                if field_ == "mask":
                    self._write_mask(obj, frame, after, media)
            report.revision = self._record(expression_id, action or f"{source} masks", changes)
            return report

    def _write_mask(self, object_id: int, frame: int, value: str | None, media: dict) -> None:
        if value is None:
            self.db.execute("DELETE FROM masks WHERE object_id = ? AND frame = ?", [object_id, frame])
            return
        data = json.loads(value)
        origin = data.get("origin") or fill_rule.origin_for(data["source"])  # older revisions lack it
        self.db.execute(
            "INSERT OR REPLACE INTO masks (object_id, frame, counts, height, width, source, origin, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [object_id, frame, data["counts"], media["height"], media["width"], data["source"], origin, _now()])

    def _write_proposal(self, object_id: int, frame: int, source: str, counts: str | None, media: dict) -> None:
        if counts is None:
            self.db.execute("DELETE FROM proposals WHERE object_id = ? AND frame = ? AND source = ?",
                            [object_id, frame, source])
            return
        self.db.execute(
            "INSERT OR REPLACE INTO proposals (object_id, frame, source, counts, height, width, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)", [object_id, frame, source, counts, media["height"], media["width"], _now()])

    def get_proposal(self, expression_id: int, frame: int, object_id: int | None = None,
                     source: str | None = None) -> tuple[np.ndarray, str] | None:
        """The latest model/propagation proposal for a frame (of `source`, if given), or None."""
        obj = self._object_for(expression_id, object_id)
        sql = "SELECT * FROM proposals WHERE object_id = ? AND frame = ?"
        params = [obj, frame]
        if source:
            sql, params = sql + " AND source = ?", params + [source]
        row = self._one(sql + " ORDER BY created_at DESC LIMIT 1", params)
        if row is None:
            return None
        return rle.decode({"size": [row["height"], row["width"]], "counts": row["counts"]}), row["source"]

    def proposal_frames(self, expression_id: int, object_id: int | None = None) -> dict[int, str]:
        rows = self._rows("SELECT frame, source FROM proposals WHERE object_id = ? ORDER BY frame, created_at",
                          [self._object_for(expression_id, object_id)])
        return {r["frame"]: r["source"] for r in rows}

    def proposal_sources(self, expression_id: int, object_id: int | None = None) -> list[str]:
        """The sources (engine names, 'propagated') that left proposals for the object."""
        rows = self._rows("SELECT DISTINCT source FROM proposals WHERE object_id = ? ORDER BY source",
                          [self._object_for(expression_id, object_id)])
        return [r["source"] for r in rows]

    @staticmethod
    def _check_frame(media: dict, frame: int) -> None:
        if not 0 <= int(frame) < media["frames"]:
            raise StoreError(f"frame {frame} is outside {media['name']}, which has frames "
                             f"0..{media['frames'] - 1}")

    @staticmethod
    def _check_mask(media: dict, mask: np.ndarray) -> np.ndarray:
        mask = np.asarray(mask)
        if mask.shape != (media["height"], media["width"]):
            raise StoreError(f"the mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} "
                             f"(shape {mask.shape}) but {media['name']} is {media['width']}x"
                             f"{media['height']}; send a mask of the frame's size")
        return mask.astype(bool)

    # -- status and text -------------------------------------------------------------------
    def set_status(self, expression_id: int, status: str, base_revision: int | None = None) -> int:
        status = status.replace(" ", "_")
        if status not in STATUSES:
            raise StoreError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        return self._set_field(expression_id, "status", status, base_revision)

    def set_text(self, expression_id: int, text: str, base_revision: int | None = None) -> int:
        text = expression_text(text)
        return self._set_field(expression_id, "text", text, base_revision)

    def _set_field(self, expression_id: int, field: str, value: str, base_revision: int | None) -> int:
        with self._lock, self.db.atomic():
            expr = self._check_revision(expression_id, base_revision)
            if expr[field] == value:
                return expr["revision"]
            self.db.execute(f"UPDATE expressions SET {field} = ? WHERE id = ?", [value, expression_id])
            change = (field, None, None, json.dumps(expr[field]), json.dumps(value))
            return self._record(expression_id, f"{field} -> {value}", [change])

    # -- review --------------------------------------------------------------------------
    def add_note(self, expression_id: int, text: str, kind: str = "comment") -> dict:
        text = str(text).strip()
        if not text:
            raise StoreError("the comment is empty: say what needs fixing")
        with self._lock, self.db.atomic():
            self.get_expression(expression_id)
            note_id = self.db["notes"].insert({"expression_id": expression_id, "kind": kind, "text": text,
                                               "created_at": _now()}).last_pk
        return self._one("SELECT * FROM notes WHERE id = ?", [note_id])

    def notes(self, expression_id: int) -> list[dict]:
        return self._rows("SELECT * FROM notes WHERE expression_id = ? ORDER BY id", [expression_id])

    def reject(self, expression_id: int, comment: str, base_revision: int | None = None) -> int:
        """A reviewer sends the expression back to 'in progress' with a comment saying why."""
        with self._lock, self.db.atomic():
            expr = self._check_revision(expression_id, base_revision)
            if expr["status"] not in FINISHED:
                raise StoreError(f"only finished expressions can be rejected; this one is {expr['status']}")
            self.add_note(expression_id, comment, kind="reject")
            return self.set_status(expression_id, "in_progress")

    # -- revisions, undo and redo ----------------------------------------------------------
    def _check_revision(self, expression_id: int, base_revision: int | None) -> dict:
        expr = self.get_expression(expression_id)
        if base_revision is not None and int(base_revision) != expr["revision"]:
            raise StaleRevisionError(expression_id, expr["revision"], int(base_revision))
        return expr

    def _record(self, expression_id: int, action: str, changes: list[tuple]) -> int:
        """Write a revision for `changes` (already applied) and bump the expression's counter."""
        if not changes:
            return self.get_expression(expression_id)["revision"]
        # A new edit ends the redo branch, as in every editor; the undone steps stay browsable.
        self.db.execute("UPDATE revisions SET state = 'discarded' WHERE expression_id = ? AND state = 'undone'",
                        [expression_id])
        revision_id = self.db["revisions"].insert({"expression_id": expression_id, "action": action,
                                                   "state": "applied", "created_at": _now()}).last_pk
        self.db["changes"].insert_all(
            {"revision_id": revision_id, "field": f, "object_id": o, "frame": fr, "before": b, "after": a}
            for f, o, fr, b, a in changes)
        return self._bump(expression_id)

    def _bump(self, expression_id: int) -> int:
        self.db.execute("UPDATE expressions SET revision = revision + 1, updated_at = ? WHERE id = ?",
                        [_now(), expression_id])
        return self.get_expression(expression_id)["revision"]

    def undo(self, expression_id: int, base_revision: int | None = None) -> int:
        return self._step(expression_id, base_revision, undo=True)

    def redo(self, expression_id: int, base_revision: int | None = None) -> int:
        return self._step(expression_id, base_revision, undo=False)

    def _step(self, expression_id: int, base_revision: int | None, undo: bool) -> int:
        with self._lock, self.db.atomic():
            expr = self._check_revision(expression_id, base_revision)
            media = self.get_media(expr["media_id"])
            order, state, new_state = ("DESC", "applied", "undone") if undo else ("ASC", "undone", "applied")
            rev = self._one(f"SELECT id FROM revisions WHERE expression_id = ? AND state = ? "
                            f"ORDER BY id {order} LIMIT 1", [expression_id, state])
            if rev is None:
                raise NothingToDoError("nothing to undo" if undo else "nothing to redo")
            changes = self._rows("SELECT * FROM changes WHERE revision_id = ? ORDER BY id",
                                 [rev["id"]])
            for ch in (reversed(changes) if undo else changes):
                value = ch["before"] if undo else ch["after"]
                if ch["field"] == "mask":
                    self._write_mask(ch["object_id"], ch["frame"], value, media)
                elif ch["field"] == "link":
                    self._write_link(expression_id, ch["object_id"], json.loads(value))
                else:
                    self.db.execute(f"UPDATE expressions SET {ch['field']} = ? WHERE id = ?",
                                    [json.loads(value), expression_id])
            self.db.execute("UPDATE revisions SET state = ? WHERE id = ?", [new_state, rev["id"]])
            return self._bump(expression_id)

    def _write_link(self, expression_id: int, object_id: int, linked: bool) -> None:
        if linked:
            self.db.execute("INSERT OR IGNORE INTO expression_objects (expression_id, object_id) VALUES (?, ?)",
                            [expression_id, object_id])
        else:
            self.db.execute("DELETE FROM expression_objects WHERE expression_id = ? AND object_id = ?",
                            [expression_id, object_id])

    def history(self, expression_id: int) -> list[dict]:
        """Revisions of an expression, oldest first, with how many changes each holds."""
        self.get_expression(expression_id)
        return self._rows("""
            SELECT r.id, r.action, r.state, r.created_at, COUNT(c.id) AS changes
            FROM revisions r LEFT JOIN changes c ON c.revision_id = r.id
            WHERE r.expression_id = ? GROUP BY r.id ORDER BY r.id""", [expression_id])

    def can_undo_redo(self, expression_id: int) -> tuple[bool, bool]:
        states = {r["state"] for r in self._rows(
            "SELECT DISTINCT state FROM revisions WHERE expression_id = ?", [expression_id])}
        return "applied" in states, "undone" in states

    # -- export support --------------------------------------------------------------------
    def iter_masks(self):
        """Every stored mask: dicts with object_id, frame, counts, height, width, source."""
        yield from self._rows("SELECT k.* FROM masks k JOIN live_objects o ON o.id = k.object_id "
                              "ORDER BY k.object_id, k.frame")

    def all_objects(self) -> list[dict]:
        return self._rows("SELECT * FROM live_objects ORDER BY id")

    def expression_objects(self) -> list[dict]:
        return self._rows("""
            SELECT l.* FROM expression_objects l JOIN live_expressions e ON e.id = l.expression_id
            JOIN live_objects o ON o.id = l.object_id ORDER BY l.expression_id, l.object_id""")

    # -- settings --------------------------------------------------------------------------
    def get_setting(self, key: str, default=None):
        row = self._one("SELECT value FROM settings WHERE key = ?", [key])
        return default if row is None else json.loads(row["value"])

    # -- imports ---------------------------------------------------------------------------
    def import_baseline(self, objects: list[BaselineObject],
                        expressions: list[BaselineExpression]) -> BaselineResult:
        """Record a dataset's objects, expressions and masks in one transaction. Masks go in as
        the baseline: a later edit's undo returns to the imported mask, never to nothing. A
        wanted label is kept where it is free in its media, else the object gets the next one."""
        with self.transaction():
            now = _now()
            taken = {mid: {r["label"] for r in self._rows("SELECT label FROM objects WHERE media_id = ?", [mid])}
                     for mid in {o.media_id for o in objects}}
            labels: list[int | None] = []
            for o in objects:  # first the wanted labels that are free
                free = o.label is not None and o.label >= 1 and o.label not in taken[o.media_id]
                labels.append(o.label if free else None)
                if free:
                    taken[o.media_id].add(o.label)
            object_ids, relabelled, n_masks = [], 0, 0
            for o, label in zip(objects, labels):
                if label is None:
                    label = max(taken[o.media_id], default=0) + 1
                    taken[o.media_id].add(label)
                    relabelled += o.label is not None
                oid = self.db["objects"].insert({"media_id": o.media_id, "label": label, "category": o.category,
                                                 "created_at": now}).last_pk
                object_ids.append(oid)
                media = self.get_media(o.media_id)
                rows = [{"object_id": oid, "frame": f, "counts": counts, "height": media["height"],
                         "width": media["width"], "source": o.sources.get(f, "import"),
                         "origin": fill_rule.origin_for(o.sources.get(f, "import")), "updated_at": now}
                        for f, counts in sorted(o.masks.items())]
                for row in rows:
                    self._check_frame(media, row["frame"])
                self.db["masks"].insert_all(rows)
                n_masks += len(rows)
            expression_ids = []
            for e in expressions:
                status = e.status if e.status in STATUSES else "todo"
                eid = self.db["expressions"].insert({"media_id": e.media_id, "text": e.text, "status": status,
                                                     "revision": 0, "created_at": now,
                                                     "updated_at": now}).last_pk
                self.db["expression_objects"].insert_all(
                    ({"expression_id": eid, "object_id": object_ids[k]} for k in dict.fromkeys(e.objects)),
                    ignore=True)
                expression_ids.append(eid)
        return BaselineResult(object_ids, expression_ids, relabelled, n_masks)

    def set_setting(self, key: str, value) -> None:
        with self._lock, self.db.atomic():
            self.db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", [key, json.dumps(value)])

    def integrity_check(self) -> str:
        return self._one("PRAGMA integrity_check")["integrity_check"]
