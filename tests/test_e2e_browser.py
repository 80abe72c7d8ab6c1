"""End to end in real Chromium: import, write an expression, paint, reload, export."""
import json
import re
import time
import urllib.parse
import urllib.request

import cv2
import numpy as np
import pytest
from playwright.sync_api import expect, sync_playwright
from pycocotools.coco import COCO

from app.media import FrameReader
from app.overlay import render_overlay
from app.store import ProjectStore
from app.ui_handlers import MASK_RGB
from tests.media_fixtures import write_video

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


@pytest.fixture
def page():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        yield page
        browser.close()


def mask_px(page) -> int:
    text = page.locator("#mask-info").inner_text()
    found = re.search(r"mask: (\d+) px", text)
    return int(found.group(1)) if found else -1


def frame_loaded(page):
    """Context: the action inside shows a new frame; wait until the browser has fetched it (a
    stroke painted before the editor holds its image is wiped by the image's arrival)."""
    return page.expect_response(lambda r: "/file=" in r.url and r.url.endswith(".jpg"))


def paint_stroke(page, dy=0):
    """Drag the brush across the middle of the editor's canvas (dy pixels lower)."""
    box = page.locator("#editor canvas").first.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2 + dy
    page.wait_for_timeout(500)  # the canvas draws the fetched image on its next frames
    page.mouse.move(cx - 40, cy)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(cx - 40 + 4 * i, cy + i)
    page.mouse.up()



def test_import_paint_reload_export(live_app, page, tmp_path):
    video = tmp_path / "walk.mp4"
    write_video(video, frames=8, size=(160, 120))
    page.goto(live_app.url)
    expect(page.locator("#mask-info")).to_contain_text("Add media")

    page.locator("#upload input[type=file]").set_input_files(str(video))
    expect(page.locator("#media input")).to_have_value(re.compile("walk.mp4"), timeout=60_000)
    page.locator("#new-expression textarea").fill("the moving square")
    with frame_loaded(page):
        page.locator("#add-expression").click()
    expect(page.locator("#expressions")).to_contain_text("the moving square")
    expect(page.locator("#mask-info")).to_contain_text("mask: 0 px (empty)")

    paint_stroke(page)  # autosave fires when the stroke ends
    expect(page.locator("#mask-info")).to_contain_text("(manual)", timeout=20_000)
    painted = mask_px(page)
    assert painted > 50

    with ProjectStore(live_app.project) as store:  # the server's file, read independently
        expr = store.list_expressions()[0]
        saved = store.get_mask(expr["id"], 0)
    assert saved.sum() == painted and saved.shape == (120, 160)

    with frame_loaded(page):
        page.reload()
    expect(page.locator("#mask-info")).to_contain_text("the moving square")
    expect(page.locator("#mask-info")).to_contain_text(f"mask: {painted} px (manual)")
    paint_stroke(page, dy=25)  # after a reload, a new stroke adds to the saved mask
    expect(page.locator("#mask-info")).not_to_contain_text(f"mask: {painted} px", timeout=20_000)
    with ProjectStore(live_app.project) as store:
        grown = store.get_mask(expr["id"], 0)
    assert grown.sum() > painted and np.array_equal(grown & saved, saved)
    saved = grown
    # The overlay preview the browser shows is the frame with this mask drawn over it.
    src = page.locator("#preview img").get_attribute("src")
    shown = cv2.imdecode(np.frombuffer(urllib.request.urlopen(urllib.parse.urljoin(live_app.url, src)).read(),
                                       np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]
    with ProjectStore(live_app.project) as store:
        frame = FrameReader(store.media_file(expr["media_id"]), "video").read(0)
    expected = render_overlay(frame, saved, opacity=0.5, color=MASK_RGB)
    # Display frames travel as quality-95 JPEG: close to the exact render, far from the bare frame.
    assert np.abs(shown.astype(int) - expected).mean() < 3
    assert np.abs(shown.astype(int) - frame).mean() > np.abs(shown.astype(int) - expected).mean() + 1

    page.locator("#export").click()
    link = page.locator("#export-file a").first
    expect(link).to_be_visible(timeout=30_000)
    href = link.get_attribute("href")
    data = urllib.request.urlopen(urllib.parse.urljoin(live_app.url, href)).read()
    out = tmp_path / "export.json"
    out.write_bytes(data)
    coco = COCO(str(out))
    anns = coco.loadAnns(coco.getAnnIds())
    assert len(anns) == 1 and anns[0]["iscrowd"] == 0
    assert np.array_equal(coco.annToMask(anns[0]).astype(bool), saved)
    refs = json.loads(data)["refs"]
    assert refs[0]["sentences"][0]["raw"] == "the moving square" and refs[0]["ann_ids"] == [anns[0]["id"]]


def test_keyboard_undo_redo_and_frames(live_app, page, tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, frames=5, size=(96, 64))
    with ProjectStore(live_app.project) as store:  # this project's own key for "next frame"
        store.set_setting("shortcuts", {"next_frame": "k"})
    page.goto(live_app.url)
    page.locator("#upload input[type=file]").set_input_files(str(video))
    expect(page.locator("#media input")).to_have_value(re.compile("clip.avi"), timeout=60_000)
    page.locator("#new-expression textarea").fill("the square")
    with frame_loaded(page):
        page.locator("#new-expression textarea").press("Enter")
    expect(page.locator("#mask-info")).to_contain_text("the square")

    paint_stroke(page)
    expect(page.locator("#mask-info")).to_contain_text("(manual)", timeout=20_000)
    painted = mask_px(page)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+z")
    expect(page.locator("#mask-info")).to_contain_text("mask: 0 px (empty)")
    page.keyboard.press("Control+Shift+Z")
    expect(page.locator("#mask-info")).to_contain_text(f"mask: {painted} px (manual)")
    page.keyboard.press("k")
    expect(page.locator("#mask-info")).to_contain_text("frame 1 · object 1 · mask: 0 px")
    page.keyboard.press("ArrowLeft")
    expect(page.locator("#mask-info")).to_contain_text(f"frame 0 · object 1 · mask: {painted} px")
    page.locator("#status-done").click()
    expect(page.locator("#expressions")).to_contain_text("[done]")
    time.sleep(0.5)
    with ProjectStore(live_app.project) as store:
        assert store.list_expressions()[0]["status"] == "done"
