"""What the annotator can pick from after a model run or a SAM 2 click: an Offer, kept per
(expression, object) until the next one.

Image candidates are masks on one frame. Video candidates (SAM 3's instances) are whole tracks,
kept as the engine gave them: COCO RLE (engine.track_masks.PackedTrack: a 900-frame 480x270 track
of a real object is a few hundred kB, not the 117 MB of a bool array); each one's thumbnail is its
mask on the frame where it was detected.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.track_masks import PackedTrack


@dataclass
class Offer:
    masks: np.ndarray                      # bool [k, H, W]: what each thumbnail shows
    scores: np.ndarray                     # float32 [k]
    frames: list[int]                      # the frame each thumbnail shows
    sam_object: object = None              # SAM 2's object: its next click refines the one chosen
    keep: list[int] | None = None          # each candidate's index in SAM 2's answer
    tracks: list[PackedTrack] | None = None  # video candidates: the mask on every frame
    source: str | None = None              # the engine the tracks came from

    @property
    def nbytes(self) -> int:
        return self.masks.nbytes + sum(t.nbytes for t in self.tracks or ())


def image_offer(masks: np.ndarray, scores: np.ndarray, frame: int = 0, sam_object=None) -> Offer:
    """Candidates on one frame, the pick first; an empty alternative is no one-click fix (Clear
    does that), so it is left out."""
    keep = [0] + [i for i in range(1, len(masks)) if masks[i].any()]
    return Offer(masks[keep], np.asarray(scores)[keep], [int(frame)] * len(keep), sam_object, keep)


def track_offer(tracks: list, source: str) -> Offer:
    """engine.track_masks.TrackCandidate list (best first) -> an Offer of their tracks."""
    return Offer(np.stack([c.track[c.frame] for c in tracks]), np.array([c.score for c in tracks], np.float32),
                 [int(c.frame) for c in tracks], tracks=[c.track for c in tracks], source=source)
