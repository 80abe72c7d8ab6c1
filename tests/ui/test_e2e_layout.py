"""Nothing hidden, in real Chromium at 1600x1000 and at 1366x768, on Gradio's world.mp4 and
cheetah.jpg: every control of the annotate loop lies inside the window, clear of the canvas,
without scrolling; Propagate leaves the page where it was; messages cover no control and say
each thing once; the toy engines are not the default on real media."""
import re
import shutil
from pathlib import Path

import gradio
import numpy as np
import pytest
from playwright.sync_api import expect

from app.project.store import ProjectStore
from app.studio.studio import Studio
from bench.canvas_driver import pick_engine, wait_for, wait_shown
from bench.live_app import LiveApp

ASSETS = Path(gradio.__file__).parent / "media_assets"
SIZES = [(1600, 1000), (1366, 768)]
# The annotate loop: tools, frame steps, segment, status and review, next expression, undo/redo.
LOOP = ["#tool-brush", "#tool-eraser", "#tool-box", "#tool-points", "#tool-polygon", "#tool-pan", "#segment",
        "#cancel", "#status-todo", "#status-in_progress", "#status-done", "#status-reviewed", "#reject",
        "#reject-comment", "#review-mode", "#next-expression", "#undo", "#redo", "#save"]
VIDEO_LOOP = ["#prev-frame", "#next-frame", "#propagate-backward", "#propagate-forward", "#propagate-count",
              "#next-to-check"]
# What a message must not lie on: every control the page shows.
CONTROLS = "button, input, textarea, select, label, [role=button], [role=listbox], .fl-timeline"


@pytest.fixture
def app(tmp_path):
    """world.mp4 with a box mask on frame 0, cheetah.jpg; an expression on each."""
    project = tmp_path / "real.sqlite"
    studio = Studio(project)
    world = studio.add_media(ASSETS / "videos" / "world.mp4")[0]
    cheetah = studio.add_media(ASSETS / "images" / "cheetah.jpg")[0]
    eid = studio.store.add_expression(world["id"], "the planet")["id"]
    studio.store.add_expression(cheetah["id"], "the cheetah")
    studio.apply_tool(eid, 0, "box", [[118, 14], [362, 256]])
    studio.store.set_setting("last_expression", eid)
    studio.close()
    live = LiveApp(project)
    yield live
    live.stop()


def box(page, selector: str) -> dict:
    found = page.locator(selector)
    expect(found.first).to_be_visible()
    return found.first.bounding_box()


def overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and
            a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"])


def assert_in_view(page, selectors: list[str]) -> None:
    """Each control inside the window as it is (nothing scrolled) and clear of the canvas."""
    width, height = page.viewport_size["width"], page.viewport_size["height"]
    assert page.evaluate("() => [window.scrollX, window.scrollY]") == [0, 0]
    stage = box(page, "#canvas .fl-stage")
    assert stage["y"] >= 0 and stage["y"] + stage["height"] <= height and stage["height"] >= 220
    for selector in selectors:
        b = box(page, selector)
        inside = b["x"] >= 0 and b["y"] >= 0 and b["x"] + b["width"] <= width and b["y"] + b["height"] <= height
        assert inside, f"{selector} at {b} is not inside the {width}x{height} window"
        assert not overlaps(b, stage), f"{selector} at {b} lies on the canvas {stage}"


def open_media(page, name: str) -> None:
    page.locator("#media input").click()
    page.get_by_role("option", name=re.compile(f"^{re.escape(name)}")).first.click()
    expect(page.locator("#media input")).to_have_value(re.compile(f"^{re.escape(name)}"), timeout=30_000)


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_everything_in_view_and_propagate_keeps_the_canvas(app, page, size, tmp_path):
    """world.mp4, Propagate, then cheetah.jpg with the candidates of a toy run, then back."""
    page.set_viewport_size({"width": size[0], "height": size[1]})
    page.goto(app.url)
    wait_shown(page, frame=0)
    expect(page.locator("#mask-info")).to_contain_text("the planet")
    assert_in_view(page, LOOP + VIDEO_LOOP)

    # Propagate 3 frames: the page stays put, and the stored masks are exactly what the studio
    # computes from a copy of the project taken before the click.
    copy = tmp_path / "twin" / "copy.sqlite"
    copy.parent.mkdir()
    shutil.copy(app.project, copy)
    shutil.copytree(app.project.with_name(app.project.stem + "_media"), copy.with_name("copy_media"))
    page.locator("#propagate-count input").fill("3")
    page.locator("#propagate-forward").click()
    wait_for(lambda: len(sources(app.project)) == 4)
    expect(page.locator("#mask-info")).to_contain_text("revision 2")
    assert_in_view(page, LOOP + VIDEO_LOOP)
    twin = Studio(copy)
    try:
        eid = twin.store.list_expressions()[0]["id"]
        twin.propagate(eid, 0, "forward", count=3)
        with ProjectStore(app.project) as store:
            for f in range(4):
                assert np.array_equal(store.get_mask(eid, f), twin.store.get_mask(eid, f)), f"frame {f}"
    finally:
        twin.close()

    # The cheetah: a toy engine, chosen on purpose, offers candidates; the strip is in view too.
    open_media(page, "cheetah.jpg")
    expect(page.locator("#segment")).to_have_text("Segment (no engine yet)")
    pick_engine(page, "flowseg-demo")
    page.locator("#engines-and-weights").get_by_text("Engines and weights").first.click()  # fold it again
    page.locator("#segment").click()
    expect(page.locator("#candidate-1")).to_be_visible(timeout=60_000)
    page.evaluate("() => document.querySelectorAll('#left-column, #right-column').forEach(c => c.scrollTop = 0)")
    assert_in_view(page, LOOP + ["#candidates", "#candidate-1"])
    expect(page.locator("#propagate-forward")).to_be_hidden()  # an image: no propagation row

    open_media(page, "world.mp4")  # and back: the video's row is there again, in view
    wait_shown(page, frame=0)
    expect(page.locator("#segment")).to_have_text("Segment (no engine yet)")  # the toy is not carried over
    assert_in_view(page, LOOP + VIDEO_LOOP)


def sources(project: Path) -> dict:
    with ProjectStore(project) as store:
        return store.mask_sources(store.list_expressions()[0]["id"])


def test_messages_cover_no_control_and_say_each_thing_once(app, page):
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(app.url)
    wait_shown(page, frame=0)
    page.locator("#next-frame").click()  # a step, and back: no message at all
    wait_shown(page, frame=1)
    page.locator("#prev-frame").click()
    wait_shown(page, frame=0)
    page.wait_for_timeout(1500)  # what the canvas's follow-up event could say, said by now
    assert not [m for m in page.locator(".toast-wrap .toast-body").all() if m.is_visible()]
    expect(page.locator("#segment")).to_have_text("Segment (no engine yet)")   # world.mp4 is real media
    expect(page.locator("#engine-hint")).to_contain_text("launch.py models download NAME")
    for _ in range(2):  # the same error twice: said once
        page.locator("#segment").click()
    error = page.locator(".toast-wrap").get_by_text("No real engine for videos here: the note under Segment")
    expect(page.locator(".toast-wrap .toast-count")).to_contain_text("2", timeout=30_000)  # both arrived
    assert sum(item.is_visible() for item in error.all()) == 1
    page.locator("#propagate-count input").fill("2")
    page.locator("#propagate-forward").click()  # a notice (or a warning, if tracking drops)
    wait_for(lambda: len(sources(app.project)) == 3)
    expect(page.locator(".toast-wrap").get_by_text("Propagated to frames 1–2")).to_be_visible(timeout=30_000)
    assert_messages_clear(page)

    pick_engine(page, "flowrvs")  # a real engine without its weights: one short message
    page.locator("#segment").click()
    short = page.locator(".toast-wrap").get_by_text("flowrvs has no weights here")
    expect(short.first).to_be_visible(timeout=30_000)
    text = short.first.inner_text()
    assert "Engines and weights panel" in text and "--flowrvs" not in text
    assert_messages_clear(page)


def assert_messages_clear(page) -> None:
    """No visible message lies on a visible control of the page (a message scrolled inside the
    message area counts only where the area shows it)."""
    area = page.locator(".toast-wrap").bounding_box()
    messages = [clip(m.bounding_box(), area) for m in page.locator(".toast-wrap .toast-body").all() if m.is_visible()]
    messages = [m for m in messages if m]
    assert messages
    # nor over the outputs of the event that failed (Gradio marks them "Error")
    assert not [e for e in page.locator(".wrap > .error").all() if e.is_visible()]
    controls = page.evaluate("""(sel) => Array.from(document.querySelectorAll(sel))
        .filter((e) => !e.closest('.toast-wrap') && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
        .map((e) => { const r = e.getBoundingClientRect();
                      return {x: r.x, y: r.y, width: r.width, height: r.height, what: e.id || e.textContent.trim().slice(0, 30)}; })
        .filter((r) => r.width > 0 && r.height > 0 && r.y < innerHeight && r.x < innerWidth)""", CONTROLS)
    for message in messages:
        covered = [c["what"] for c in controls if overlaps(message, c)]
        assert not covered, f"a message at {message} covers {covered}"


def clip(a: dict, b: dict) -> dict | None:
    x0, y0 = max(a["x"], b["x"]), max(a["y"], b["y"])
    x1, y1 = min(a["x"] + a["width"], b["x"] + b["width"]), min(a["y"] + a["height"], b["y"] + b["height"])
    return {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0} if x1 > x0 and y1 > y0 else None


def test_the_demo_engine_is_the_default_on_the_demo_media_only(tmp_path, page):
    app = LiveApp(tmp_path / "demo.sqlite", demo=True)  # seeded with assets/demo
    try:
        page.goto(app.url)
        wait_shown(page)
        expect(page.locator("#media input")).to_have_value(re.compile(r"^shapes\.mp4"))
        expect(page.locator("#segment")).to_have_text("Segment with flowrvs-demo (toy)")
        expect(page.locator("#engine-hint")).to_be_hidden()
        open_media(page, "shapes.png")
        expect(page.locator("#segment")).to_have_text("Segment with flowseg-demo (toy)", timeout=30_000)
    finally:
        app.stop()
