"""The studio's temporary folders: named with their owner's pid, bounded while it runs, removed
when it exits, and swept at the next start when it did not exit cleanly (kill -9, power loss).

Gradio copies every file a handler returns into its own cache (which `delete_cache` ages out),
so our copy is only needed until the handler returns; the spool keeps the last few anyway, so
that two tabs exporting at once never lose each other's file.
"""
from __future__ import annotations

import atexit
import itertools
import os
import re
import shutil
import tempfile
import threading
import time
from pathlib import Path

PREFIX = "flowlabel-"
OWNED = re.compile(rf"^{PREFIX}(?P<kind>[a-z]+)-(?P<pid>\d+)-")
# Folders of earlier versions carried no pid: removed once older than this.
UNOWNED = re.compile(rf"^{PREFIX}(api|export|display)-")
UNOWNED_MAX_AGE_S = 24 * 3600


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def sweep(parent: str | Path | None = None, now: float | None = None) -> list[Path]:
    """Remove this user's studio temp folders whose owner process is gone (and pid-less ones from
    earlier versions older than a day). Returns what was removed."""
    parent = Path(parent or tempfile.gettempdir())
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            st = entry.lstat()
        except OSError:
            continue
        if st.st_uid != os.getuid() or not entry.is_dir() or entry.is_symlink():
            continue
        owned = OWNED.match(entry.name)
        if owned:
            stale = int(owned["pid"]) != os.getpid() and not _alive(int(owned["pid"]))
        else:
            stale = bool(UNOWNED.match(entry.name)) and now - st.st_mtime > UNOWNED_MAX_AGE_S
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def owned_dir(kind: str) -> Path:
    """A new folder `flowlabel-<kind>-<pid>-*` in the temp folder, removed when this process exits."""
    path = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-{os.getpid()}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class Spool:
    """Files handed to Gradio: each job gets a fresh subfolder; only the newest `keep` stay."""

    def __init__(self, kind: str, keep: int = 2):
        self.kind, self.keep = kind, keep
        self._root: Path | None = None
        self._jobs: list[Path] = []
        self._lock = threading.Lock()
        self._counter = itertools.count()

    @property
    def root(self) -> Path:
        with self._lock:
            if self._root is None or not self._root.is_dir():
                self._root = owned_dir(self.kind)
            return self._root

    def new_job(self) -> Path:
        job = self.root / f"{next(self._counter):06d}"
        job.mkdir()
        with self._lock:
            self._jobs.append(job)
            old, self._jobs = self._jobs[:-self.keep], self._jobs[-self.keep:]
        for folder in old:
            shutil.rmtree(folder, ignore_errors=True)
        return job
