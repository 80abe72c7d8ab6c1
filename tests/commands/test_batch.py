"""Batch pre-annotation: pending expressions only, manual frames kept, resumable, Ray equals in-process."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from app.commands import batch
from app.project.store import ProjectStore
from app.studio.studio import Studio
from tests.helpers import fake_engines
from tests.helpers.fake_engines import bright
from tests.helpers.media_fixtures import write_image, write_video

ROOT = Path(__file__).resolve().parents[2]


def build(folder: Path) -> dict:
    """Two videos and two images; five pending expressions (two with the same text), one with a
    manual mask, one marked done without masks."""
    folder.mkdir(parents=True, exist_ok=True)
    write_video(folder / "a.avi", frames=5, size=(64, 48))
    write_video(folder / "b.avi", frames=4, size=(48, 32))
    write_image(folder / "c.png", size=(40, 30), seed=1)
    write_image(folder / "d.png", size=(32, 24), seed=2)
    studio = Studio(folder / "p.sqlite")
    a, b, c, d = (studio.add_media(folder / n)[0]["id"] for n in ("a.avi", "b.avi", "c.png", "d.png"))
    add = studio.store.add_expression
    ids = {"a1": add(a, "the square")["id"], "a2": add(a, "the square")["id"], "b1": add(b, "the box")["id"],
           "c1": add(c, "the patch")["id"], "d1": add(d, "the patch")["id"],
           "manual": add(a, "drawn by hand")["id"], "done": add(b, "absent everywhere")["id"]}
    hand = np.zeros((48, 64), bool)
    hand[5:9, 5:9] = True
    studio.store.save_mask(ids["manual"], 2, hand)
    studio.store.set_status(ids["done"], "done")
    studio.close()
    return {"path": folder / "p.sqlite", "ids": ids, "hand": hand}


def masks_of(path):
    with ProjectStore(path) as store:
        masks = [{k: v for k, v in m.items() if k != "updated_at"} for m in store.iter_masks()]
        history = [[(h["action"], h["changes"]) for h in store.history(e["id"])] for e in store.list_expressions()]
        proposals = [tuple(r[k] for k in ("object_id", "frame", "source", "counts"))
                     for r in store.db.query("SELECT * FROM proposals ORDER BY object_id, frame, source")]
    return masks, history, proposals


@pytest.fixture
def project(tmp_path):
    return build(tmp_path / "p")


def test_in_process_fills_pending_expressions_only(project):
    ids = project["ids"]
    studio = Studio(project["path"], device="cpu")
    summary = batch.annotate(studio, "fake-bright", show_progress=False)
    assert (summary.pending, summary.annotated, summary.empty, summary.frames) == (5, 5, 0, 5 + 5 + 4 + 1 + 1)
    assert summary.skipped == {"marked done or reviewed": 1, "already have masks": 1}
    store = studio.store
    for key in ("a1", "a2", "b1", "c1", "d1"):
        sources = store.mask_sources(ids[key])
        assert sources and set(sources.values()) == {"fake-bright"}
        assert [h["action"] for h in store.history(ids[key])] == ["segment with fake-bright"]  # one undo step
    frames = studio.media_frames(store.get_expression(ids["a1"])["media_id"])
    assert np.array_equal(store.get_mask(ids["a1"], 3), bright(frames)[3])
    assert store.mask_sources(ids["manual"]) == {2: "manual"}  # skipped: it has masks
    assert np.array_equal(store.get_mask(ids["manual"], 2), project["hand"])
    assert store.mask_sources(ids["done"]) == {}
    again = batch.annotate(studio, "fake-bright", show_progress=False)  # nothing left to do
    assert again.pending == 0 and again.skipped["already have masks"] == 6
    studio.close()


def test_a_frame_corrected_during_the_run_is_kept(project):
    """The app may be open on the project: a frame an annotator corrects while the engine runs
    on that expression survives the engine's save."""
    ids = project["ids"]
    studio = Studio(project["path"], device="cpu")
    fix = np.zeros((48, 64), bool)
    fix[20:30, 20:30] = True

    class Meanwhile(fake_engines.Bright):
        def segment_video(self, frames, expression, progress=None):
            if expression == "the square" and not studio.store.mask_sources(ids["a1"]):
                studio.store.save_mask(ids["a1"], 1, fix)  # the annotator, mid-run
            return super().segment_video(frames, expression, progress)

    engine.register_engine("test-meanwhile", Meanwhile)
    try:
        batch.annotate(studio, "test-meanwhile", limit=1, show_progress=False)
    finally:
        engine.unregister_engine("test-meanwhile")
    sources = studio.store.mask_sources(ids["a1"])
    assert sources[1] == "manual" and np.array_equal(studio.store.get_mask(ids["a1"], 1), fix)
    assert set(sources.values()) == {"manual", "test-meanwhile"}
    studio.close()


def test_interrupted_run_resumes_with_the_rest(project):
    ids = project["ids"]
    fake_engines.FailSecond.calls = 0
    studio = Studio(project["path"], device="cpu")
    with pytest.raises(batch.BatchError, match=r"failed on expression .*run the same command again to resume"):
        batch.annotate(studio, "fake-fail-2nd", show_progress=False)
    assert set(studio.store.mask_sources(ids["a1"]).values()) == {"fake-fail-2nd"}  # saved before the crash
    assert studio.store.mask_sources(ids["a2"]) == {}                              # the crash: nothing
    del fake_engines.CALLS[:]
    summary = batch.annotate(studio, "fake-bright", show_progress=False)
    assert summary.pending == 4 and summary.annotated == 4
    assert [text for _, text in fake_engines.CALLS] == ["the square", "the box", "the patch", "the patch"]
    assert set(studio.store.mask_sources(ids["a1"]).values()) == {"fake-fail-2nd"}  # not redone
    studio.close()


def test_unknown_engine_and_kinds(project):
    studio = Studio(project["path"], device="cpu")
    with pytest.raises(engine.UnknownEngineError):
        batch.annotate(studio, "nope", show_progress=False)
    summary = batch.annotate(studio, "fake-video", show_progress=False)
    assert summary.annotated == 3 and summary.skipped["images, which fake-video does not segment"] == 2
    studio.close()


def test_ray_run_equals_the_in_process_run(tmp_path):
    """`launch.py annotate --ray local` (a local Ray instance on CPU, two actors) writes the
    same masks, revisions and proposals, bit for bit, as the in-process run."""
    local = build(tmp_path / "local")
    on_ray = build(tmp_path / "ray")
    studio = Studio(local["path"], device="cpu")
    batch.annotate(studio, "fake-bright", show_progress=False)
    studio.close()
    env = {**os.environ, "FLOWLABEL_HOME": str(tmp_path / "home"), "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "launch.py", "annotate", "--project", str(on_ray["path"]),
                           "--engine", "fake-bright", "--engine-module", "tests.helpers.fake_engines",
                           "--ray", "local", "--cpu-actors", "2", "--device", "cpu"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "annotated 5 of 5" in done.stdout and "2 actor(s)" in done.stdout
    ray_masks, local_masks = masks_of(on_ray["path"]), masks_of(local["path"])
    assert len(ray_masks[0]) == len(local_masks[0]) > 0
    assert ray_masks == local_masks


def test_cli_stops_on_a_crash_and_resumes(project, tmp_path):
    def annotate(engine_name):
        env = {**os.environ, "FLOWLABEL_HOME": str(tmp_path / "home"), "FLOWLABEL_ENGINE_MODULES": "tests.helpers.fake_engines"}
        return subprocess.run([sys.executable, "launch.py", "annotate", "--project", str(project["path"]),
                               "--engine", engine_name, "--device", "cpu"],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    done = annotate("fake-fail-2nd")
    assert done.returncode == 1 and "simulated crash" in done.stderr and "Traceback" not in done.stderr
    assert "1 expression(s) were annotated and saved; run the same command again to resume" in done.stderr
    done = annotate("fake-bright")
    assert done.returncode == 0, done.stderr
    assert "annotated 4 of 4 pending" in done.stdout and "skipped 2: already have masks" in done.stdout


def test_bench_quick_in_process():
    done = subprocess.run([sys.executable, "bench/batch.py", "--quick", "--no-ray"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "machine: " in done.stdout and "in-process: 8 expressions in" in done.stdout


def test_unreachable_ray_address_fails_fast(project):
    studio = Studio(project["path"], device="cpu")
    with pytest.raises(batch.BatchError, match=r"nothing answers at 127\.0\.0\.1:1 .*ray start --head"):
        batch.annotate(studio, "fake-bright", ray_address="127.0.0.1:1", show_progress=False)
    assert not any(studio.store.mask_sources(e["id"]) for e in studio.store.list_expressions()
                   if e["text"] != "drawn by hand")
    studio.close()
