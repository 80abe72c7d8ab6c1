"""What one browser tab is looking at, and the verbs that change it.

A Session holds ids and a revision number, nothing heavy: frames, masks and history stay in
the Studio, and every write goes through a Studio verb. gr.State keeps one Session per tab;
copies share the Studio. Mistakes a user can fix raise PageError (an app.errors.UsageError), which the
page turns into gr.Error where its events are wired.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields

from app.errors import UsageError
from app.studio.studio import Studio

TOOLS = ("box", "click", "polygon")


class PageError(UsageError):
    """Something the annotator can fix (pick an expression first, ...)."""


@dataclass
class Session:
    studio: Studio = field(repr=False)
    media_id: int | None = None
    expression_id: int | None = None
    object_id: int | None = None
    frame: int = 0
    revision: int | None = None  # the expression's revision this tab last saw: edits build on it
    sent_image: str | None = None  # the frame the canvas already holds (it is not sent again)
    tab: str | None = None  # the token the canvas's server calls carry (see edit_panel.Tabs)
    listed_status: str | None = None  # the status the expression list last showed for this expression

    def __deepcopy__(self, memo):
        # gr.State copies its value per tab; the studio (store, caches, engines) is shared.
        return Session(self.studio, **{f.name: copy.deepcopy(getattr(self, f.name), memo)
                                       for f in fields(self) if f.name != "studio"})

    # -- what is shown ---------------------------------------------------------------------
    @property
    def store(self):
        return self.studio.store

    @property
    def media(self) -> dict | None:
        return self.store.get_media(self.media_id) if self.media_id is not None else None

    def require(self) -> int:
        if self.expression_id is None:
            raise PageError("Pick or add an expression first.")
        return self.expression_id

    def reopen(self) -> None:
        """On page load: the last expression this project worked on, else the first media."""
        last = self.store.get_setting("last_expression")
        if last is not None:
            try:
                self.pick_expression(last)
                return
            except LookupError:
                pass
        media = self.store.list_media()
        if media:
            self.pick_media(media[0]["id"])

    def pick_media(self, media_id: int | None, status: str | None = None) -> None:
        self.media_id = int(media_id) if media_id is not None else None
        self.expression_id = self.object_id = self.revision = None
        self.frame = 0
        if self.media_id is None:
            return
        self.store.get_media(self.media_id)
        wanted = [e for e in self.store.list_expressions(self.media_id) if status in (None, "all", e["status"])]
        if wanted:
            self.pick_expression(wanted[0]["id"])

    def pick_expression(self, expression_id: int | None) -> None:
        if expression_id is None:
            self.expression_id = self.object_id = self.revision = None
            return
        expr = self.store.get_expression(int(expression_id))
        if expr["media_id"] != self.media_id:
            self.frame = 0
        self.media_id, self.expression_id, self.revision = expr["media_id"], expr["id"], expr["revision"]
        objects = self.store.list_objects(expr["id"])
        self.object_id = objects[0]["id"] if objects else None
        self.store.set_setting("last_expression", expr["id"])

    def pick_object(self, object_id: int) -> None:
        eid = self.require()
        self.object_id = self.store._object_for(eid, int(object_id))

    def seek(self, frame: int) -> None:
        media = self.media
        if media is None:
            raise PageError("Add media to start: drop an image or a video under Add media.")
        self.frame = min(max(int(frame), 0), media["frames"] - 1)

    def next_expression(self, review_mode: bool = False) -> bool:
        """Move to the next expression to work on (or, in review mode, to review), across media;
        False when there is none."""
        wanted = ("done",) if review_mode else ("todo", "in_progress")
        exprs = self.store.list_expressions()
        ids = [e["id"] for e in exprs]
        start = ids.index(self.expression_id) + 1 if self.expression_id in ids else 0
        pick = next((e for e in exprs[start:] + exprs[:start] if e["status"] in wanted), None)
        if pick is None:
            return False
        self.pick_expression(pick["id"])
        return True

    def next_to_check(self) -> bool:
        target = self.studio.next_to_check(self.require(), self.frame, self.object_id)
        if target is None:
            return False
        self.frame = target
        return True

    # -- edits: each is one revision, built on the revision this tab saw --------------------
    def _saved(self, revision: int) -> None:
        self.revision = revision

    def stroke(self, points: list, radius: int, erase: bool = False) -> None:
        eid = self.require()
        if not points:
            raise PageError("A stroke needs at least one point.")
        self._saved(self.studio.paint(eid, self.frame, [p[:2] for p in points], int(radius), bool(erase),
                                      object_id=self.object_id, base_revision=self.revision)[1])

    def tool(self, kind: str, points: list) -> None:
        """box (two corners), click ([x, y, +1 or -1]) or polygon (three vertices or more)."""
        eid = self.require()
        if kind not in TOOLS:
            raise PageError(f"unknown tool {kind!r}; use {', '.join(TOOLS)}")
        need = {"box": 2, "click": 1, "polygon": 3}[kind]
        if len(points) < need:
            raise PageError(f"The {kind} tool needs at least {need} point(s): place them on the frame.")
        self._saved(self.studio.apply_tool(eid, self.frame, kind, points, object_id=self.object_id,
                                           base_revision=self.revision)[1])

    def correct(self, op: str, min_area: int = 64) -> None:
        eid = self.require()
        self._saved(self.studio.apply_op(eid, self.frame, op, base_revision=self.revision,
                                         min_area=int(min_area or 0), object_id=self.object_id)[1])

    def accept(self) -> None:
        self._saved(self.studio.accept(self.require(), self.frame, self.object_id, base_revision=self.revision))

    def undo(self) -> None:
        self._saved(self.studio.undo(self.require(), base_revision=self.revision))
        self._keep_object()

    def redo(self) -> None:
        self._saved(self.studio.redo(self.require(), base_revision=self.revision))
        self._keep_object()

    def _keep_object(self) -> None:
        """After undo/redo the object may no longer belong to the expression."""
        objects = [o["id"] for o in self.store.list_objects(self.expression_id)]
        if self.object_id not in objects:
            self.object_id = objects[0] if objects else None

    def add_object(self) -> None:
        eid = self.require()
        self.object_id = self.studio.add_object(eid)
        self.revision = self.store.get_expression(eid)["revision"]

    def remove_object(self) -> None:
        eid = self.require()
        self._saved(self.studio.remove_object(eid, self.object_id, base_revision=self.revision))
        self._keep_object()

    def propagate(self, direction: str, count: int | None, overwrite: bool, progress=None) -> dict:
        result = self.studio.propagate(self.require(), self.frame, direction, int(count) if count else None,
                                       object_id=self.object_id, overwrite_manual=bool(overwrite), progress=progress)
        self._saved(result["revision"])
        return result

    def segment(self, engine_name: str | None, overwrite: bool, progress=None, confirmed: bool = False) -> dict:
        """confirmed: the annotator agreed to run on a finished expression (the page asked)."""
        eid = self.require()
        if not engine_name:
            raise PageError("Choose an engine first (none is installed? paint the mask by hand).")
        result = self.studio.segment(eid, engine_name, progress=progress, object_id=self.object_id,
                                     overwrite_manual=bool(overwrite), rerun_finished=bool(overwrite or confirmed))
        self._saved(result["revision"])
        return result

    def choose_candidate(self, index: int, overwrite: bool = False) -> None:
        """A video candidate saves its whole track; manual frames stay unless `overwrite`."""
        self._saved(self.studio.choose_candidate(self.require(), int(index), self.object_id,
                                                 base_revision=self.revision, overwrite_manual=bool(overwrite)))

    def set_status(self, status: str, force: bool = False) -> None:
        """force: mark done although frames are empty (the annotator confirmed it)."""
        self._saved(self.studio.set_status(self.require(), status, base_revision=self.revision, force=force))

    def reject(self, comment: str) -> None:
        self._saved(self.studio.reject(self.require(), comment, base_revision=self.revision))

    # -- adding ----------------------------------------------------------------------------
    def add_media(self, files: list, keep_partial: bool = False) -> list[dict]:
        added = [row for f in files or [] for row in self.studio.add_media(f, keep_partial=bool(keep_partial))]
        if not added:
            raise PageError("Choose an image, a video or a folder of images to add.")
        self.pick_media(added[-1]["id"])
        return added

    def add_expression(self, text: str) -> None:
        if self.media_id is None:
            raise PageError("Pick a media first, then write an expression for it.")
        self.pick_expression(self.studio.add_expression(self.media_id, text)["id"])
