"""Temporary folders: owned by a pid, bounded while the studio runs, swept after a crash."""
import os
import subprocess
import sys
import time
import zipfile

import cv2
import numpy as np
from gradio_client import Client, handle_file

from app import tempfiles
from app.studio import Studio
from app.ui.extras_panel import export_dataset
from bench.live_app import ROOT, LiveApp


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_sweep_removes_folders_of_dead_owners_and_old_unowned_ones_only(tmp_path):
    dead, alive = dead_pid(), os.getppid()
    folders = {name: tmp_path / name for name in (
        f"flowlabel-api-{dead}-x1", f"flowlabel-export-{dead}-x2", f"flowlabel-display-{alive}-x3",
        f"flowlabel-api-{os.getpid()}-x4", "flowlabel-export-old", "flowlabel-export-young", "other-123-x")}
    for folder in folders.values():
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "f.bin").write_bytes(b"x" * 100)
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(folders["flowlabel-export-old"], (day_ago, day_ago))
    (tmp_path / f"flowlabel-api-{dead}-file").write_text("a file, not ours to judge")
    removed = tempfiles.sweep(tmp_path)
    assert sorted(p.name for p in removed) == sorted(
        [f"flowlabel-api-{dead}-x1", f"flowlabel-export-{dead}-x2", "flowlabel-export-old"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"flowlabel-display-{alive}-x3", f"flowlabel-api-{os.getpid()}-x4", "flowlabel-export-young",
         "other-123-x", f"flowlabel-api-{dead}-file"])


def test_a_spool_keeps_only_its_newest_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    spool = tempfiles.Spool("api", keep=2)
    jobs = [spool.new_job() for _ in range(5)]
    assert spool.root.parent == tmp_path and spool.root.name.startswith(f"flowlabel-api-{os.getpid()}-")
    assert [j.exists() for j in jobs] == [False, False, False, True, True]


def test_page_exports_leave_only_the_latest_zips(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr("tempfile.tempdir", None)
    studio = Studio(tmp_path / "p.sqlite")
    studio.add_media(ROOT / "assets" / "demo" / "shapes.mp4")
    spool = tempfiles.Spool("export", keep=2)  # the page's
    try:
        for fmt in ("mevis", "ytvos", "coco", "mevis"):
            path = export_dataset(studio, fmt, spool)
            assert zipfile.is_zipfile(path) == (fmt != "coco"), path
        left = sorted(str(p.relative_to(tmp_path / "tmp")) for p in (tmp_path / "tmp").rglob("*") if p.is_file())
        # Two exports kept (the newest), each only its file: a folder format's tree is zipped, then removed.
        assert len(left) == 2 and left[-1].endswith("p-mevis.zip") and left[0].endswith("p-coco.json"), left
    finally:
        studio.close()


def test_folders_of_a_killed_app_are_swept_by_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    first = LiveApp(tmp_path / "p.sqlite")
    try:
        client = Client(first.url, verbose=False)
        media = client.predict(handle_file(ROOT / "assets" / "demo" / "shapes.png"), api_name="/add_media")
        eid = client.predict(media["media_id"], "x", api_name="/add_expression")["expression_id"]
        cv2.imwrite(str(tmp_path / "m.png"), np.full((240, 320), 255, np.uint8))
        client.predict(eid, 0, handle_file(tmp_path / "m.png"), api_name="/save_mask")
        client.predict(eid, 0, api_name="/get_mask")
    finally:
        first.kill9()
    mine = sorted(p.name for p in tmp_path.glob(f"flowlabel-*-{first.proc.pid}-*"))
    assert [name.split("-")[1] for name in mine] == ["api"], mine  # the page's frames travel inline, no files
    second = LiveApp(tmp_path / "p.sqlite")
    try:
        assert list(tmp_path.glob(f"flowlabel-*-{first.proc.pid}-*")) == []
        Client(second.url, verbose=False).predict(eid, 0, api_name="/get_mask")
        assert list(tmp_path.glob(f"flowlabel-*-{second.proc.pid}-*"))  # its own are there
    finally:
        second.stop()
    assert list(tmp_path.glob(f"flowlabel-*-{second.proc.pid}-*")) == []  # and gone at a clean exit
