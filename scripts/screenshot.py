"""Regenerate docs/screenshot.png: the page at 1600x1000 on real media (Gradio's world.mp4,
480x270, 901 frames), with a box-tool mask propagated part of the way, in Chromium.

    python -m scripts.screenshot [OUT.png]      (from the repository root)
"""
import sys
import tempfile
from pathlib import Path

import gradio
from playwright.sync_api import sync_playwright

from app.studio import Studio
from bench.live_app import LiveApp

ROOT = Path(__file__).resolve().parent.parent

ASSETS = Path(gradio.__file__).parent / "media_assets"
out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "screenshot.png"
project = Path(tempfile.mkdtemp()) / "world.sqlite"
studio = Studio(project)
media = studio.add_media(ASSETS / "videos" / "world.mp4")[0]
studio.add_media(ASSETS / "images" / "cheetah1.jpg")
eid = studio.store.add_expression(media["id"], "the planet, lit from the left")["id"]
studio.store.add_expression(media["id"], "the brightest city lights")
studio.apply_tool(eid, 0, "box", [[118, 14], [362, 256]])
studio.propagate(eid, 0, "forward", count=120)
studio.store.set_setting("last_expression", eid)
studio.close()
app = LiveApp(project)
try:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(app.url)
        page.wait_for_function("() => document.querySelector('#canvas [data-frame]')")
        page.locator("#canvas .fl-timeline").click(position={"x": 60, "y": 10})  # a propagated frame
        page.wait_for_function("() => document.querySelector('#canvas [data-frame]').dataset.frame !== '0'")
        page.mouse.move(*[v + 200 for v in (page.locator("#canvas .fl-stage").bounding_box()["x"],) * 2])
        page.wait_for_timeout(500)
        page.screenshot(path=str(out))
        browser.close()
finally:
    app.stop()
print(f"wrote {out}")
