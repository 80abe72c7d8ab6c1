"""Helpers for SAM 2 corrections in the studio (no torch here: the engine service runs the model).

FramePreparer embeds the frame last shown in the background, so the click after it answers
fast.
"""
from __future__ import annotations

import logging
import threading

import numpy as np

log = logging.getLogger(__name__)


class FramePreparer:
    """One background thread; the newest request wins (frames skipped past are not embedded)."""

    def __init__(self, prepare):
        self._prepare = prepare  # prepare(key, image), e.g. EngineService.sam_prepare
        self._pending = None
        self._busy = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self.last_error: Exception | None = None

    def request(self, key, image: np.ndarray) -> None:
        with self._cond:
            self._pending = (key, image)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sam-prepare", daemon=True)
                self._thread.start()
            self._cond.notify()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until nothing is pending or running (tests, benchmarks)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending is None and not self._busy, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None)
                (key, image), self._pending, self._busy = self._pending, None, True
            try:
                self._prepare(key, image)
                self.last_error = None
            except Exception as e:  # the click that follows raises it where the user sees it
                self.last_error = e
                log.warning("SAM 2 could not embed frame %s ahead of a click: %s", key, e)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
