"""Issue 19 on the canvas, in real Chromium: bursts of strokes, Ctrl+Z and button clicks all
reach the store in order; the Points tool's clicks stay drawn; Play / Space plays and pauses;
the timeline zooms with the wheel and its marks can be clicked. Stored masks are checked pixel
for pixel."""
import json

import cv2
import numpy as np
from playwright.sync_api import expect

from app.masks.frame_tools import box_to_mask, refine_with_clicks
from app.masks.ops import paint
from app.media.files import FrameReader
from app.project.store import ProjectStore
from bench.canvas_driver import (  # noqa: F401
    add_expression,
    at,
    drag,
    edit,
    keys,
    shown,
    stored,
    tool,
    upload,
    view,
    wait_for,
    wait_shown,
    zoom,
)
from tests.helpers.media_fixtures import GRADIO_VIDEOS

WORLD = GRADIO_VIDEOS / "world.mp4"  # 901 frames, 480x270
CHEETAH = GRADIO_VIDEOS.parent / "images" / "cheetah.jpg"  # 502x343


def strokes(n):
    """n short vertical strokes, far enough apart not to touch (radius 6)."""
    return [[(20 + 25 * i, 20), (20 + 25 * i, 50)] for i in range(n)]


def test_bursts_of_strokes_undo_and_redo_all_reach_the_store(live_app, page, tmp_path):  # noqa: F811
    image = np.random.default_rng(0).integers(0, 255, (120, 200, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noise.png"), image)
    page.goto(live_app.url)
    upload(page, tmp_path / "noise.png")
    add_expression(page, "six strokes")
    zoom(page, 200)
    base = int(shown(page)["revision"])
    drawn = strokes(6)
    expected = [np.zeros((120, 200), bool)]
    for points in drawn:
        expected.append(paint(expected[-1], points, 6, True))

    for points in drawn:  # six strokes, no waiting between them
        drag(page, points)
    wait_shown(page, revision=base + 6)
    assert np.array_equal(stored(live_app)[0], expected[6])

    keys(page, *["Control+z"] * 6)  # six Ctrl+Z within a few ms: six undos
    wait_shown(page, revision=base + 12)
    assert not stored(live_app)[0].any()

    burst = "([id, n]) => { for (let i = 0; i < n; i++) document.getElementById(id).click(); }"
    page.evaluate(burst, ["redo", 4])  # four clicks in one task: four redos
    wait_shown(page, revision=base + 16)
    assert np.array_equal(stored(live_app)[0], expected[4])
    page.evaluate(burst, ["undo", 2])
    wait_shown(page, revision=base + 18)
    assert np.array_equal(stored(live_app)[0], expected[2])
    expect(page.locator("#mask-info")).to_contain_text(f"mask: {int(expected[2].sum())} px")
    # A correction queued behind a stroke applies to the stroke's result.
    drag(page, [(150, 80), (170, 80)])
    page.locator("#clear").click()
    wait_shown(page, revision=base + 20)
    assert not stored(live_app)[0].any()


def test_clicks_on_the_cheetah_grow_or_shrink_and_stay_drawn(live_app, page):  # noqa: F811
    """Without SAM (GrabCut): + clicks near the nose only add to the head, a - click on the
    background changes nothing; each stored mask is what frame_tools gives, pixel for pixel."""
    page.goto(live_app.url)
    upload(page, CHEETAH)
    add_expression(page, "the cheetah's head")
    with ProjectStore(live_app.project) as store:
        image = FrameReader(store.media_file(store.list_media()[0]["id"]), "image").read(0)
    zoom(page, 200)
    tool(page, "box")
    edit(page, lambda: drag(page, [(338, 115), (379, 161)]))
    head = box_to_mask(image, (338, 115, 380, 162))
    assert np.array_equal(stored(live_app)[0], head)
    keys(page, "t")
    masks = [head]
    for click in [(370, 148), (374, 150)]:  # the collapse: a second + click near the nose
        answer(page, lambda c=click: page.mouse.click(*at(page, *c)))
        masks.append(refine_with_clicks(image, masks[-1], [click], []))
        assert np.array_equal(stored(live_app)[0], masks[-1])
        assert not (masks[-2] & ~masks[-1]).any() and masks[-1][click[1], click[0]]
    page.keyboard.down("Shift")
    answer(page, lambda: page.mouse.click(*at(page, 420, 150)))  # - on the background: changes nothing
    page.keyboard.up("Shift")
    assert np.array_equal(stored(live_app)[0], masks[-1])
    clicks = json.loads(page.locator("#canvas [data-clicks]").get_attribute("data-clicks"))
    assert [(c["x"], c["y"], c["sign"]) for c in clicks] == [(370, 148, 1), (374, 150, 1), (420, 150, -1)]
    assert ui_pixel(page, 370, 148)[1] > 150 and ui_pixel(page, 420, 150)[0] > 150  # green, red
    page.locator("#add-object").click()  # another object: its clicks start afresh
    expect(page.locator("#canvas [data-clicks]")).to_have_attribute("data-clicks", "[]")
    assert ui_pixel(page, 370, 148)[3] == 0


def answer(page, action) -> None:
    """Run an edit and wait for the server's answer (also when it changes nothing)."""
    before = int(page.locator("#canvas [data-drawn]").get_attribute("data-answered") or 0)
    action()
    expect(page.locator("#canvas [data-drawn]")).to_have_attribute("data-answered", str(before + 1))


def ui_pixel(page, x, y):
    """RGBA of the canvas's top layer (tools, clicks) at image pixel (x, y)."""
    sx, sy = at(page, x, y)
    box = view(page)["box"]
    return page.locator("#canvas .fl-ui").evaluate(
        """(c, [x, y]) => { const d = window.devicePixelRatio || 1;
            return Array.from(c.getContext('2d').getImageData(Math.floor(x * d), Math.floor(y * d), 1, 1).data); }""",
        [sx - box["x"], sy - box["y"]])


def frame_now(page) -> int:
    return int(shown(page)["frame"])


def test_play_pause_space_and_timeline_zoom_on_world_mp4(live_app, page):  # noqa: F811
    page.goto(live_app.url)
    upload(page, WORLD)
    add_expression(page, "the globe")
    # Play advances frames; Pause stops them and the server follows to the frame on screen.
    page.locator("#play").click()
    page.wait_for_function("() => +document.querySelector('#canvas [data-drawn]').dataset.frame >= 15")
    page.locator("#play").click()
    stopped = frame_now(page)
    page.wait_for_timeout(600)
    assert frame_now(page) == stopped and stopped >= 15
    play = json.loads(page.locator("#canvas [data-play]").get_attribute("data-play"))
    with ProjectStore(live_app.project) as store:
        assert not play["on"] and play["fps"] == store.list_media()[0]["fps"] and len(play["times"]) >= 15
    keys(page, "b")
    edit(page, lambda: drag(page, [(200, 100), (230, 110)]))
    mask, sources = stored(live_app, stopped)
    assert np.array_equal(mask, paint(np.zeros((270, 480), bool), [(200, 100), (230, 110)], 6, True))
    assert sources == {stopped: "manual"}

    # Space tapped plays and pauses; Space held with a drag pans and does not play.
    keys(page, " ")
    page.wait_for_function(f"() => +document.querySelector('#canvas [data-drawn]').dataset.frame >= {stopped + 5}")
    keys(page, " ")
    paused = frame_now(page)
    page.wait_for_timeout(400)
    assert frame_now(page) == paused
    before = view(page)
    page.keyboard.down(" ")
    drag(page, [(100, 100), (140, 120)])
    page.keyboard.up(" ")
    assert view(page)["ox"] != before["ox"]
    page.wait_for_timeout(400)
    assert frame_now(page) == paused
    # At 0.25x a frame is shown no sooner than four of the video's frame times after the last.
    page.locator("#play-speed").select_option("0.25")
    keys(page, " ")
    page.wait_for_function("() => JSON.parse(document.querySelector('#canvas [data-play]').dataset.play)"
                           ".times.length >= 4")
    keys(page, " ")
    play = json.loads(page.locator("#canvas [data-play]").get_attribute("data-play"))
    assert play["speed"] == 0.25 and frame_now(page) - paused >= 4
    assert min(np.diff(play["times"])) >= 4 * 1000 / play["fps"] - 5

    # The wheel zooms the timeline around the pointer; a click on a zoomed frame lands on it.
    tl = page.locator("#canvas .fl-timeline").bounding_box()
    y = tl["y"] + tl["height"] * 0.7
    x450 = tl["x"] + tl["width"] * 450.5 / 901
    page.mouse.move(x450, y)
    for _ in range(5):
        page.mouse.wheel(0, -300)
    zoomed = json.loads(page.locator("#canvas .fl-timeline").get_attribute("data-view"))
    assert zoomed["span"] < 100
    assert zoomed["start"] <= 450 < zoomed["start"] + zoomed["span"]
    px = tl["width"] / zoomed["span"]
    x460 = tl["x"] + (460.5 - zoomed["start"]) * px
    page.mouse.click(x460, y)
    wait_shown(page, frame=460)
    edit(page, lambda: drag(page, [(50, 50), (60, 60)]))  # frame 460 becomes a manual mark
    # Zoomed out again, a manual frame is about 1 px: a click 2 px beside it lands on it.
    page.mouse.move(x450, y)
    for _ in range(10):
        page.mouse.wheel(0, 300)
    full = json.loads(page.locator("#canvas .fl-timeline").get_attribute("data-view"))
    assert full == {"start": 0, "span": 901}
    page.mouse.click(tl["x"] + 5, y)
    wait_shown(page, frame=frame_at(tl, 5))
    page.mouse.click(tl["x"] + tl["width"] * 460.5 / 901 + 2, y)
    wait_shown(page, frame=460)


def frame_at(tl, dx) -> int:
    return int(dx / tl["width"] * 901)


def test_shortcuts_panel_rebinds_refuses_conflicts_and_resets(live_app, page, tmp_path):  # noqa: F811
    cv2.imwrite(str(tmp_path / "noise.png"), np.random.default_rng(2).integers(0, 255, (60, 80, 3), dtype=np.uint8))
    page.goto(live_app.url)
    upload(page, tmp_path / "noise.png")
    add_expression(page, "anything")
    page.get_by_role("button", name="Shortcuts").click()
    key = lambda action: page.locator(f"#shortcuts-editor [data-action={action}] .fl-key")  # noqa: E731
    expect(key("tool_box")).to_have_text("r")

    def setting():
        with ProjectStore(live_app.project) as store:
            return store.get_setting("shortcuts", {})

    key("tool_box").click()
    expect(key("tool_box")).to_have_text("press a key…")
    page.keyboard.press("x")
    expect(key("tool_box")).to_have_text("x")
    wait_for(lambda: setting() == {"tool_box": "x"}, timeout=20)
    key("tool_eraser").click()  # "x" is the box's now: refused, nothing saved
    page.keyboard.press("x")
    expect(page.locator("#shortcuts-editor .fl-keys-msg")).to_contain_text('"x" is already the key of Box')
    expect(key("tool_eraser")).to_have_text("e")
    assert setting() == {"tool_box": "x"}
    keys(page, "x")  # the new key works at once
    expect(page.locator("#tool-box")).to_have_class("fl-on")
    page.locator("#shortcuts-reset").click()
    expect(key("tool_box")).to_have_text("r")
    wait_for(lambda: setting() == {}, timeout=20)
    keys(page, "b", "r")
    expect(page.locator("#tool-box")).to_have_class("fl-on")

