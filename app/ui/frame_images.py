"""Frames for the canvas, as JPEG data URLs: encoded once, kept in a small LRU, and the next
frame encoded ahead in the background, so stepping through a video costs a cache hit.

Only the picture travels as JPEG (about 11 ms for 1080p); masks never do.
"""
from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from engine.bounds import BOUNDS

JPEG_QUALITY = 92


def jpeg_data_url(rgb: np.ndarray, quality: int = JPEG_QUALITY, full_colour: bool = True) -> str:
    # 4:4:4 keeps thin coloured edges of the picture crisp (playback, in motion, does without).
    params = [cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
              cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444 if full_colour else cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]
    # cvtColor, not rgb[..., ::-1]: NumPy's strided copy costs 7.7 ms a 1080p frame, OpenCV's 0.2 ms.
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError("OpenCV could not encode a display frame as JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")


class FrameImages:
    def __init__(self, keep: int = BOUNDS.frame_images):
        self.keep = keep
        self._urls: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()
        self._ahead = ThreadPoolExecutor(max_workers=1, thread_name_prefix="frame-ahead")

    def get(self, studio, media_id: int, frame: int) -> str:
        key = (str(studio.store.media_file(media_id)), frame)
        with self._lock:
            url = self._urls.get(key)
            if url is not None:
                self._urls.move_to_end(key)
                return url
        url = jpeg_data_url(studio.frame(media_id, frame))
        with self._lock:
            self._urls[key] = url
            while len(self._urls) > self.keep:
                self._urls.popitem(last=False)
        return url

    def ahead(self, studio, media_id: int, frame: int, frames: int) -> None:
        """Encode the next frame in the background (errors there are the next view's to report)."""
        if frame + 1 < frames:
            self._ahead.submit(self._quietly, studio, media_id, frame + 1)

    def _quietly(self, studio, media_id, frame) -> None:
        try:
            self.get(studio, media_id, frame)
        except Exception:  # noqa: BLE001 - a prefetch that fails costs nothing; the real view reports it
            pass


FRAME_IMAGES = FrameImages()
