"""Frames for playback: the canvas asks for runs of frames ahead of the one it shows (pictures
as JPEG, masks as run lengths) and shows each at the video's rate. The tab's session does not
move while it plays: pausing seeks to the frame on screen, so edits land where they are drawn.

Frames are decoded in order here (sequential decoding is the cheap way through a video), then
shrunk to the width the canvas shows them at (the page draws any picture at the frame's size)
and encoded to JPEG by a small pool: a 1080p frame shown 1150 px wide costs about one decode on
the request's path. Masks travel exact, at full size, as everywhere.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from app.ui.frame_images import jpeg_data_url
from app.ui.session import PageError, Session
from app.ui.views import runs

MAX_RUN = 12  # frames per request: enough to hide a round trip, small enough to answer fast
DEFAULT_FPS = 25.0  # when the container gives no rate
PLAY_JPEG_QUALITY = 85  # in motion; 4:2:0 colour: about half the bytes and decoding of a still frame's
_ENCODERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="play-jpeg")


def play_frames(session: Session, start: int, count: int, width: int | None = None) -> dict:
    """Frames start .. start+count-1 (clipped to the video) of the tab's media, pictures at most
    `width` px wide, with the masks of its expression's objects:
    {"fps", "frames": [{"frame", "image", "objects": [{"id", "runs"}]}]}."""
    media = session.media
    if media is None or media["frames"] <= 1:
        raise PageError("Play needs a video: pick one under Media.")
    start = min(max(int(start), 0), media["frames"] - 1)
    stop = min(start + max(1, min(int(count), MAX_RUN)), media["frames"])
    studio, store, eid = session.studio, session.store, session.expression_id
    objects = store.list_objects(eid) if eid is not None else []
    width = min(int(width or media["width"]), media["width"])
    pictures = [_ENCODERS.submit(_picture, studio.frame(media["id"], f), width) for f in range(start, stop)]
    frames = [{"frame": f,
               "objects": [{"id": o["id"], "runs": runs(store.get_mask(eid, f, o["id"]))} for o in objects]}
              for f in range(start, stop)]
    for item, picture in zip(frames, pictures):
        item["image"] = picture.result()
    return {"fps": media["fps"] or DEFAULT_FPS, "media": media["id"], "frames": frames}


def _picture(rgb: np.ndarray, width: int) -> str:
    if width < rgb.shape[1]:
        height = max(1, round(rgb.shape[0] * width / rgb.shape[1]))
        rgb = cv2.resize(rgb, (max(1, width), height), interpolation=cv2.INTER_LINEAR)
    return jpeg_data_url(rgb, quality=PLAY_JPEG_QUALITY, full_colour=False)
