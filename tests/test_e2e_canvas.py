"""The canvas in real Chromium: every tool at 100% and 400% zoom, pan, resize, objects in their
own colours, undo/redo, and view controls that never ask the server. Each edit is checked
against the stored mask pixel for pixel: the expected mask is computed here from the same
pixels the pointer was on, with the same functions the studio uses."""
import numpy as np
import pytest
from playwright.sync_api import expect

from app.frame_tools import box_to_mask, polygon_to_mask, refine_with_clicks
from app.mask_ops import paint
from app.media import FrameReader
from app.store import ProjectStore
from bench.canvas_driver import (  # noqa: F401
    add_expression,
    at,
    canvas_pixel,
    drag,
    edit,
    keys,
    shown,
    stored,
    tool,
    upload,
    view,
    wait_shown,
    zoom,
)
from tests.page_fixtures import write_moving_square


def open_square(live_app, page, tmp_path):  # noqa: F811
    write_moving_square(tmp_path / "square.avi", frames=12)
    page.goto(live_app.url)
    upload(page, tmp_path / "square.avi")
    add_expression(page, "the textured square")
    with ProjectStore(live_app.project) as store:
        return FrameReader(store.media_file(store.list_media()[0]["id"]), "video").read(0)


def check(app, expected, object_id=None):
    mask, sources = stored(app, object_id=object_id)
    assert mask.sum() > 0 and np.array_equal(mask, expected), (int(mask.sum()), int(expected.sum()))
    assert sources.get(0) == "manual"


@pytest.mark.parametrize("percent", [100, 400])
def test_every_tool_lands_on_the_pixels_under_the_pointer(live_app, page, tmp_path, percent):  # noqa: F811
    image = open_square(live_app, page, tmp_path)
    zoom(page, percent)

    tool(page, "box")  # drag corner to corner: the box covers both corner pixels
    edit(page, lambda: drag(page, [(14, 28), (30, 45), (53, 67)]))
    expected = box_to_mask(image, (14, 28, 54, 68))
    check(live_app, expected)

    keys(page, "b", "[", "[")  # brush, two sizes smaller: radius 4
    expect(page.locator("#canvas .fl-size-label")).to_have_text("4 px")
    points = [(70, 10), (90, 21), (101, 12)]
    edit(page, lambda: drag(page, points))
    expected = paint(expected, points, 4, True)
    check(live_app, expected)

    keys(page, "e")  # eraser
    points = [(20, 30), (41, 52)]
    edit(page, lambda: drag(page, points))
    expected = paint(expected, points, 4, False)
    check(live_app, expected)

    keys(page, "t")  # points: Shift+click is negative, a plain click positive
    page.keyboard.down("Shift")
    edit(page, lambda: page.mouse.click(*at(page, 45, 60)))
    page.keyboard.up("Shift")
    expected = refine_with_clicks(image, expected, [], [(45, 60)])
    check(live_app, expected)
    edit(page, lambda: page.mouse.click(*at(page, 110, 80)))
    expected = refine_with_clicks(image, expected, [(110, 80)], [])
    check(live_app, expected)

    keys(page, "g")  # polygon: click the vertices, Enter closes it
    vertices = [(5, 70), (30, 72), (12, 94)]
    for v in vertices:
        page.mouse.click(*at(page, *v))
    edit(page, lambda: page.keyboard.press("Enter"))
    expected = expected | polygon_to_mask(expected.shape, vertices)
    check(live_app, expected)
    vertices = [(100, 40), (126, 44), (118, 60)]  # ... or a double-click on the last vertex
    for v in vertices[:-1]:
        page.mouse.click(*at(page, *v))
    edit(page, lambda: page.mouse.dblclick(*at(page, *vertices[-1])))
    expected = expected | polygon_to_mask(expected.shape, vertices)
    check(live_app, expected)

    page.mouse.move(*at(page, 100, 41))  # hover: the pixel and what is under it
    expect(page.locator("#canvas .fl-hover")).to_have_text(
        f"x 100, y 41 · {'object 1' if expected[41, 100] else 'background'}")


def test_pan_and_resize_keep_pixels_exact(live_app, page, tmp_path):  # noqa: F811
    open_square(live_app, page, tmp_path)
    zoom(page, 400)
    tool(page, "brush")
    before = view(page)
    x, y = at(page, 64, 48)
    page.mouse.move(x, y)
    page.keyboard.down(" ")  # space + drag pans by exactly the drag
    page.mouse.down()
    page.mouse.move(x - 100, y - 60, steps=4)
    page.mouse.up()
    page.keyboard.up(" ")
    after = view(page)
    assert (after["ox"], after["oy"]) == pytest.approx((before["ox"] - 100, before["oy"] - 60))
    assert stored(live_app)[0].sum() == 0  # panning painted nothing
    page.mouse.move(x, y)  # the middle button pans too
    page.mouse.down(button="middle")
    page.mouse.move(x + 40, y + 20, steps=2)
    page.mouse.up(button="middle")
    assert view(page)["ox"] == pytest.approx(after["ox"] + 40)

    points = [(60, 40), (75, 52)]
    edit(page, lambda: drag(page, points))
    expected = paint(np.zeros((96, 128), bool), points, 6, True)
    check(live_app, expected)

    wide = view(page)["box"]["width"]
    assert wide >= 0.6 * 1600  # the canvas takes most of the window
    page.set_viewport_size({"width": 1100, "height": 800})
    page.wait_for_function("w => document.querySelector('#canvas .fl-stage').getBoundingClientRect().width < w",
                           arg=wide)
    assert view(page)["box"]["width"] >= 0.6 * 1100
    points = [(10, 80), (30, 90)]
    edit(page, lambda: drag(page, points))
    expected = paint(expected, points, 6, True)
    check(live_app, expected)
    keys(page, "0")  # fit: the whole frame in view
    v = view(page)
    assert v["ox"] >= -1e-6 and v["oy"] >= -1e-6 and v["ox"] + 128 * v["scale"] <= v["box"]["width"] + 1e-6


def test_objects_colours_legend_and_undo_redo(live_app, page, tmp_path):  # noqa: F811
    image = open_square(live_app, page, tmp_path)
    zoom(page, 400)
    tool(page, "brush")
    first = [(20, 20), (40, 20)]
    edit(page, lambda: drag(page, first))
    mask1 = paint(np.zeros((96, 128), bool), first, 6, True)
    page.locator("#add-object").click()
    expect(page.locator("#canvas .fl-object")).to_have_count(2)
    expect(page.locator("#mask-info")).to_contain_text("object 2 · mask: 0 px")
    second = [(80, 70), (100, 70)]
    edit(page, lambda: drag(page, second))
    mask2 = paint(np.zeros((96, 128), bool), second, 6, True)
    with ProjectStore(live_app.project) as store:
        eid = store.list_expressions()[0]["id"]
        objects = [o["id"] for o in store.list_objects(eid)]
    check(live_app, mask1, objects[0])
    check(live_app, mask2, objects[1])

    # Each object in its own colour: the active one at the chosen opacity, the other fainter.
    def tinted(x, y, color, alpha):
        return np.abs(np.array(canvas_pixel(page, x, y)) - (image[y, x] * (1 - alpha) + np.array(color) * alpha))
    assert tinted(90, 70, (255, 212, 0), 0.5).max() < 20      # object 2 (active): yellow
    assert tinted(30, 20, (255, 0, 255), 0.3).max() < 20      # object 1: magenta
    page.locator("#canvas .fl-object").first.click()          # the legend picks the active object
    expect(page.locator("#mask-info")).to_contain_text(f"object 1 · mask: {mask1.sum()} px")
    assert tinted(30, 20, (255, 0, 255), 0.5).max() < 20

    edit(page, lambda: keys(page, "Control+z"))  # undo the second object's stroke (a new revision)
    assert stored(live_app, object_id=objects[1])[0].sum() == 0
    check(live_app, mask1, objects[0])
    edit(page, lambda: keys(page, "Control+Shift+Z"))
    check(live_app, mask2, objects[1])


def test_view_controls_change_the_canvas_without_a_request(live_app, page, tmp_path):  # noqa: F811
    image = open_square(live_app, page, tmp_path)
    zoom(page, 400)
    tool(page, "brush")
    edit(page, lambda: drag(page, [(30, 40), (50, 40)]))
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    tinted = canvas_pixel(page, 40, 40)
    keys(page, "o")                                            # overlay off: the bare frame
    assert np.abs(np.array(canvas_pixel(page, 40, 40)) - image[40, 40]).max() < 16
    keys(page, "o", "l")                                       # outline only: the inside is bare too
    assert np.abs(np.array(canvas_pixel(page, 40, 40)) - image[40, 40]).max() < 16
    assert canvas_pixel(page, 40, 34) == [255, 0, 255]         # ... and the boundary is drawn solid
    keys(page, "l")
    page.locator("#canvas-opacity").evaluate("e => { e.value = 1; e.dispatchEvent(new Event('input')); }")
    assert canvas_pixel(page, 40, 40) == [255, 0, 255] != tinted
    keys(page, "c")                                            # compare: nothing to compare yet, no request
    assert requests == []
