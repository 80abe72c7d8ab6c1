"""`launch.py evaluate`: engines scored against corrected masks, read-only, through a real process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import engine
from app.commands import evaluate as ev
from app.project.store import ProjectStore
from app.studio.studio import Studio
from tests.helpers import fake_engines  # registers the fake engines in this process too
from tests.helpers.fake_engines import bright
from tests.helpers.media_fixtures import write_image, write_video

ROOT = Path(__file__).resolve().parents[2]


def launch(*args, home):
    env = {**os.environ, "FLOWLABEL_HOME": str(home)}
    env.pop("FLOWLABEL_ENGINE_MODULES", None)
    return subprocess.run([sys.executable, "launch.py", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def project(tmp_path):
    """A 6-frame video with two expressions of the same text (one done, one with a single manual
    frame), a reviewed image expression, and one expression nobody annotated."""
    write_video(tmp_path / "v.avi", frames=6, size=(64, 48))
    write_image(tmp_path / "i.png", size=(40, 30))
    studio = Studio(tmp_path / "p.sqlite")
    video = studio.add_media(tmp_path / "v.avi")[0]
    image = studio.add_media(tmp_path / "i.png")[0]
    frames = studio.media_frames(video["id"])
    gt_video = bright(frames)
    gt_image = bright(studio.frame(image["id"], 0)[None])[0]
    done = studio.store.add_expression(video["id"], "the square")["id"]
    partial = studio.store.add_expression(video["id"], "the square")["id"]
    pic = studio.store.add_expression(image["id"], "the bright part")["id"]
    studio.store.add_expression(video["id"], "not annotated yet")
    studio.store.save_masks(done, dict(enumerate(gt_video)))
    studio.store.set_status(done, "done")
    # One corrected frame; frame 1 holds an engine's mask, which is not ground truth.
    studio.store.save_mask(partial, 3, gt_video[3])
    studio.store.save_masks(partial, {1: gt_video[1]}, source="flowrvs")
    studio.store.save_mask(pic, 0, gt_image)
    studio.store.set_status(pic, "reviewed")
    studio.close()
    return {"path": tmp_path / "p.sqlite", "ids": (done, partial, pic), "gt_video": gt_video,
            "gt_image": gt_image}


def snapshot(path):
    with ProjectStore(path) as store:
        return (list(store.iter_masks()), store.list_expressions(),
                list(store.db.query("SELECT * FROM proposals ORDER BY object_id, frame, source")),
                list(store.db.query("SELECT * FROM revisions ORDER BY id")))


def test_oracle_engine_scores_one_and_the_project_is_untouched(project, tmp_path):
    before = snapshot(project["path"])
    out = tmp_path / "report.json"
    done = launch("evaluate", "--project", project["path"], "--engine", "fake-bright", "--device", "cpu",
                  "--engine-module", "tests.helpers.fake_engines", "--json", out, home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    assert snapshot(project["path"]) == before
    report = json.loads(out.read_text())
    did, partial, pic = (str(i) for i in project["ids"])
    video, image = report["video"], report["image"]
    assert set(video["expressions"]) == {did, partial}  # same text, two rows
    assert video["expressions"][did]["J&F"] == 1.0 and video["expressions"][did]["frames_scored"] == 6
    assert video["expressions"][partial]["frame_indices"] == [3]  # the engine's frame 1 is not ground truth
    assert video["overall"] == {"J": 1.0, "F": 1.0, "J&F": 1.0, "count": 2}
    assert image["overall"] == {"cIoU": 1.0, "gIoU": 1.0, "count": 1}
    assert [s["text"] for s in report["skipped"]] == ["not annotated yet"]
    for text in ("J&F", "cIoU 1.000", "gIoU 1.000", "the square", "skipped 1", str(out)):
        assert text in done.stdout


def test_bad_engine_scores_what_we_compute_by_hand(project, tmp_path):
    # fake-everything marks every pixel: J = |G| / (H W) per frame; a full mask has no contour
    # (the image edge is not one), so F = 0 wherever the ground truth has one.
    done = launch("evaluate", "--project", project["path"], "--engine", "fake-everything", "--device", "cpu",
                  "--engine-module", "tests.helpers.fake_engines", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    out = tmp_path / "p-eval-fake-everything.json"  # the default: beside the project
    report = json.loads(out.read_text())
    gt, pixels = project["gt_video"], 48 * 64
    j_done = np.mean([g.sum() / pixels for g in gt])
    j_partial = gt[3].sum() / pixels
    rows = report["video"]["expressions"]
    did, partial, pic = (str(i) for i in project["ids"])
    assert rows[did]["J"] == pytest.approx(j_done) and rows[did]["F"] == 0.0
    assert rows[did]["J&F"] == pytest.approx(j_done / 2)
    assert rows[partial]["J"] == pytest.approx(j_partial)
    overall = report["video"]["overall"]
    assert overall["J"] == pytest.approx((j_done + j_partial) / 2) and overall["F"] == 0.0
    assert overall["J&F"] == pytest.approx((j_done + j_partial) / 4)
    assert overall["J&F"] < 0.1  # the object is a few percent of the frame
    image_iou = project["gt_image"].sum() / (30 * 40)
    assert report["image"]["overall"]["cIoU"] == pytest.approx(image_iou)
    assert report["image"]["overall"]["gIoU"] == pytest.approx(image_iou)
    assert report["image"]["expressions"][pic]["U"] == 30 * 40


def test_unknown_engine_and_missing_module_are_clear(project, tmp_path):
    home = tmp_path / "home"
    done = launch("evaluate", "--project", project["path"], "--engine", "nope", "--device", "cpu", home=home)
    assert done.returncode == 2 and "unknown segmentation engine 'nope'" in done.stderr
    assert "--engine-module" in done.stderr and "Traceback" not in done.stderr
    done = launch("evaluate", "--project", project["path"], "--engine", "fake-bright",
                  "--engine-module", "tests.no_such_module", home=home)
    assert done.returncode == 2 and "could not import engine module 'tests.no_such_module'" in done.stderr
    done = launch("evaluate", "--project", tmp_path / "missing.sqlite", "--engine", "fake-bright", home=home)
    assert done.returncode == 2 and "no project at" in done.stderr
    assert not (tmp_path / "missing.sqlite").exists()


def test_no_annotated_expression_is_an_error_that_says_what_to_do(tmp_path):
    write_image(tmp_path / "i.png", size=(40, 30))
    studio = Studio(tmp_path / "p.sqlite")
    media = studio.add_media(tmp_path / "i.png")[0]
    studio.store.add_expression(media["id"], "something")
    studio.close()
    env_home = tmp_path / "home"
    done = subprocess.run([sys.executable, "launch.py", "evaluate", "--project", str(tmp_path / "p.sqlite"),
                           "--engine", "fake-bright", "--device", "cpu"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "FLOWLABEL_HOME": str(env_home),
                                            "FLOWLABEL_ENGINE_MODULES": "tests.helpers.fake_engines"})
    assert done.returncode == 1, done.stderr
    assert "nothing to evaluate" in done.stderr and "mark them done" in done.stderr


def test_ground_truth_rule(tmp_path):
    write_video(tmp_path / "v.avi", frames=4, size=(64, 48))
    with ProjectStore(tmp_path / "p.sqlite") as store:
        media = store.add_media(tmp_path / "v.avi")
        mask = np.zeros((48, 64), bool)
        mask[10:20, 10:20] = True
        e_done, e_import, e_mixed, e_engine = (store.add_expression(media["id"], "x")["id"] for _ in range(4))
        store.set_status(e_done, "reviewed")
        store.save_masks(e_import, {2: mask}, source="import")
        store.save_masks(e_mixed, {0: mask}, source="propagated")
        store.save_mask(e_mixed, 1, mask)
        store.save_masks(e_engine, {0: mask}, source="fake-bright")
        frames = {t.expression["id"]: (t.frames, t.basis) for t in
                  (ev.ground_truth_frames(store, store.get_expression(e), media)
                   for e in (e_done, e_import, e_mixed, e_engine)) if t}
    assert frames == {e_done: ([0, 1, 2, 3], "finished"), e_import: ([0, 1, 2, 3], "dataset"),
                      e_mixed: ([1], "human frames")}


def test_evaluate_in_process_groups_by_id_and_uses_the_union_of_objects(project):
    studio = Studio(project["path"], device="cpu")
    store = studio.store
    did = project["ids"][0]
    extra = store.add_object(did)  # a second object whose mask is not bright: the union grows
    square = np.zeros((48, 64), bool)
    square[40:, :8] = True
    store.save_mask(did, 0, square, object_id=extra)
    report = ev.evaluate(studio, "fake-bright", show_progress=False)
    studio.close()
    row = report["video"]["expressions"][did]
    gt0 = project["gt_video"][0]
    assert (gt0 | square).sum() > gt0.sum()
    expected = gt0.sum() / (gt0 | square).sum()
    assert row["J_frames"][0] == pytest.approx(expected) and row["J_frames"][1:] == [1.0] * 5


def test_engine_modules_load_before_the_command_runs(tmp_path, monkeypatch):
    """--engine-module (before or after the command, repeatable) and FLOWLABEL_ENGINE_MODULES
    are imported before serve builds the Studio, so plugin engines show up in the app."""
    from app.commands import cli
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text("import engine\nfrom tests.helpers.fake_engines import Bright\n"
                      "engine.register_engine('tmp-plugin', Bright)\n")
    seen = {}

    def serve(project, args):  # what the app would offer in its engine menu
        seen["engines"] = engine.available_segmenters()
        return 0
    monkeypatch.setattr(cli, "serve", serve)
    monkeypatch.setenv("FLOWLABEL_ENGINE_MODULES", "tests.helpers.fake_engines, json")
    try:
        assert cli.main(["--engine-module", str(plugin), "--project", str(tmp_path / "p.sqlite")]) == 0
    finally:
        engine.unregister_engine("tmp-plugin")
    assert {"tmp-plugin", "fake-bright"} <= set(seen["engines"])
    args = cli.parser().parse_args(["--engine-module", "a", "evaluate", "--engine", "x", "--engine-module", "b"])
    assert cli.engine_modules(args) == ["tests.helpers.fake_engines", "json", "a", "b"]


def test_an_engine_failure_names_the_expression(project, tmp_path):
    fake_engines.FailSecond.calls = 0
    studio = Studio(project["path"], device="cpu")
    with pytest.raises(ev.EvaluationError, match=r"fake-fail-2nd failed on expression \d+ \('the square'"):
        ev.evaluate(studio, "fake-fail-2nd", show_progress=False)
    studio.close()


def test_several_engines_are_compared_on_the_same_ground_truth(project, tmp_path):
    done = launch("evaluate", "--project", project["path"], "--engine", "fake-bright,fake-everything,sam3",
                  "--device", "cpu", "--engine-module", "tests.helpers.fake_engines", home=tmp_path / "home")
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index("comparison (same ground truth):"):].splitlines()
    assert table[2].split() == ["fake-bright", "1.000", "1.000", "1.000"]
    everything = json.loads((tmp_path / "p-eval-fake-everything.json").read_text())
    assert table[3].split()[0] == "fake-everything"
    assert float(table[3].split()[1]) == pytest.approx(everything["video"]["overall"]["J&F"], abs=5e-4)
    assert table[4].startswith("sam3") and "not run" in table[4] and "--sam3-model" in table[4]
