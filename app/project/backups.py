"""Rolling backups of a project, with SQLite's online backup API (a consistent copy while the
studio runs): one when the studio starts and one every `every` seconds while it runs, the newest
`keep` kept in `<project>_backups/`. Restoring is copying one back over the project (docs)."""
from __future__ import annotations

import datetime as _dt
import sqlite3
import threading
from pathlib import Path

from app.project.opening import backup_dir

KEEP, EVERY_SECONDS = 5, 10 * 60


def take(store, keep: int = KEEP) -> Path:
    """Copy the project now (under the store's lock, so no write is half in it); prune to `keep`."""
    folder = backup_dir(store.path)
    folder.mkdir(exist_ok=True)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    out = folder / f"{store.path.stem}-{stamp}.sqlite"
    partial = out.with_suffix(".partial")
    with store.lock:
        dest = sqlite3.connect(str(partial))
        try:
            store.db.conn.backup(dest)
        finally:
            dest.close()
    partial.replace(out)  # a backup that is listed is whole
    for old in listed(store.path)[:-keep]:
        old.unlink(missing_ok=True)
    return out


def listed(project: Path) -> list[Path]:
    """The project's backups, oldest first."""
    folder = backup_dir(Path(project))
    return sorted(folder.glob(f"{Path(project).stem}-*.sqlite")) if folder.is_dir() else []


class Rolling:
    """take() now and every `every` seconds on a daemon thread, until stop()."""

    def __init__(self, store, every: float = EVERY_SECONDS, keep: int = KEEP):
        self.store, self.every, self.keep = store, every, keep
        self._stop = threading.Event()
        self.last: Path | None = take(store, keep)
        self._thread = threading.Thread(target=self._loop, name="backups", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.last = take(self.store, self.keep)

    def stop(self) -> None:
        self._stop.set()
