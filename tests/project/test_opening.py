"""The project file is recognised before anything is written: another program's database, a
damaged file and a newer FlowLabel's project are refused with a message that says what to do;
readers open read-only; backups roll and restore."""
from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from app.project import backups, opening
from app.project.opening import ProjectFileError
from app.project.store import ProjectStore
from bench.live_app import ROOT
from tests.helpers.media_fixtures import write_image


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def launch(*args):
    return subprocess.run([sys.executable, "launch.py", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def project(tmp_path):
    """A real project with one image, one expression and a mask."""
    path = tmp_path / "p.sqlite"
    write_image(tmp_path / "a.png", size=(40, 30))
    with ProjectStore(path) as store:
        media = store.add_media(tmp_path / "a.png")
        expr = store.add_expression(media["id"], "the thing")
        mask = np.zeros((30, 40), bool)
        mask[5:20, 10:30] = True
        store.save_mask(expr["id"], 0, mask)
    return path


@pytest.fixture
def foreign(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    return path


def test_another_programs_database_is_refused_before_anything_is_written(foreign):
    before = digest(foreign)
    for open_it in (lambda: ProjectStore(foreign), lambda: ProjectStore(foreign, readonly=True)):
        with pytest.raises(ProjectFileError, match=r"another program's SQLite database .*tables: invoices"):
            open_it()
    assert digest(foreign) == before
    assert not foreign.with_name(foreign.name + "-wal").exists()


def test_the_cli_refuses_it_too_without_a_traceback(foreign, tmp_path):
    before = digest(foreign)
    done = launch("export", "--project", foreign, "--format", "coco", "--out", tmp_path / "out.json")
    assert done.returncode == 2, done.stderr
    assert "another program's SQLite database" in done.stderr and "Traceback" not in done.stderr
    assert digest(foreign) == before and not (tmp_path / "out.json").exists()


@pytest.mark.parametrize("damage", ["random", "half"])
def test_a_damaged_file_says_what_it_is_and_to_restore_a_backup(project, damage):
    data = project.read_bytes()
    project.with_name(project.name + "-wal").unlink(missing_ok=True)
    if damage == "random":
        project.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
        expected = "not an SQLite database at all"
    else:
        project.write_bytes(data[: len(data) // 2])
        expected = "cannot be read as a project"
    with pytest.raises(ProjectFileError, match=expected) as info:
        with ProjectStore(project) as store:
            store.list_media()
    assert "restore its latest backup" in str(info.value) and "launch.py check" in str(info.value)
    done = launch("check", "--project", project)
    assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr


def test_a_project_from_a_newer_flowlabel_is_refused_naming_both_versions(project):
    conn = sqlite3.connect(project)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                 "VALUES ('flowlabel', 'm999_future', '2030-01-01')")
    conn.execute("UPDATE settings SET value = '\"9.0.0\"' WHERE key = 'flowlabel_version'")
    conn.commit()
    conn.close()
    before = digest(project)
    with pytest.raises(ProjectFileError, match=r"newer FlowLabel \(9\.0\.0; its schema has m999_future\), "
                                               rf"and this is FlowLabel {opening.flowlabel_version()}"):
        ProjectStore(project)
    assert digest(project) == before


def test_a_new_or_empty_file_becomes_a_project_and_is_marked(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    for path in (empty, tmp_path / "new.sqlite"):
        ProjectStore(path).close()
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA application_id").fetchone()[0] == opening.APPLICATION_ID
        conn.close()


def test_a_project_from_before_the_marker_opens_and_is_marked(project):
    conn = sqlite3.connect(project)
    conn.execute("PRAGMA application_id = 0")
    conn.commit()
    conn.close()
    with ProjectStore(project) as store:
        assert len(store.list_media()) == 1
    conn = sqlite3.connect(project)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == opening.APPLICATION_ID
    conn.close()


def test_readers_open_read_only_and_leave_the_file_as_it_was(project, tmp_path, monkeypatch):
    before = digest(project)
    done = launch("export", "--project", project, "--format", "coco", "--out", tmp_path / "out.json")
    assert done.returncode == 0, done.stderr
    assert "1 masks" in done.stdout and digest(project) == before
    # On a read-only folder SQLite cannot make WAL's -shm: the reader opens the file immutable.
    monkeypatch.setattr(opening, "_writable", lambda folder: False)
    with ProjectStore(project, readonly=True) as store:
        assert store.get_mask(store.list_expressions()[0]["id"], 0).sum() == 15 * 20
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.db.execute("DELETE FROM masks")
    assert digest(project) == before


def test_check_reports_a_sound_project_and_its_backups(project):
    with ProjectStore(project) as store:
        backups.take(store)
    done = launch("check", "--project", project)
    assert done.returncode == 0, done.stderr
    assert f"{project}: ok" in done.stdout and "backups (1): p-" in done.stdout


def test_backups_roll_keep_the_newest_and_restore_whole(project, tmp_path):
    with ProjectStore(project) as store:
        taken = [backups.take(store, keep=3) for _ in range(5)]
        expr = store.list_expressions()[0]
        store.save_mask(expr["id"], 0, np.zeros((30, 40), bool))  # a later edit, not in the backups
    kept = backups.listed(project)
    assert kept == taken[-3:] and not list(kept[0].parent.glob("*.partial"))
    restored = tmp_path / "restored.sqlite"
    restored.write_bytes(kept[-1].read_bytes())  # the documented restore: copy it back
    with ProjectStore(restored, readonly=True) as store:
        assert store.get_mask(store.list_expressions()[0]["id"], 0).sum() == 15 * 20
    assert opening.integrity_problems(restored) == []


def test_rolling_backups_take_one_at_start_and_more_as_time_passes(project):
    import time
    with ProjectStore(project) as store:
        rolling = backups.Rolling(store, every=0.2, keep=2)
        first = rolling.last
        time.sleep(1.0)
        rolling.stop()
        assert first is not None and rolling.last != first and len(backups.listed(project)) == 2


def test_a_reader_of_an_older_project_reads_an_upgraded_copy_and_leaves_the_file(project):
    from tests.helpers.old_projects import old_project
    older = old_project(project.with_name("old.sqlite"), "m005_trash_and_origin", [
        ("INSERT INTO media (kind, name, path, sha256, width, height, frames, created_at) "
         "VALUES ('image', 'a.png', 'x.png', 'abc', 40, 30, 1, '2026-01-01')", ()),
        ("INSERT INTO expressions (media_id, text, created_at, updated_at) "
         "VALUES (1, 'the thing', '2026-01-01', '2026-01-01')", ())])
    before = digest(older)
    with ProjectStore(older, readonly=True) as store:  # reads through m006's views
        assert [e["text"] for e in store.list_expressions()] == ["the thing"]
    assert digest(older) == before
