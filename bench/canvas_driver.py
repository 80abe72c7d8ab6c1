"""Driving the page's canvas in real Chromium, as an annotator would: pointer and keys at the
screen position of an image pixel (read from the canvas's published view), and waits on what
the canvas shows (its frame and revision), never on fixed sleeps."""
from __future__ import annotations

import json
import re
import time

from playwright.sync_api import expect

from app.project.store import ProjectStore

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
SHOWN = "#canvas [data-drawn]"  # the canvas's element: data-frame, data-revision once a value is drawn


def shown(page) -> dict:
    return page.locator(SHOWN).evaluate("e => ({frame: e.dataset.frame, revision: e.dataset.revision})")


def wait_shown(page, frame=None, revision=None, changed_from=None, timeout=30_000) -> dict:
    """Wait until the canvas shows this frame / revision (or any revision but `changed_from`)."""
    page.wait_for_function(
        """([sel, frame, revision, old]) => { const e = document.querySelector(sel);
            if (!e || e.dataset.frame === undefined) return false;
            return (frame === null || e.dataset.frame === String(frame)) &&
                   (revision === null || e.dataset.revision === String(revision)) &&
                   (old === null || e.dataset.revision !== String(old)); }""",
        arg=[SHOWN, frame, revision, changed_from], timeout=timeout)
    return shown(page)


def upload(page, path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#media input")).to_have_value(re.compile(re.escape(path.name)), timeout=60_000)


def add_expression(page, text: str) -> None:
    page.locator("#new-expression textarea").fill(text)
    page.locator("#add-expression").click()
    expect(page.locator("#mask-info")).to_contain_text(text)
    wait_shown(page)


def view(page) -> dict:
    stage = page.locator("#canvas .fl-stage")
    return {**json.loads(stage.get_attribute("data-view")), "box": stage.bounding_box()}


def at(page, x: float, y: float) -> tuple[float, float]:
    """The screen position of the centre of image pixel (x, y)."""
    v = view(page)
    return v["box"]["x"] + v["ox"] + (x + 0.5) * v["scale"], v["box"]["y"] + v["oy"] + (y + 0.5) * v["scale"]


def keys(page, *names: str) -> None:
    page.locator("#mask-info").click()  # focus off any text box, as an annotator's click would
    for name in names:
        page.keyboard.press(name)


def zoom(page, percent: int) -> None:
    """1:1, then the zoom-in key until `percent` (a power of two times 100)."""
    keys(page, "a")
    while round(view(page)["scale"] * 100) < percent:
        keys(page, "=")
    assert round(view(page)["scale"] * 100) == percent


def tool(page, name: str) -> None:
    page.locator(f"#tool-{name}").click()


def drag(page, points) -> None:
    """Press at the first pixel, move through the others (one move each), release."""
    page.mouse.move(*at(page, *points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(page, *p))
    page.mouse.up()


def edit(page, action) -> dict:
    """Run an edit on the canvas and wait until the saved result is drawn."""
    before = shown(page)["revision"]
    action()
    return wait_shown(page, changed_from=before)


def stored(app, frame=0, expression=0, object_id=None):
    """(mask, sources) from the project file, read apart from the app."""
    with ProjectStore(app.project) as store:
        eid = store.list_expressions()[expression]["id"]
        return store.get_mask(eid, frame, object_id), store.mask_sources(eid, object_id)


def wait_for(check, timeout=60):
    """Poll the project file until check() is true (for long jobs: propagation, models)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting for the project to change"
        time.sleep(0.3)


def canvas_pixel(page, x: int, y: int) -> list[int]:
    """The RGB the canvas shows at image pixel (x, y)."""
    sx, sy = at(page, x, y)
    box = view(page)["box"]
    return page.locator("#canvas .fl-base").evaluate(
        """(c, [x, y]) => { const d = window.devicePixelRatio || 1;
            return Array.from(c.getContext('2d').getImageData(Math.floor(x * d), Math.floor(y * d), 1, 1).data).slice(0, 3); }""",
        [sx - box["x"], sy - box["y"]])


def pick_engine(page, name: str) -> None:
    """Choose an engine in the folded *Engines and weights* panel (the demo engines are listed
    there as toys), and wait for the Segment button to name it."""
    if not page.locator("#engine").is_visible():
        page.locator("#engines-and-weights").get_by_text("Engines and weights").first.click()
    page.locator("#engine").evaluate("e => e.scrollIntoView({block: 'start'})")  # room for the list below it
    page.locator("#engine input").click()
    page.get_by_role("option", name=re.compile(rf"^{re.escape(name)}\b")).first.click()
    expect(page.locator("#segment")).to_contain_text(f"Segment with {name}")
