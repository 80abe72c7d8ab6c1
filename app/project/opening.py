"""Opening a project file safely: recognise it before writing anything, refuse what is not ours.

A FlowLabel project carries SQLite's application id (APPLICATION_ID, in the file's header) and
its schema's migrations in `_sqlite_migrations`. A file is created as a project only when it
does not exist or is empty. Another program's database, a damaged file, or a project written by
a newer FlowLabel is refused with a message that says what the file is and what to do, before a
byte is written. Readers (export, render, check) can open a project read-only, also on a
read-only mount.
"""
from __future__ import annotations

import json
import os
import sqlite3
from importlib import metadata
from pathlib import Path

from app.errors import UserError

APPLICATION_ID = 0x464C4142  # "FLAB": PRAGMA application_id of every FlowLabel project
SQLITE_HEADER = b"SQLite format 3\x00"
MIGRATION_SET = "flowlabel"


class ProjectFileError(UserError):
    """The file cannot be opened as a FlowLabel project; the message says what it is and what to do."""
    exit_code = 2


def flowlabel_version() -> str:
    try:
        return metadata.version("flowlabel")
    except metadata.PackageNotFoundError:
        return "unknown"


def is_new(path: Path) -> bool:
    """No file yet, or an empty one: the only files a new project may be created in."""
    return not path.exists() or path.stat().st_size == 0


def check(path: Path, known_migrations: list[str]) -> None:
    """Raise ProjectFileError unless `path` is new or a FlowLabel project this version can open."""
    if is_new(path):
        return
    with open(path, "rb") as f:
        header = f.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise ProjectFileError(f"{path} is not a FlowLabel project: it is not an SQLite database at all "
                               f"({_damaged_hint(path)})")
    try:
        conn = connect_readonly(path)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            applied = _applied(conn) if "_sqlite_migrations" in tables else []
            version = _setting(conn, "flowlabel_version") if "settings" in tables else None
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        raise ProjectFileError(f"{path} cannot be read as a project ({e}): {_damaged_hint(path)}") from e
    ours = app_id == APPLICATION_ID or (app_id == 0 and applied)  # projects from before the id
    if not ours:
        if app_id == 0 and not tables:
            return  # an empty database: nothing of anyone's to modify
        shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
        raise ProjectFileError(f"{path} is another program's SQLite database (application id {app_id:#x}, "
                               f"tables: {shown or 'none'}), not a FlowLabel project; nothing was written to "
                               "it. Pass a new file name with --project to start a project")
    newer = [name for name in applied if name not in known_migrations]
    if newer:
        raise ProjectFileError(
            f"{path} was written by a newer FlowLabel ({version or 'a later version'}; its schema has "
            f"{', '.join(newer)}), and this is FlowLabel {flowlabel_version()}, which knows the schema up "
            f"to {known_migrations[-1]}. Nothing was written to it: open it with that version or a newer one")


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; on a read-only folder, `immutable` (WAL needs a writable -shm)."""
    writable_dir = _writable(path.parent)
    uri = f"{path.resolve().as_uri()}?{'mode=ro' if writable_dir else 'immutable=1'}"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=10)


def upgraded_copy(conn: sqlite3.Connection, migrate) -> sqlite3.Connection:
    """An in-memory copy of a read-only connection's project, migrated: what a reader reads
    when the project is older than this FlowLabel (the file itself stays as it is)."""
    from sqlite_utils import Database
    copy = sqlite3.connect(":memory:", check_same_thread=False)
    conn.backup(copy)
    conn.close()
    migrate(Database(copy))
    return copy


def stamp(db) -> None:
    """Mark an opened (writable) project as FlowLabel's, with the version that last wrote it."""
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    with db.conn:
        db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('flowlabel_version', ?)",
                   [json.dumps(flowlabel_version())])


def integrity_problems(path: Path) -> list[str]:
    """SQLite's integrity and foreign-key checks on a read-only connection: [] when healthy."""
    conn = connect_readonly(path)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
        problems += [f"foreign key: {table} row {rowid} names a missing {parent}"
                     for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")]
        return problems
    finally:
        conn.close()


def _applied(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? "
                                       "ORDER BY id", [MIGRATION_SET])]


def _setting(conn, key: str) -> str | None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else json.loads(row[0])


def _damaged_hint(path: Path) -> str:
    return (f"if it was a FlowLabel project, it is damaged: restore its latest backup from "
            f"{backup_dir(path)} (see docs/annotating.md, 'Backups'), and check it with "
            f"`launch.py check --project FILE`")


def backup_dir(path: Path) -> Path:
    return path.with_name(path.stem + "_backups")


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK)
