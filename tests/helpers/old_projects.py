"""Project files as an earlier release wrote them: the schema up to a migration, then rows."""
import sqlite3
from pathlib import Path

from sqlite_utils import Database

from app.project.schema import migrations


def old_project(path: Path, stop_before: str, rows: list[tuple]) -> Path:
    """Apply the migrations before `stop_before`, insert `rows` ((sql, params) pairs), close."""
    db = Database(path)
    migrations.apply(db, stop_before=stop_before)
    db.close()
    con = sqlite3.connect(path)
    for sql, params in rows:
        con.execute(sql, params)
    con.commit()
    con.close()
    return path
