"""Issue 19, "nothing lost" and "rename and delete", in real Chromium: the overwrite rule and its
confirmation, status that moves and asks, and the trash; each checked in the project file."""
import json
import re

import numpy as np
from playwright.sync_api import expect

from app.studio.studio import Studio
from bench.canvas_driver import add_expression, drag, edit, keys, pick_engine, upload, zoom  # noqa: F401
from bench.live_app import LiveApp
from tests.helpers.media_fixtures import write_world_clip
from tests.helpers.page_fixtures import write_moving_square

FRAMES = 16


def disc(cx: int, r: int = 40) -> np.ndarray:
    yy, xx = np.mgrid[:270, :480]
    return (xx - cx) ** 2 + (yy - 135) ** 2 < r * r


def masks_of(project) -> tuple[list[np.ndarray], dict, str]:
    studio = Studio(project)
    try:
        eid = studio.store.list_expressions()[0]["id"]
        return ([studio.store.get_mask(eid, f) for f in range(FRAMES)], studio.store.mask_kinds(eid),
                studio.store.get_expression(eid)["status"])
    finally:
        studio.close()


def test_segment_on_a_done_expression_asks_and_keeps_the_annotators_frames(page, tmp_path):  # noqa: F811
    # The reported case on real footage: manual frames 0 and 12, 1-11 propagated, marked done.
    project = tmp_path / "world.sqlite"
    studio = Studio(project)
    media = studio.add_media(write_world_clip(tmp_path / "world16.avi", FRAMES))[0]
    eid = studio.store.add_expression(media["id"], "the globe")["id"]
    studio.store.save_mask(eid, 0, disc(200))
    studio.store.save_mask(eid, 12, disc(260))
    studio.propagate(eid, 0, "forward", count=11, method="dis")
    studio.set_status(eid, "done", force=True)
    studio.close()
    before, kinds, _ = masks_of(project)
    app = LiveApp(project)
    try:
        page.goto(app.url)
        expect(page.locator("#mask-info")).to_contain_text("the globe")
        pick_engine(page, "flowrvs-demo")  # not the default on real footage: chosen as a toy, explicitly
        page.locator("#segment").click()
        expect(page.locator("#confirm-text")).to_contain_text("marked done")
        expect(page.locator("#confirm-run")).to_be_visible()
        assert masks_of(project)[0][5].sum() == before[5].sum()  # nothing ran yet
        page.locator("#confirm-run").click()
        expect(page.get_by_text(re.compile("kept 2 manual, 11 propagated"))).to_be_visible(timeout=120_000)
        expect(page.locator("#confirm-text")).to_be_hidden()
        after, kinds_after, status = masks_of(project)
        for f in range(13):  # pixel for pixel, every frame the annotator made or propagated
            assert np.array_equal(before[f], after[f]), f
        assert [kinds_after[f] for f in range(13)] == ["manual"] + ["propagated"] * 11 + ["manual"]
        assert status == "done"
    finally:
        app.stop()


def test_first_stroke_sets_in_progress_and_done_asks_about_empty_frames(live_app, page, tmp_path):  # noqa: F811
    write_moving_square(tmp_path / "square.avi", frames=12)
    page.goto(live_app.url)
    upload(page, tmp_path / "square.avi")
    add_expression(page, "the textured square")
    expect(page.locator("#expressions")).to_contain_text("[to do]")
    zoom(page, 400)
    keys(page, "b")
    edit(page, lambda: drag(page, [(30, 40), (40, 50)]))
    expect(page.locator("#expressions")).to_contain_text("[in progress]")
    page.locator("#status-done").click()
    expect(page.locator("#confirm-text")).to_contain_text("11 of 12 frame(s) have no mask")
    expect(page.locator("#confirm-text")).to_contain_text("frames 1-11")
    expect(page.locator("#expressions")).to_contain_text("[in progress]")  # not yet
    page.locator("#confirm-done").click()
    expect(page.locator("#expressions")).to_contain_text("[done]")
    expect(page.locator("#confirm-text")).to_be_hidden()
    from app.project.store import ProjectStore
    with ProjectStore(live_app.project) as store:
        eid = store.list_expressions()[0]["id"]
        assert store.get_expression(eid)["status"] == "done" and store.empty_frames(eid) == list(range(1, 12))
        assert [h["action"] for h in store.history(eid)] == ["save frame 0", "status -> done"]


def test_rename_delete_restore_and_empty_the_trash(live_app, page, tmp_path, image_path):  # noqa: F811
    write_moving_square(tmp_path / "square.avi", frames=12)
    page.goto(live_app.url)
    upload(page, image_path)
    upload(page, tmp_path / "square.avi")
    add_expression(page, "the textured sqaure")
    zoom(page, 400)
    keys(page, "b")
    edit(page, lambda: drag(page, [(30, 40), (40, 50)]))
    page.locator("#manage").get_by_text("Rename, delete, trash").click()

    page.locator("#new-name textarea").fill("the textured square")
    page.locator("#rename-expression").click()
    expect(page.locator("#expressions")).to_contain_text("the textured square")
    page.locator("#new-name textarea").fill("moving square.avi")
    page.locator("#rename-media").click()
    expect(page.locator("#media input")).to_have_value(re.compile("moving square.avi"))

    page.locator("#delete-expression").click()
    expect(page.locator("#expressions")).not_to_contain_text("the textured square")
    page.locator("#trash-list input").click()
    page.get_by_role("option", name=re.compile("expression .*the textured square")).click()
    page.locator("#restore").click()
    expect(page.locator("#expressions")).to_contain_text("the textured square")

    page.locator("#delete-media").click()  # the video, with its expression
    expect(page.locator("#media input")).to_have_value(re.compile(image_path.name))
    from app.project.store import ProjectStore
    with ProjectStore(live_app.project) as store:
        assert [m["name"] for m in store.list_media()] == [image_path.name]
        video = store._one("SELECT * FROM media WHERE name = 'moving square.avi'")
        assert video["deleted_by"] == "page" and store.media_file(store.list_media()[0]["id"]).exists()
        masks = [(m["object_id"], m["frame"]) for m in store.iter_masks()]
        assert masks == []  # the video's stroke is in the trash with it
        video_file = store.media_dir / video["path"]
    assert video_file.exists()
    page.locator("#empty-trash").click()
    expect(page.locator("#confirm-text")).to_contain_text("1 item(s) in the trash")
    page.locator("#confirm-empty").click()
    expect(page.locator("#confirm-text")).to_be_hidden()
    expect(page.get_by_text(re.compile("Emptied the trash"))).to_be_visible()
    assert not video_file.exists()
    page.get_by_text("Export, datasets in and out").click()
    page.locator("#export").click()
    with ProjectStore(live_app.project) as store:
        assert store._rows("SELECT id FROM media") == [{"id": store.list_media()[0]["id"]}]
    export = live_app.project.with_name(live_app.project.stem + "_coco.json")
    from bench.canvas_driver import wait_for
    wait_for(export.exists)
    data = json.loads(export.read_text())
    assert [i["file_name"] for i in data["images"]] == [image_path.name] and data["annotations"] == []
