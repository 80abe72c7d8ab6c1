"""A track: one object's mask on every frame of a clip, kept bit-packed (1/8 of a bool array; empty
frames cost nothing), and a video candidate: a track with the frame and score it was found with.

No torch here: the studio holds these between an engine run and the annotator's pick.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


class PackedTrack(Mapping):
    """frame -> bool [H, W] for frames 0..num_frames-1; a frame never set reads as empty."""

    def __init__(self, num_frames: int, shape: tuple[int, int]):
        self.num_frames, self.shape = int(num_frames), (int(shape[0]), int(shape[1]))
        self._bits: dict[int, np.ndarray] = {}

    def __setitem__(self, frame: int, mask: np.ndarray) -> None:
        frame = int(frame)
        if not 0 <= frame < self.num_frames:
            raise IndexError(f"frame {frame} is outside the track (frames 0..{self.num_frames - 1})")
        if mask.dtype != bool or mask.shape != self.shape:
            raise ValueError(f"a track's masks are bool {list(self.shape)}, not {mask.dtype} {list(mask.shape)}")
        if mask.any():
            self._bits[frame] = np.packbits(mask, axis=None)
        else:
            self._bits.pop(frame, None)

    def __getitem__(self, frame: int) -> np.ndarray:
        frame = int(frame)
        if not 0 <= frame < self.num_frames:
            raise KeyError(frame)
        bits = self._bits.get(frame)
        if bits is None:
            return np.zeros(self.shape, bool)
        return np.unpackbits(bits, count=self.shape[0] * self.shape[1]).reshape(self.shape).astype(bool)

    def __iter__(self):
        return iter(range(self.num_frames))

    def __len__(self) -> int:
        return self.num_frames

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self._bits.values())

    def array(self) -> np.ndarray:
        """bool [T, H, W] (the whole clip, unpacked: for short clips and tests)."""
        out = np.zeros((self.num_frames, *self.shape), bool)
        for frame in self._bits:
            out[frame] = self[frame]
        return out


@dataclass
class TrackCandidate:
    """One instance an engine found in a video and followed through it."""
    frame: int           # where it was first detected: the frame its thumbnail shows
    score: float         # the detector's score there
    track: PackedTrack   # its mask on every frame
