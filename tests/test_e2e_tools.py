"""Issue-5 workflow in real Chromium: box, propagation, negative click, undo, review."""
import re
import time

import numpy as np
from playwright.sync_api import expect

from app.frame_tools import mask_iou
from app.store import ProjectStore
from tests.page_fixtures import write_moving_square
from tests.test_e2e_browser import frame_loaded, page  # noqa: F401  (the browser fixture)


def click_image(tab, selector, x, y):
    """Click pixel (x, y) of an <img> shown with object-fit: contain."""
    img = tab.locator(selector)
    tab.wait_for_timeout(300)  # a new overlay may be arriving
    img.evaluate("i => i.complete && i.naturalWidth ? 1 : new Promise(r => i.addEventListener('load', r))")
    box = img.bounding_box()
    nw, nh = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    scale = min(box["width"] / nw, box["height"] / nh)
    ox, oy = (box["width"] - nw * scale) / 2, (box["height"] - nh * scale) / 2
    tab.mouse.click(box["x"] + ox + (x + 0.5) * scale, box["y"] + oy + (y + 0.5) * scale)


def wait_for(check, timeout=60):
    """Poll the project file until check() is true (the page shows results asynchronously)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the project to change"
        time.sleep(0.3)


def stored(app, frame):
    with ProjectStore(app.project) as store:
        eid = store.list_expressions()[0]["id"]
        return store.get_mask(eid, frame), store.mask_sources(eid)


def open_with_expression(tab, url, path, text):
    """Upload a media file on a fresh page and add an expression to it; its first frame shows."""
    tab.goto(url)
    tab.locator("#upload input[type=file]").set_input_files(str(path))
    expect(tab.locator("#media input")).to_have_value(re.compile(re.escape(path.name)), timeout=60_000)
    tab.locator("#new-expression textarea").fill(text)
    with frame_loaded(tab):
        tab.locator("#add-expression").click()
    # generous: with SAM 2 configured, the first frame shown also starts loading the model
    expect(tab.locator("#mask-info")).to_contain_text("mask: 0 px (empty)", timeout=30_000)


def test_box_propagate_click_undo_review(live_app, page, tmp_path):  # noqa: F811
    truth = write_moving_square(tmp_path / "square.avi", frames=12)
    open_with_expression(page, live_app.url, tmp_path / "square.avi", "the textured square")

    # Box: two corners on the overlay -> GrabCut mask, saved as manual.
    page.locator("#tool").get_by_text("Box", exact=True).click()
    click_image(page, "#preview img", 14, 28)
    expect(page.locator("#mask-info")).to_contain_text("1 point(s) placed")
    click_image(page, "#preview img", 54, 68)
    expect(page.locator("#mask-info")).to_contain_text("(manual)", timeout=20_000)
    mask0, _ = stored(live_app, 0)
    assert mask_iou(mask0, truth[0]) > 0.85

    # Propagate forward to the end: every later frame gets a propagated mask that follows the square.
    page.locator("#propagate-forward").click()
    wait_for(lambda: len(stored(live_app, 0)[1]) == 12)
    mask5, sources = stored(live_app, 5)
    assert sources[0] == "manual" and all(sources.get(f) == "propagated" for f in range(1, 12))
    assert mask_iou(mask5, truth[5]) > 0.8

    # A negative click inside the mask removes that part; Ctrl+Z brings it back.
    ys, xs = np.nonzero(mask0)
    x, y = int(xs.max()) - 2, int(ys.max()) - 2
    page.locator("#tool").get_by_text("Click −", exact=True).click()
    click_image(page, "#preview img", x, y)
    wait_for(lambda: not np.array_equal(stored(live_app, 0)[0], mask0))
    after, _ = stored(live_app, 0)
    assert not after[y, x] and after.sum() < mask0.sum()
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+z")
    expect(page.locator("#mask-info")).to_contain_text(f"mask: {int(mask0.sum())} px")
    assert np.array_equal(stored(live_app, 0)[0], mask0)

    # Review: done, then a reviewer walks done expressions and rejects with a comment.
    page.locator("#status-done").click()
    expect(page.locator("#expressions")).to_contain_text("[done]")
    page.locator("#review-mode input").check()
    page.locator("#next-expression").click()
    page.locator("#reject-comment textarea").fill("the right edge is loose")
    page.locator("#reject").click()
    expect(page.locator("#expressions")).to_contain_text("[in progress]")
    expect(page.locator("#mask-info")).to_contain_text("the right edge is loose")
    with ProjectStore(live_app.project) as store:
        expr = store.list_expressions()[0]
        assert expr["status"] == "in_progress"
        assert [n["text"] for n in store.notes(expr["id"])] == ["the right edge is loose"]
