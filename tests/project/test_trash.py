"""Rename and delete, recoverably (app/project/trash.py): what every reader sees, restore, emptying;
the demo media; the CLI (launch.py media|expressions|objects|trash) and the API."""
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from app.commands import cli
from app.project import trash
from app.project.store import NotFoundError, ProjectStore, StoreError
from app.studio.studio import Studio
from bench.live_app import ROOT, LiveApp


def box(y0, y1, x0, x1, shape=(32, 48)) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def project(studio, video_path, image_path):
    """A video with two expressions (one with two objects) and an image with one, all masked."""
    store = studio.store
    video = studio.add_media(video_path)[0]["id"]
    image = studio.add_media(image_path)[0]["id"]
    keep = store.add_expression(video, "the red box")["id"]
    gone = store.add_expression(video, "the dark background")["id"]
    second = store.add_object(gone)
    pic = store.add_expression(image, "the still")["id"]
    store.save_mask(keep, 0, box(4, 14, 0, 10))
    store.save_mask(gone, 1, box(0, 8, 0, 8))
    store.save_mask(gone, 1, box(20, 30, 20, 30), object_id=second)
    store.save_mask(pic, 0, box(0, 10, 0, 10, (30, 40)))
    return studio, {"video": video, "image": image, "keep": keep, "gone": gone, "second": second, "pic": pic}


def coco(studio, tmp_path) -> dict:
    return json.loads(studio.export_coco(tmp_path / "coco.json").read_text())


def test_a_deleted_expression_leaves_every_reader_and_comes_back(project, tmp_path):
    studio, ids = project
    store = studio.store
    trash.delete(store, "expression", ids["gone"], by="ann")
    assert [e["id"] for e in store.list_expressions()] == [ids["keep"], ids["pic"]]
    assert ids["second"] not in {o["id"] for o in store.all_objects()}
    assert {m["object_id"] for m in store.iter_masks()} == {o["id"] for o in store.all_objects()}
    data = coco(studio, tmp_path)
    assert len(data["annotations"]) == 2 and "the dark background" not in json.dumps(data)
    with pytest.raises(NotFoundError, match="in the trash"):
        store.get_expression(ids["gone"])
    [item] = trash.list_trash(store)
    assert (item["kind"], item["id"], item["name"], item["deleted_by"]) == ("expression", ids["gone"],
                                                                           "the dark background", "ann")
    trash.restore(store, "expression", ids["gone"])
    assert store.get_mask(ids["gone"], 1, ids["second"]).sum() == 100
    assert len(coco(studio, tmp_path)["annotations"]) == 4


def test_a_deleted_media_takes_its_expressions_and_never_reaches_an_export(project, tmp_path):
    studio, ids = project
    store = studio.store
    trash.delete(store, "expression", ids["keep"], by="ann")
    trash.delete(store, "media", ids["video"], by="ann")
    assert [m["id"] for m in store.list_media()] == [ids["image"]]
    assert [e["id"] for e in store.list_expressions()] == [ids["pic"]]
    data = coco(studio, tmp_path)
    assert len(data["images"]) == 1 and data["images"][0]["file_name"].endswith(".png")
    assert all(a["image_id"] in {i["id"] for i in data["images"]} for a in data["annotations"])
    assert len(data["annotations"]) == 1
    with pytest.raises(StoreError, match="restore the media first"):
        trash.restore(store, "expression", ids["keep"])
    file = store.media_dir / store._one("SELECT path FROM media WHERE id = ?", [ids["video"]])["path"]
    assert file.exists()  # still restorable
    assert trash.empty(store) == {"media": 1, "expression": 1, "object": 0}  # "keep" was in it too
    assert not file.exists()
    assert store._rows("SELECT * FROM expressions WHERE media_id = ?", [ids["video"]]) == []
    assert store.integrity_check() == "ok"
    assert [m["id"] for m in store.list_media()] == [ids["image"]]


def test_object_delete_rename_and_the_last_object_stays(project):
    studio, ids = project
    store = studio.store
    with pytest.raises(StoreError, match="only object"):
        trash.delete(store, "object", store.list_objects(ids["keep"])[0]["id"], by="ann")
    trash.delete(store, "object", ids["second"], by="ann")
    assert [o["id"] for o in store.list_objects(ids["gone"])] != [] and \
        ids["second"] not in [o["id"] for o in store.list_objects(ids["gone"])]
    with pytest.raises(NotFoundError):
        store.get_mask(ids["gone"], 1, ids["second"])
    trash.restore(store, "object", ids["second"])
    assert store.rename_object(ids["gone"], ids["second"], "  lamp  post ")["category"] == "lamp post"
    assert {o["category"] for o in store.all_objects() if o["id"] == ids["second"]} == {"lamp post"}
    with pytest.raises(StoreError, match="empty"):
        store.rename_media(ids["video"], "  ")
    assert store.rename_media(ids["video"], "street.avi")["name"] == "street.avi"


def test_emptying_a_deleted_expression_keeps_the_others(project):
    studio, ids = project
    store = studio.store
    trash.delete(store, "expression", ids["gone"], by="ann")
    trash.empty(store)
    assert store._one("SELECT 1 AS x FROM objects WHERE id = ?", [ids["second"]]) is None
    assert store.get_mask(ids["keep"], 0).sum() == 100 and store.integrity_check() == "ok"
    assert trash.list_trash(store) == []


def test_adding_a_trashed_file_again_brings_it_back(project, video_path):
    studio, ids = project
    trash.delete(studio.store, "media", ids["video"], by="ann")
    again = studio.add_media(video_path)[0]
    assert again["id"] == ids["video"] and again["existing"]
    with ProjectStore(studio.store.path) as other:  # committed: another connection sees it
        assert len(other.list_expressions(ids["video"])) == 2


def test_demo_media_can_be_deleted_and_stay_deleted(tmp_path):
    studio = Studio(tmp_path / "p.sqlite")
    cli.seed_demo(studio)
    for media in studio.store.list_media():
        trash.delete(studio.store, "media", media["id"], by="ann")
    trash.empty(studio.store)
    cli.seed_demo(studio)  # the next start: they do not come back
    assert studio.store.list_media() == []
    studio.close()
    bare = Studio(tmp_path / "bare.sqlite")
    cli.seed_demo(bare, wanted=False)  # --no-demo
    cli.seed_demo(bare)  # a later start without the flag: still none
    assert bare.store.list_media() == []
    bare.close()


def launch(project, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "launch.py", "--project", str(project), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_renames_deletes_restores_and_refuses_unsafe_runs(project):
    studio, ids = project
    path = studio.store.path
    studio.close()
    assert launch(path, "media", "mv", str(ids["video"]), "street.avi").returncode == 0
    assert launch(path, "expressions", "edit", str(ids["keep"]), "the red  bxo").returncode == 0
    assert launch(path, "expressions", "rm", str(ids["gone"])).returncode == 0
    listed = launch(path, "trash", "list").stdout
    assert "expression" in listed and "the dark background" in listed
    refused = launch(path, "expressions", "status", str(ids["keep"]), "done")
    assert refused.returncode == 2 and "1-5" in refused.stderr and "--force" in refused.stderr
    ran = launch(path, "expressions", "segment", str(ids["keep"]), "--engine", "flowrvs-demo")
    assert ran.returncode == 0 and re.search(r"flowrvs-demo: .*kept 1 manual$", ran.stdout.strip()), ran.stdout
    assert launch(path, "expressions", "status", str(ids["keep"]), "done", "--force").returncode == 0
    run = launch(path, "expressions", "segment", str(ids["keep"]), "--engine", "flowrvs-demo")
    assert run.returncode == 2 and "--overwrite-manual" in run.stderr
    assert launch(path, "trash", "restore", "expression", str(ids["gone"])).returncode == 0
    listing = launch(path, "expressions", "list").stdout
    assert "the red bxo" in listing and "the dark background" in listing
    again = Studio(path)
    assert again.store.get_media(ids["video"])["name"] == "street.avi"
    assert again.store.get_expression(ids["keep"])["status"] == "done"
    assert again.store.mask_kinds(ids["keep"])[0] == "manual"
    assert again.store.get_mask(ids["keep"], 0).sum() == 100  # the stroke, untouched by the run
    again.close()


def test_api_renames_deletes_restores_and_refuses_unsafe_runs(tmp_path, video_path):
    app = LiveApp(tmp_path / "api.sqlite")
    try:
        client = Client(app.url, verbose=False)
        from gradio_client import handle_file
        media = client.predict(handle_file(video_path), api_name="/add_media")["media_id"]
        eid = client.predict(media, "the red bx", api_name="/add_expression")["expression_id"]
        assert client.predict(media, "street", api_name="/rename_media")["name"] == "street"
        revision = client.predict(eid, "the red box", None, api_name="/edit_expression")["revision"]
        assert revision == 1
        with pytest.raises(AppError, match="frames 0-5"):
            client.predict(eid, "done", False, None, api_name="/set_status")
        client.predict(eid, "done", True, None, api_name="/set_status")
        with pytest.raises(AppError, match="overwrite_manual=True"):
            client.predict(eid, "flowrvs-demo", False, api_name="/segment")
        gone = client.predict("expression", eid, api_name="/delete")
        assert gone["deleted_by"] == "api"
        assert [t["id"] for t in client.predict(api_name="/list_trash")] == [eid]
        with pytest.raises(AppError, match="in the trash"):
            client.predict(eid, "done", True, None, api_name="/set_status")
        client.predict("expression", eid, api_name="/restore")
        client.predict("media", media, api_name="/delete")
        assert client.predict(api_name="/empty_trash") == {"media": 1, "expression": 0, "object": 0}
    finally:
        app.stop()
    studio = Studio(tmp_path / "api.sqlite")
    assert studio.store.list_media() == [] and trash.list_trash(studio.store) == []
    studio.close()


def test_batch_evaluate_render_and_next_expression_ignore_the_trash(project):
    from app.commands import batch, evaluate
    from app.render import job as render_job
    from app.ui.session import Session
    studio, ids = project
    store = studio.store
    trash.delete(store, "expression", ids["gone"], by="ann")
    studio.store.set_status(ids["keep"], "done")
    fresh = store.add_expression(ids["video"], "the empty corner")["id"]
    todo, _ = batch.pending_expressions(store, "flowrvs-demo")
    assert [e["id"] for e in todo] == [fresh]
    targets, skipped = evaluate.select(store, "flowrvs-demo")
    assert ids["gone"] not in {t.expression["id"] for t in targets} | {s["id"] for s in skipped}
    _, rendered = render_job.plan_expressions(store, None, ids["video"])
    assert [e["id"] for e in rendered] == [ids["keep"], fresh]
    with pytest.raises(NotFoundError, match="in the trash"):
        render_job.plan_expressions(store, ids["gone"], None)
    tab = Session(studio)
    tab.pick_expression(ids["keep"])
    assert tab.next_expression() and tab.expression_id == ids["pic"]  # "gone" (in progress) comes first otherwise
    trash.delete(store, "media", ids["video"], by="ann")
    with pytest.raises(NotFoundError, match="its media is in the trash"):
        render_job.plan_expressions(store, fresh, None)
    assert batch.pending_expressions(store, "flowrvs-demo")[0] == []
