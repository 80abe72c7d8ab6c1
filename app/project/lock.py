"""One writer per project: an advisory lock on a side file, held for the writer's lifetime.

The studio and the CLI's writing commands (import, annotate) hold `<project>.lock` with
flock. The kernel drops the lock when the process ends, however it ends (kill -9 included), so
a stale lock cannot outlive its holder; the file only says who held it last. Readers (export,
evaluate) need no lock: SQLite's WAL lets them read beside a writer.
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from app.project.store import StoreError


class ProjectLockedError(StoreError):
    """Another process is writing this project."""
    exit_code = 3


def lock_path(project: str | Path) -> Path:
    project = Path(project).expanduser().resolve()
    return project.with_name(project.name + ".lock")


def holder(project: str | Path) -> dict | None:
    """What the last holder wrote into the lock file (pid, host, command, since), or None."""
    try:
        return json.loads(lock_path(project).read_text() or "null")
    except (OSError, ValueError):
        return None


def describe(info: dict | None) -> str:
    if not info:
        return "another process (it wrote nothing about itself)"
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info.get("since", 0)))
    return f"pid {info.get('pid')} on {info.get('host')} ({info.get('command')}), since {since}"


class ProjectLock:
    """`with ProjectLock(path, "studio"):` or acquire()/release(). Raises ProjectLockedError when
    another process holds the project; the message names that process."""

    def __init__(self, project: str | Path, purpose: str):
        self.project = Path(project).expanduser().resolve()
        self.path = lock_path(self.project)
        self.purpose = purpose
        self._fd: int | None = None

    def acquire(self) -> "ProjectLock":
        if self._fd is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ProjectLockedError(f"cannot open the lock file {self.path} ({e.strerror}); the project's folder "
                                     "must be writable by this user") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ProjectLockedError(
                f"project {self.project} is open for writing by {describe(holder(self.project))}. "
                "One process writes a project at a time: stop that one first (or export and evaluate, which "
                "only read). The lock is released when that process ends.") from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time(),
                "command": f"{self.purpose}: {' '.join(sys.argv)}"[:500]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "ProjectLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
