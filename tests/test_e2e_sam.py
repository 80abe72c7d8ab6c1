"""SAM 2 in real Chromium: with --sam-model, a click on the frame saves the tiny model's mask (pixel
for pixel what the engine gives when called directly), and a click on one of its multimask
alternatives replaces it."""
import numpy as np
from playwright.sync_api import expect

from app.media import FrameCache
from app.store import ProjectStore
from bench.canvas_driver import add_expression, at, edit, keys, stored, upload, wait_for  # noqa: F401
from bench.live_app import LiveApp
from engine.sam2.predictor import SamPredictor
from engine.sam2.weights import load_model
from tests import sam_fixtures as fx
from tests.media_fixtures import write_image


def test_click_gives_sams_mask_and_an_alternative_replaces_it(page, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.delenv("FLOWLABEL_SAM_MODEL", raising=False)
    write_image(tmp_path / "still.png", size=(80, 60))
    app = LiveApp(tmp_path / "live.sqlite", "--sam-model", str(fx.model_dir()), "--device", "cpu")
    try:
        page.goto(app.url)
        upload(page, tmp_path / "still.png")
        add_expression(page, "the thing")

        keys(page, "t")  # the points tool: a click on pixel (30, 20)
        edit(page, lambda: page.mouse.click(*at(page, 30, 20)))
        saved, sources = stored(app, 0)
        assert sources == {0: "manual"}

        with ProjectStore(app.project) as store:
            image = FrameCache().frame(store.media_file(store.list_media()[0]["id"]), "image", 0)
        direct = SamPredictor(load_model(fx.model_dir(), video=False)).click(
            "k", image, "o", 30, 20, True, current=np.zeros(image.shape[:2], bool))
        np.testing.assert_array_equal(saved, direct.masks[0])

        shown = [m for j, m in enumerate(direct.masks) if j == 0 or m.any()]
        pick = next(j for j in range(1, len(shown)) if not np.array_equal(shown[j], saved))
        thumbs = page.locator("#candidates button img, #candidates .thumbnail-item img")
        expect(thumbs).to_have_count(len(shown), timeout=30_000)
        thumbs.nth(pick).click()
        wait_for(lambda: not np.array_equal(stored(app)[0], saved))
        np.testing.assert_array_equal(stored(app)[0], shown[pick])
    finally:
        app.stop()
