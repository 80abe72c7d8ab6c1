"""The project file's schema, as ordered migrations recorded in the file itself.

Never edit a migration that has shipped: add a new one. Each runs in a transaction together
with its record in `_sqlite_migrations`, so a project is never left half-migrated.
"""
from __future__ import annotations

import re

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("flowlabel")


@migrations()
def m001_initial(db: Database) -> None:
    db.execute("""
        CREATE TABLE media (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('image', 'video')),
            name TEXT NOT NULL,
            path TEXT NOT NULL,           -- relative to the project's media folder
            sha256 TEXT NOT NULL UNIQUE,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            frames INTEGER NOT NULL,
            fps REAL,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE objects (
            id INTEGER PRIMARY KEY,
            media_id INTEGER NOT NULL REFERENCES media(id),
            label INTEGER NOT NULL,       -- 1, 2, ... within the media (palette id in exports)
            category TEXT NOT NULL DEFAULT 'object',
            created_at TEXT NOT NULL,
            UNIQUE (media_id, label)
        )""")
    db.execute("""
        CREATE TABLE expressions (
            id INTEGER PRIMARY KEY,
            media_id INTEGER NOT NULL REFERENCES media(id),
            text TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'todo'
                CHECK (status IN ('todo', 'in_progress', 'done', 'reviewed')),
            revision INTEGER NOT NULL DEFAULT 0,   -- bumped by every change; detects stale tabs
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE expression_objects (
            expression_id INTEGER NOT NULL REFERENCES expressions(id),
            object_id INTEGER NOT NULL REFERENCES objects(id),
            PRIMARY KEY (expression_id, object_id)
        )""")
    db.execute("""
        CREATE TABLE masks (
            object_id INTEGER NOT NULL REFERENCES objects(id),
            frame INTEGER NOT NULL,
            counts TEXT NOT NULL,         -- COCO compressed RLE, column-major
            height INTEGER NOT NULL,
            width INTEGER NOT NULL,
            source TEXT NOT NULL,         -- 'manual' or the engine's name
            updated_at TEXT NOT NULL,
            PRIMARY KEY (object_id, frame)
        )""")
    db.execute("""
        CREATE TABLE revisions (
            id INTEGER PRIMARY KEY,
            expression_id INTEGER NOT NULL REFERENCES expressions(id),
            action TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'applied' CHECK (state IN ('applied', 'undone', 'discarded')),
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE changes (
            id INTEGER PRIMARY KEY,
            revision_id INTEGER NOT NULL REFERENCES revisions(id),
            field TEXT NOT NULL CHECK (field IN ('mask', 'status', 'text')),
            object_id INTEGER,
            frame INTEGER,
            before TEXT,                  -- JSON, NULL = absent
            after TEXT
        )""")
    db.execute("CREATE INDEX idx_expressions_media ON expressions(media_id)")
    db.execute("CREATE INDEX idx_objects_media ON objects(media_id)")
    db.execute("CREATE INDEX idx_revisions_expression ON revisions(expression_id, state)")
    db.execute("CREATE INDEX idx_changes_revision ON changes(revision_id)")


@migrations()
def m002_settings(db: Database) -> None:
    # Per-project key/value settings (e.g. keyboard shortcuts, last opened expression).
    db.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


@migrations()
def m003_proposals_notes_links(db: Database) -> None:
    # Model and propagation proposals are kept apart from the corrected masks, so the page can
    # show them side by side and measure how far annotators moved from them.
    db.execute("""
        CREATE TABLE proposals (
            object_id INTEGER NOT NULL REFERENCES objects(id),
            frame INTEGER NOT NULL,
            source TEXT NOT NULL,
            counts TEXT NOT NULL,
            height INTEGER NOT NULL,
            width INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (object_id, frame, source)
        )""")
    # Review comments and rejections.
    db.execute("""
        CREATE TABLE notes (
            id INTEGER PRIMARY KEY,
            expression_id INTEGER NOT NULL REFERENCES expressions(id),
            kind TEXT NOT NULL CHECK (kind IN ('comment', 'reject')),
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""")
    # History also records which objects an expression refers to ('link'); SQLite cannot
    # relax a CHECK in place, so the table is rebuilt.
    db.execute("""
        CREATE TABLE changes_new (
            id INTEGER PRIMARY KEY,
            revision_id INTEGER NOT NULL REFERENCES revisions(id),
            field TEXT NOT NULL CHECK (field IN ('mask', 'status', 'text', 'link')),
            object_id INTEGER,
            frame INTEGER,
            before TEXT,
            after TEXT
        )""")
    db.execute("INSERT INTO changes_new SELECT id, revision_id, field, object_id, frame, before, after FROM changes")
    db.execute("DROP TABLE changes")
    db.execute("ALTER TABLE changes_new RENAME TO changes")
    db.execute("CREATE INDEX idx_changes_revision ON changes(revision_id)")


@migrations()
def m004_frame_index(db: Database) -> None:
    # What sequential decoding gives at each video frame (app/media/frame_index.py): timestamps and
    # pixel checksums, so random access can be exact. Videos imported before this get theirs
    # when first read (ProjectStore.frame_index).
    db.execute("""
        CREATE TABLE frame_index (
            media_id INTEGER PRIMARY KEY REFERENCES media(id),
            frames INTEGER NOT NULL,
            pts_ms BLOB NOT NULL,         -- float64 little-endian per frame, in decoding order
            crc32 BLOB NOT NULL,          -- uint32 little-endian per frame: CRC-32 of the BGR pixels
            created_at TEXT NOT NULL
        )""")


@migrations()
def m005_trash_and_origin(db: Database) -> None:
    # Deleting media, expressions and objects moves them to a trash (who, when): restorable
    # until the trash is emptied, and ignored by everything that reads the project meanwhile.
    for table in ("media", "expressions", "objects"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN deleted_at TEXT")
        db.execute(f"ALTER TABLE {table} ADD COLUMN deleted_by TEXT")
    # Whose mask a stored mask comes from: 'annotator' (drawn, accepted, imported, or propagated
    # from such a mask) or 'model' (an engine's, or propagated from one). Model runs and
    # propagations replace only 'model' masks (app/project/fill_rule.py). Masks propagated before this
    # column existed count as the annotator's: kept, never silently replaced.
    db.execute("ALTER TABLE masks ADD COLUMN origin TEXT")
    db.execute("""UPDATE masks SET origin = CASE
                    WHEN source IN ('manual', 'import', 'propagated', 'sam2') THEN 'annotator'
                    ELSE 'model' END""")


@migrations()
def m006_live_views(db: Database) -> None:
    # What the project holds once the trash is set aside: every reader (lists, exports, render,
    # evaluate, batch) reads these. An object is live while its media is, it is not trashed, and
    # a live expression refers to it (or no expression ever did: a dataset's bare annotation).
    db.execute("CREATE VIEW live_media AS SELECT * FROM media WHERE deleted_at IS NULL")
    db.execute("""
        CREATE VIEW live_expressions AS
        SELECT e.* FROM expressions e JOIN media m ON m.id = e.media_id
        WHERE e.deleted_at IS NULL AND m.deleted_at IS NULL""")
    db.execute("""
        CREATE VIEW live_objects AS
        SELECT o.* FROM objects o JOIN media m ON m.id = o.media_id
        WHERE o.deleted_at IS NULL AND m.deleted_at IS NULL
          AND (EXISTS (SELECT 1 FROM expression_objects l JOIN live_expressions e ON e.id = l.expression_id
                       WHERE l.object_id = o.id)
               OR NOT EXISTS (SELECT 1 FROM expression_objects l JOIN expressions e ON e.id = l.expression_id
                              WHERE l.object_id = o.id AND e.deleted_at IS NOT NULL))""")


@migrations(transactional=False)
def m007_media_may_share_bytes(db: Database) -> None:
    # A dataset's byte-identical items (the same photo under two names) stay separate media,
    # sharing one file on disk: sha256 is no longer unique. SQLite cannot drop a constraint, so
    # the table is rebuilt from its own definition, less UNIQUE, in SQLite's documented way:
    # foreign keys off (possible only outside a transaction, hence transactional=False), one
    # transaction, the keys checked before it commits. A rebuild already done (a crash before
    # its record) is not done twice.
    table = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'media'").fetchone()[0]
    rebuilt = table.replace("sha256 TEXT NOT NULL UNIQUE", "sha256 TEXT NOT NULL", 1)
    if rebuilt == table:
        return
    rebuilt = re.sub(r'^CREATE TABLE\s+"?media"?\s*\(', "CREATE TABLE media_new (", rebuilt, count=1)
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        with db.atomic():
            views = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'view' ORDER BY rowid").fetchall()
            for name, _ in views:  # a rename re-checks the views: set them aside meanwhile
                db.execute(f"DROP VIEW {name}")
            db.execute(rebuilt)
            db.execute("INSERT INTO media_new SELECT * FROM media")
            db.execute("DROP TABLE media")
            db.execute("ALTER TABLE media_new RENAME TO media")
            db.execute("CREATE INDEX idx_media_sha256 ON media(sha256)")
            for _, sql in views:
                db.execute(sql)
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"rebuilding the media table would break references: {broken[:5]}")
    finally:
        db.execute("PRAGMA foreign_keys = ON")
