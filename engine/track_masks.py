"""A track: one object's mask on every frame of a clip, kept as COCO RLE (its size grows with the
mask's outline, not the frame's: a 480x270 object is a few hundred bytes where a bool array is
130 kB; empty frames cost nothing), and a video candidate: a track with the frame and score it was
found with.

No torch here: the studio holds these between an engine run and the annotator's pick.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import rle


class PackedTrack(Mapping):
    """frame -> bool [H, W] for frames 0..num_frames-1; a frame never set reads as empty."""

    def __init__(self, num_frames: int, shape: tuple[int, int]):
        self.num_frames, self.shape = int(num_frames), (int(shape[0]), int(shape[1]))
        self._rle: dict[int, dict] = {}

    def __setitem__(self, frame: int, mask: np.ndarray) -> None:
        frame = int(frame)
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"frame {frame} is outside the track (frames 0..{self.num_frames - 1})")
        if mask.dtype != bool or mask.shape != self.shape:
            raise ValueError(f"a track's masks are bool {list(self.shape)}, not {mask.dtype} {list(mask.shape)}")
        if mask.any():
            self._rle[frame] = rle.encode(mask)
        else:
            self._rle.pop(frame, None)

    def __getitem__(self, frame: int) -> np.ndarray:
        frame = int(frame)
        if not 0 <= frame < self.num_frames:
            raise KeyError(frame)
        found = self._rle.get(frame)
        return np.zeros(self.shape, bool) if found is None else rle.decode(found)

    def __iter__(self):
        return iter(range(self.num_frames))

    def __len__(self) -> int:
        return self.num_frames

    @property
    def nbytes(self) -> int:
        return sum(len(found["counts"]) for found in self._rle.values())

    def array(self) -> np.ndarray:
        """bool [T, H, W] (the whole clip, unpacked: for short clips and tests)."""
        out = np.zeros((self.num_frames, *self.shape), bool)
        for frame in self._rle:
            out[frame] = self[frame]
        return out



class ReachedFrames(PackedTrack):
    """The frames a run reached (a propagation that stops early), empty ones included: it maps
    only the frames set, so saving it writes those and leaves the rest of the clip alone."""

    def __init__(self, num_frames: int, shape: tuple[int, int]):
        super().__init__(num_frames, shape)
        self._reached: set[int] = set()

    def __setitem__(self, frame: int, mask: np.ndarray) -> None:
        super().__setitem__(frame, mask)
        self._reached.add(int(frame))

    def __getitem__(self, frame: int) -> np.ndarray:
        if int(frame) not in self._reached:
            raise KeyError(frame)
        return super().__getitem__(frame)

    def __iter__(self):
        return iter(sorted(self._reached))

    def __len__(self) -> int:
        return len(self._reached)

@dataclass
class TrackCandidate:
    """One instance an engine found in a video and followed through it."""
    frame: int           # where it was first detected: the frame its thumbnail shows
    score: float         # the detector's score there
    track: PackedTrack   # its mask on every frame
