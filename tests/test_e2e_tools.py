"""Issue-5 workflow in real Chromium, on the canvas: box, propagation along the timeline, a
negative click, undo, review."""
import numpy as np
from playwright.sync_api import expect

from app.frame_tools import mask_iou
from app.store import ProjectStore
from bench.canvas_driver import (  # noqa: F401
    add_expression,
    at,
    drag,
    edit,
    keys,
    stored,
    tool,
    upload,
    wait_shown,
    zoom,
)
from tests.page_fixtures import write_moving_square


def test_box_propagate_click_undo_review(live_app, page, tmp_path):  # noqa: F811
    truth = write_moving_square(tmp_path / "square.avi", frames=12)
    page.goto(live_app.url)
    upload(page, tmp_path / "square.avi")
    add_expression(page, "the textured square")
    zoom(page, 400)

    tool(page, "box")  # a box dragged on the canvas -> GrabCut mask, saved as manual
    edit(page, lambda: drag(page, [(14, 28), (53, 67)]))
    expect(page.locator("#mask-info")).to_contain_text("(manual)")
    mask0, _ = stored(live_app, 0)
    assert mask_iou(mask0, truth[0]) > 0.85

    # Propagate forward to the end: every later frame gets a propagated mask that follows the square.
    edit(page, lambda: page.locator("#propagate-forward").click())
    mask5, sources = stored(live_app, 5)
    assert sources[0] == "manual" and all(sources.get(f) == "propagated" for f in range(1, 12))
    assert mask_iou(mask5, truth[5]) > 0.8
    # The timeline is the way to a frame: a click on frame 5's cell shows frame 5.
    cells = page.locator("#canvas .fl-timeline").bounding_box()
    page.mouse.click(cells["x"] + cells["width"] * 5.5 / 12, cells["y"] + cells["height"] / 2)
    wait_shown(page, frame=5)
    expect(page.locator("#mask-info")).to_contain_text(f"frame 5 · object 1 · mask: {mask5.sum()} px (propagated)")
    keys(page, "ArrowLeft", "ArrowLeft", "ArrowLeft", "ArrowLeft", "ArrowLeft")
    wait_shown(page, frame=0)

    # A negative click inside the mask removes that part; Ctrl+Z brings it back.
    ys, xs = np.nonzero(mask0)
    x, y = int(xs.max()) - 2, int(ys.max()) - 2
    keys(page, "t")
    page.keyboard.down("Shift")
    edit(page, lambda: page.mouse.click(*at(page, x, y)))
    page.keyboard.up("Shift")
    after, _ = stored(live_app, 0)
    assert not after[y, x] and after.sum() < mask0.sum()
    edit(page, lambda: keys(page, "Control+z"))
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
