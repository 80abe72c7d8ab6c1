"""How much interactive state the studio keeps between requests, named in one place, and the
container that holds each such cache to its bound.

Each is a most-recently-used cache: the oldest entry goes first. Layers read their bound
from BOUNDS (engine never imports app, so the table lives here, where every layer can see it).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class StateBounds:
    embeddings: int = 8     # frames whose SAM image embedding a predictor keeps: a click there pays none
    prompts: int = 64       # objects whose clicks a predictor remembers: the next click refines them
    answers: int = 16       # objects whose last SAM alternatives the service keeps, for "use this one"
    offers: int = 32        # (expression, object) pairs whose candidates the studio keeps for the strip
    checks: int = 32        # objects whose frames-to-check list the studio keeps (the timeline's red ticks)
    frame_images: int = 48  # frames a page keeps encoded as JPEG for the canvas
    tabs: int = 256         # browser tabs whose session the server can find by its token


BOUNDS = StateBounds()


class Recent(OrderedDict):
    """A dict holding its `keep` most recently set entries; setting a key again makes it newest."""

    def __init__(self, keep: int):
        super().__init__()
        self.keep = int(keep)

    def __setitem__(self, key, value) -> None:
        if key in self:
            self.move_to_end(key)
        super().__setitem__(key, value)
        while len(self) > self.keep:
            self.popitem(last=False)
