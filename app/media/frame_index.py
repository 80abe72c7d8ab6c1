"""A video's frame index: what sequential decoding gives at each frame, recorded at import.

For every frame, in decoding order: its presentation timestamp (OpenCV's CAP_PROP_POS_MSEC
after the grab) and the CRC-32 of its decoded pixels. Random access identifies where a seek
landed by timestamp (never by index x frame duration, which is wrong for timestamp gaps and
variable frame rates) and checks the pixels it returns against the CRC, so a jump returns
exactly the frame sequential decoding gives at that index.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np


def checksum(bgr: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(bgr))


@dataclass(frozen=True)
class FrameIndex:
    pts_ms: np.ndarray  # float64 [N]
    crc32: np.ndarray  # uint32 [N]
    _by_pts: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.pts_ms.shape != self.crc32.shape or self.pts_ms.ndim != 1:
            raise ValueError("pts_ms and crc32 must be 1-D arrays of one length")
        counts: dict[float, int] = {}
        for t in self.pts_ms.tolist():
            counts[t] = counts.get(t, 0) + 1
        # Only timestamps that occur once identify a frame (a file without timestamps repeats 0).
        unique = {t: i for i, t in enumerate(self.pts_ms.tolist()) if counts[t] == 1}
        object.__setattr__(self, "_by_pts", unique)

    def __len__(self) -> int:
        return len(self.pts_ms)

    def find(self, pts_ms: float) -> int | None:
        """The frame with exactly this timestamp, if exactly one has it."""
        return self._by_pts.get(float(pts_ms))

    def matches(self, frame: int, bgr: np.ndarray) -> bool:
        return checksum(bgr) == int(self.crc32[frame])

    def seek_position(self, frame: int, fps: float) -> int:
        """Where OpenCV's CAP_PROP_POS_FRAMES puts this frame: it counts timestamp x fps from
        the first frame's timestamp, not frames."""
        return round((float(self.pts_ms[frame]) - float(self.pts_ms[0])) * fps / 1000.0)

    def to_blobs(self) -> tuple[bytes, bytes]:
        return self.pts_ms.astype("<f8").tobytes(), self.crc32.astype("<u4").tobytes()

    @classmethod
    def from_blobs(cls, pts: bytes, crc: bytes) -> "FrameIndex":
        return cls(np.frombuffer(pts, "<f8").astype(np.float64), np.frombuffer(crc, "<u4").astype(np.uint32))
