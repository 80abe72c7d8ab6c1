"""Regenerate docs/screenshot.png: the demo project with one corrected mask, in Chromium.

    python -m scripts.screenshot      (from the repository root)
"""
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

from playwright.sync_api import sync_playwright

from app.studio import Studio
from tests.live_app import LiveApp

project = Path(tempfile.mkdtemp()) / "demo.sqlite"
app = LiveApp(project, demo=True)
try:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(app.url)
        time.sleep(4)
        studio = Studio(project)  # a second writer, as a script would be: the page reloads to see it
        frame = studio.frame(1, 0).astype(int)
        red = (frame[:, :, 0] > 150) & (frame[:, :, 1] < 90) & (frame[:, :, 2] < 90)
        studio.store.save_mask(1, 0, red)
        studio.close()
        page.reload()
        time.sleep(5)
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"), full_page=True)
        browser.close()
finally:
    app.stop()
print("wrote docs/screenshot.png")
