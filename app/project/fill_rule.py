"""The overwrite rule: which frames a model run or a propagation may write.

A run fills frames that hold nothing or a model's proposal (an engine's mask, or one
propagated from it). Frames an annotator made, accepted as manual, imported, or propagated
from such a mask are kept, unless the caller asks to overwrite them. Every stored mask
records its `origin` ('annotator' or 'model') beside its `source`, so a propagated frame
tells whose mask it was carried from.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

ANNOTATOR, MODEL = "annotator", "model"
PROPAGATED_SOURCES = ("propagated", "sam2")   # DIS optical flow, SAM 2's tracker
ANNOTATOR_SOURCES = ("manual", "import")
# The frame kinds a run keeps unless told to overwrite (the notice names them in this order).
KEPT_KINDS = ("manual", "imported", "propagated")


def origin_for(source: str, seed_origin: str | None = None) -> str:
    """The origin of a mask written by `source`; a propagation inherits its seed's."""
    if source in ANNOTATOR_SOURCES:
        return ANNOTATOR
    if source in PROPAGATED_SOURCES:
        return seed_origin or ANNOTATOR
    return MODEL


def frame_kind(source: str | None, origin: str | None) -> str:
    """empty, manual, imported, propagated (from an annotator's mask) or model."""
    if source is None:
        return "empty"
    origin = origin or origin_for(source)
    if source == "manual":
        return "manual"
    if source == "import":
        return "imported"
    if source in PROPAGATED_SOURCES and origin == ANNOTATOR:
        return "propagated"
    return "manual" if origin == ANNOTATOR else "model"


def is_annotator_edit(source: str) -> bool:
    """Edits an annotator makes (strokes, tools, propagation), as opposed to model runs and
    imports: the first one moves a *to do* expression to *in progress*."""
    return source == "manual" or source in PROPAGATED_SOURCES


@dataclass
class FillReport:
    """What a run did, frame by frame: filled (was empty), replaced and kept, by kind."""
    revision: int = 0
    filled: int = 0
    replaced: Counter = field(default_factory=Counter)
    kept: Counter = field(default_factory=Counter)

    def count(self, kind: str, written: bool) -> None:
        if kind == "empty":
            self.filled += written
        elif written:
            self.replaced[kind] += 1
        else:
            self.kept[kind] += 1

    def text(self) -> str:
        """e.g. "filled 12 empty, replaced 3 model; kept 2 manual, 29 propagated"."""
        wrote = ([f"filled {self.filled} empty"] if self.filled else []) + _kinds("replaced", self.replaced)
        kept = _kinds("kept", self.kept)
        parts = [", ".join(wrote) or "no frame changed"] + ([", ".join(kept)] if kept else [])
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"filled": self.filled, "replaced": dict(self.replaced), "kept": dict(self.kept)}


def _kinds(verb: str, counts: Counter) -> list[str]:
    order = ("model", *KEPT_KINDS)
    items = [f"{counts[k]} {k}" for k in order if counts.get(k)]
    return [f"{verb} {items[0]}", *items[1:]] if items else []


def frame_ranges(frames: list[int]) -> str:
    """[3, 4, 5, 9] -> '3-5, 9'."""
    runs, start = [], None
    for i, f in enumerate(frames):
        start = f if start is None else start
        if i + 1 == len(frames) or frames[i + 1] != f + 1:
            runs.append(f"{start}" if start == f else f"{start}-{f}")
            start = None
    return ", ".join(runs)
