"""Acknowledged saves survive kill -9: once a client holds {"revision"}, the mask is on disk.

The real app runs as a subprocess; it is killed with SIGKILL right after the last ack (no
graceful shutdown, no checkpoint), then the project file is read with plain sqlite3 and with
ProjectStore, and served again by a fresh app.
"""
import signal
import sqlite3

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file
from pycocotools import mask as mask_utils

from app.project.store import ProjectStore
from bench.live_app import ROOT, LiveApp

VIDEO = ROOT / "assets" / "demo" / "shapes.mp4"  # 24 frames, 320x240
BURST = 20
CYCLES = 3


@pytest.fixture
def start(tmp_path, monkeypatch):
    """start() -> (LiveApp, Client) on tmp_path/crash.sqlite; every app is stopped at teardown."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the apps' temporary files land here, not in /tmp
    apps = []

    def start_app():
        apps.append(LiveApp(tmp_path / "crash.sqlite"))
        return apps[-1], Client(apps[-1].url, verbose=False)

    yield start_app
    for app in apps:
        app.stop()


def random_mask(seed: int, shape=(240, 320)) -> np.ndarray:
    return np.random.default_rng(seed).random(shape) > 0.5


def save_args(expression_id: int, frame: int, mask: np.ndarray, directory) -> tuple:
    png = directory / f"mask-{frame}.png"
    assert cv2.imwrite(str(png), mask.astype(np.uint8) * 255)
    return expression_id, frame, handle_file(png)


def kill9(app: LiveApp) -> None:
    app.kill9()
    assert app.proc.returncode == -signal.SIGKILL


def read_with_sqlite(path, expression_id: int) -> tuple[dict[int, np.ndarray], int, int]:
    """Plain sqlite3 and pycocotools, no app code: (frame -> mask, revision, applied revisions)."""
    con = sqlite3.connect(str(path))
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = con.execute("""
            SELECT m.frame, m.counts, m.height, m.width FROM masks m
            JOIN expression_objects eo ON eo.object_id = m.object_id
            WHERE eo.expression_id = ?""", [expression_id]).fetchall()
        row = con.execute("SELECT revision FROM expressions WHERE id = ?", [expression_id]).fetchone()
        assert row is not None, f"expression {expression_id} was acknowledged but is not in the file"
        revision = row[0]
        [(applied,)] = con.execute("SELECT COUNT(*) FROM revisions WHERE expression_id = ? AND state = 'applied'",
                                   [expression_id])
    finally:
        con.close()
    masks = {frame: mask_utils.decode({"size": [h, w], "counts": counts.encode()}).astype(bool)
             for frame, counts, h, w in rows}
    return masks, revision, applied


def get_mask(client: Client, expression_id: int, frame: int) -> np.ndarray:
    return cv2.imread(client.predict(expression_id, frame, api_name="/get_mask"), cv2.IMREAD_GRAYSCALE) > 0


def test_acknowledged_save_survives_kill9(start, tmp_path):
    app, client = start()
    media = client.predict(handle_file(VIDEO), api_name="/add_media")
    expression_id = client.predict(media["media_id"], "the red square",
                                   api_name="/add_expression")["expression_id"]
    first, second = random_mask(1), random_mask(2)
    r1 = client.predict(*save_args(expression_id, 3, first, tmp_path), api_name="/save_mask")["revision"]
    r2 = client.predict(*save_args(expression_id, 3, second, tmp_path), r1, api_name="/save_mask")["revision"]
    kill9(app)

    masks, revision, applied = read_with_sqlite(app.project, expression_id)
    assert masks.keys() == {3} and np.array_equal(masks[3], second)
    assert (revision, applied) == (r2, 2)

    with ProjectStore(app.project) as store:
        assert store.integrity_check() == "ok"
        assert np.array_equal(store.get_mask(expression_id, 3), second)
        assert [r["state"] for r in store.history(expression_id)] == ["applied", "applied"]
        store.undo(expression_id, base_revision=r2)
        assert np.array_equal(store.get_mask(expression_id, 3), first)
        store.redo(expression_id)
        assert np.array_equal(store.get_mask(expression_id, 3), second)

    _, client = start()
    assert np.array_equal(get_mask(client, expression_id, 3), second)
    assert not get_mask(client, expression_id, 4).any()


def test_bursts_of_saves_survive_repeated_kill9(start, tmp_path):
    """Each cycle: a fresh app on the same project saves BURST frames (in turn, or all at once),
    and is killed right after the last ack; every cycle's masks must all be there."""
    expression_id, expected, revision = None, {}, 0
    for cycle in range(CYCLES):
        app, client = start()
        if expression_id is None:
            media = client.predict(handle_file(VIDEO), api_name="/add_media")
            expression_id = client.predict(media["media_id"], "the blue circle",
                                           api_name="/add_expression")["expression_id"]
        else:  # what the last app acknowledged before its kill, served by this one (read one by one:
            # gradio_client's concurrent submits race in its own SSE reader, a CancelledError now and then)
            for frame, mask in expected.items():
                assert np.array_equal(get_mask(client, expression_id, frame), mask)

        previous = dict(expected)
        expected = {frame: random_mask(100 * cycle + frame) for frame in range(BURST)}
        calls = {f: save_args(expression_id, f, m, tmp_path) for f, m in expected.items()}
        if cycle % 2 == 0:
            acks = {f: client.predict(*args, api_name="/save_mask") for f, args in calls.items()}
        else:  # all at once, through the app's queue
            jobs = {f: client.submit(*args, api_name="/save_mask") for f, args in calls.items()}
            acks = {f: job.result() for f, job in jobs.items()}
        kill9(app)

        revisions = {f: ack["revision"] for f, ack in acks.items()}
        assert sorted(revisions.values()) == list(range(revision + 1, revision + BURST + 1))
        masks, revision, applied = read_with_sqlite(app.project, expression_id)
        assert masks.keys() == expected.keys()
        for frame, mask in expected.items():
            assert np.array_equal(masks[frame], mask), f"cycle {cycle}, frame {frame}"
        assert revision == max(revisions.values()) and applied == BURST * (cycle + 1)

        with ProjectStore(app.project) as store:
            assert store.integrity_check() == "ok"
            for frame, mask in expected.items():
                assert np.array_equal(store.get_mask(expression_id, frame), mask)
            assert len(store.history(expression_id)) == BURST * (cycle + 1)
            # Undo after the crash takes back the last acknowledged save; redo restores it.
            last = max(revisions, key=revisions.get)
            store.undo(expression_id, base_revision=revision)
            assert np.array_equal(store.get_mask(expression_id, last),
                                  previous.get(last, np.zeros_like(expected[last])))
            revision = store.redo(expression_id)
            assert np.array_equal(store.get_mask(expression_id, last), expected[last])
