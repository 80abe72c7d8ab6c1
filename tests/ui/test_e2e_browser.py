"""End to end in real Chromium: import, write an expression, paint on the canvas, reload,
step frames with the project's own keys, undo/redo, export."""
import json
import urllib.parse
import urllib.request

import numpy as np
from playwright.sync_api import expect
from pycocotools.coco import COCO

from app.masks.ops import paint
from app.project.store import ProjectStore
from bench import canvas_driver as drive
from tests.helpers.media_fixtures import write_video


def test_import_paint_reload_export(live_app, page, tmp_path):  # noqa: F811
    video = tmp_path / "walk.mp4"
    write_video(video, frames=8, size=(160, 120))
    page.goto(live_app.url)
    expect(page.locator("#mask-info")).to_contain_text("Add media")
    drive.upload(page, video)
    drive.add_expression(page, "the moving square")
    expect(page.locator("#expressions")).to_contain_text("the moving square")
    expect(page.locator("#mask-info")).to_contain_text("mask: 0 px (empty)")

    drive.zoom(page, 200)
    points = [(40, 60), (80, 70)]
    drive.edit(page, lambda: drive.drag(page, points))  # the stroke is saved when it ends
    painted = paint(np.zeros((120, 160), bool), points, 6, True)
    expect(page.locator("#mask-info")).to_contain_text(f"mask: {painted.sum()} px (manual)")
    assert np.array_equal(drive.stored(live_app)[0], painted)

    page.reload()
    drive.wait_shown(page, frame=0)
    # the first stroke moved it from to do to in progress
    expect(page.locator("#mask-info")).to_contain_text(f"the moving square · in progress · frame 0 · object 1 · "
                                                       f"mask: {painted.sum()} px (manual)")
    drive.zoom(page, 200)
    more = [(100, 20), (120, 40)]
    drive.edit(page, lambda: drive.drag(page, more))  # after a reload, a new stroke adds to the saved mask
    saved = paint(painted, more, 6, True)
    assert np.array_equal(drive.stored(live_app)[0], saved)

    page.locator("#left-column").get_by_text("Export, datasets in and out").click()
    page.locator("#export").click()
    link = page.locator("#export-file a").first
    expect(link).to_be_visible(timeout=30_000)
    data = urllib.request.urlopen(urllib.parse.urljoin(live_app.url, link.get_attribute("href"))).read()
    out = tmp_path / "export.json"
    out.write_bytes(data)
    coco = COCO(str(out))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 1 and anns[0]["iscrowd"] == 0
    assert np.array_equal(coco.annToMask(anns[0]).astype(bool), saved)
    refs = json.loads(data)["refs"]
    assert refs[0]["sentences"][0]["raw"] == "the moving square" and refs[0]["ann_ids"] == [anns[0]["id"]]


def test_keyboard_undo_redo_and_frames(live_app, page, tmp_path):  # noqa: F811
    video = tmp_path / "clip.avi"
    write_video(video, frames=5, size=(96, 64))
    with ProjectStore(live_app.project) as store:  # this project's own key for "next frame"
        store.set_setting("shortcuts", {"next_frame": "k"})
    page.goto(live_app.url)
    drive.upload(page, video)
    page.locator("#new-expression textarea").fill("the square")
    page.locator("#new-expression textarea").press("Enter")
    expect(page.locator("#mask-info")).to_contain_text("the square")
    drive.wait_shown(page, frame=0)

    points = [(20, 20), (60, 30)]
    drive.edit(page, lambda: drive.drag(page, points))
    painted = paint(np.zeros((64, 96), bool), points, 6, True)
    assert np.array_equal(drive.stored(live_app)[0], painted)
    drive.edit(page, lambda: drive.keys(page, "Control+z"))
    expect(page.locator("#mask-info")).to_contain_text("mask: 0 px (empty)")
    assert drive.stored(live_app)[0].sum() == 0
    drive.edit(page, lambda: drive.keys(page, "Control+Shift+Z"))
    expect(page.locator("#mask-info")).to_contain_text(f"mask: {painted.sum()} px (manual)")
    drive.keys(page, "k")
    drive.wait_shown(page, frame=1)
    expect(page.locator("#mask-info")).to_contain_text("frame 1 · object 1 · mask: 0 px")
    drive.keys(page, "ArrowLeft")
    drive.wait_shown(page, frame=0)
    expect(page.locator("#mask-info")).to_contain_text(f"frame 0 · object 1 · mask: {painted.sum()} px")
    page.locator("#status-done").click()  # frames 1-4 are empty: it asks first
    expect(page.locator("#confirm-text")).to_contain_text("4 of 5 frame(s) have no mask")
    page.locator("#confirm-done").click()
    expect(page.locator("#expressions")).to_contain_text("[done]")
    with ProjectStore(live_app.project) as store:
        assert store.list_expressions()[0]["status"] == "done"
