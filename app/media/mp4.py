"""What an MP4/MOV edit list presents of its video track, read from the file's boxes.

A clip cut without re-encoding (`ffmpeg -ss 1.3 -i in.mp4 -c copy out.mp4`) keeps every packet
from the keyframe before the cut and writes an edit list that presents only the frames after
it: the container then declares more frames than a player (or our decoder) presents. The
presented duration tells such a file from a truncated one.
"""
from __future__ import annotations

import struct
from pathlib import Path

MAX_MOOV_BYTES = 64 * 2**20  # the index of hours of video; a bigger one is not read


def presented_seconds(path) -> float | None:
    """Seconds the video track's edit list presents (empty edits, which only delay, left out),
    or None when the file has no such edit list or its boxes cannot be read."""
    try:
        with open(Path(path), "rb") as f:
            moov = _top_level_box(f, b"moov")
    except (OSError, ValueError, struct.error):
        return None
    if moov is None:
        return None
    try:
        return _video_edit_seconds(moov)
    except (ValueError, struct.error):
        return None


def _top_level_box(f, wanted: bytes) -> bytes | None:
    while True:
        start = f.tell()
        header = f.read(8)
        if len(header) < 8:
            return None
        size, kind = struct.unpack(">I4s", header)
        body = 8
        if size == 1:
            size, body = struct.unpack(">Q", f.read(8))[0], 16
        elif size == 0:
            size = f.seek(0, 2) - start
            f.seek(start + body)
        if size < body:
            raise ValueError("box smaller than its header")
        if kind == wanted:
            if size > MAX_MOOV_BYTES:
                return None
            return f.read(size - body)
        f.seek(start + size)


def _boxes(data: bytes):
    """(type, payload) of each box in data, in order."""
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        body = 8
        if size == 1:
            size, body = struct.unpack_from(">Q", data, at + 8)[0], 16
        elif size == 0:
            size = len(data) - at
        if size < body or at + size > len(data):
            raise ValueError("box runs past its parent")
        yield kind, data[at + body:at + size]
        at += size


def _child(data: bytes, kind: bytes) -> bytes | None:
    return next((payload for k, payload in _boxes(data) if k == kind), None)


def _video_edit_seconds(moov: bytes) -> float | None:
    mvhd = _child(moov, b"mvhd")
    if mvhd is None:
        return None
    timescale = struct.unpack_from(">I", mvhd, 20 if mvhd[0] == 1 else 12)[0]
    if not timescale:
        return None
    for kind, trak in _boxes(moov):
        mdia = _child(trak, b"mdia") if kind == b"trak" else None
        hdlr = _child(mdia, b"hdlr") if mdia else None
        if hdlr is None or hdlr[8:12] != b"vide":
            continue
        edts = _child(trak, b"edts")
        elst = _child(edts, b"elst") if edts else None
        if elst is None:
            return None
        version, count = elst[0], struct.unpack_from(">I", elst, 4)[0]
        entry = ">QqI" if version == 1 else ">IiI"
        step = struct.calcsize(entry)
        total = sum(duration for duration, media_time, _ in
                    (struct.unpack_from(entry, elst, 8 + k * step) for k in range(count)) if media_time != -1)
        return total / timescale
    return None
