"""Rendering through the running app: the /render endpoint (gradio_client) and the page's
*Render clip* button in real Chromium, on the demo project with masks saved on every frame."""
import urllib.parse
import urllib.request

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image
from playwright.sync_api import expect, sync_playwright

from app.commands.cli import seed_demo
from app.studio.studio import Studio
from bench.canvas_driver import CHROMIUM, FLAGS
from bench.live_app import LiveApp
from tests.render.test_render import decode


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("render-live")
    studio = Studio(root / "demo.sqlite")
    seed_demo(studio)
    video = studio.store.list_media()[0]
    assert video["kind"] == "video"
    for expr in studio.store.list_expressions(video["id"]):
        masks = {}
        for f in range(video["frames"]):
            m = np.zeros((video["height"], video["width"]), bool)
            m[60 + expr["id"] * 30:100 + expr["id"] * 30, 20 + 5 * f:80 + 5 * f] = True
            masks[f] = m
        studio.store.save_masks(expr["id"], masks)
        studio.store.save_masks(expr["id"], {3: masks[3][::-1]}, source="engine-x", keep_manual=True)
    studio.close()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TMPDIR", str(root))
        live = LiveApp(root / "demo.sqlite")
    yield live
    live.stop()


def test_render_endpoint_returns_the_clip(app):
    client = Client(app.url, verbose=False)
    path = client.predict(expression_id=1, format="gif", frames="0:6", scale=0.5, api_name="/render")
    with Image.open(path) as gif:
        assert gif.n_frames == 6 and gif.size == (160, 120)
    path = client.predict(media_id=1, api_name="/render")
    assert decode(path).shape == (24, 240, 320, 3)
    path = client.predict(expression_id=2, format="png", frames="3", layers="mask", compare=["mask", "proposal"],
                          api_name="/render")
    assert Image.open(path).size == (2 * 320 + 4, 240)
    with pytest.raises(AppError, match="no expression with id 99"):
        client.predict(expression_id=99, api_name="/render")
    with pytest.raises(AppError, match="above the video's own 12"):
        client.predict(expression_id=1, fps=50, api_name="/render")


def test_page_button_renders_a_clip_that_plays(app, tmp_path):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(app.url)
        expect(page.locator("#mask-info")).to_contain_text("the red square moving right", timeout=60_000)
        page.locator("#render-panel").get_by_text("Render clip").first.click()  # folded: open it
        page.locator("#render-clip").click()
        page.wait_for_function("""() => {
            const v = document.querySelector('#render-video video');
            return v && Number.isFinite(v.duration) && v.duration > 0;
        }""", timeout=60_000)
        duration = page.evaluate("document.querySelector('#render-video video').duration")
        src = page.evaluate("document.querySelector('#render-video video').currentSrc")
        expect(page.locator("#render-download")).to_be_visible()
        browser.close()
    assert abs(duration - 24 / 12) < 0.2  # 24 frames at 12 fps
    clip = tmp_path / "page.mp4"
    clip.write_bytes(urllib.request.urlopen(urllib.parse.urljoin(app.url, src)).read())
    assert decode(clip).shape == (24, 240, 320, 3)
