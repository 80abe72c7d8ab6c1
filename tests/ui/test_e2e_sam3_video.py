"""sam3 on a video in real Chromium: Segment with sam3 on a few frames of world.mp4 saves the best
instance's track, the candidate strip shows the other instances (each on the frame it was found),
and a click on one stores its whole track: pixel for pixel what the engine gives when called
directly."""
import functools
import re
from pathlib import Path

import cv2
import numpy as np
import torch
from playwright.sync_api import expect

from app.media.files import FrameCache
from app.project.store import ProjectStore
from bench.canvas_driver import add_expression, edit, pick_engine, upload, wait_for  # noqa: F401
from bench.live_app import LiveApp
from engine.sam3 import load
from engine.sam3.presets import make_tokenizer
from tests.engine.test_sam3_concept import model_dir
from tests.engine.test_sam3_video import TEXT, tracker_dir
from tests.helpers import sam_fixtures as fx
from tests.helpers.media_fixtures import GRADIO_VIDEOS

WORLD = GRADIO_VIDEOS / "world.mp4"
FRAMES = 4


@functools.lru_cache(maxsize=None)
def confident_model_dir() -> Path:
    """The tiny SAM 3 with its presence head pushed up: every query scores about 0.5, above the
    engine's default threshold (0.3), which the page cannot change."""
    from transformers import Sam3Model
    model = Sam3Model.from_pretrained(model_dir()).eval()
    with torch.no_grad():
        model.detr_decoder.presence_head.layer3.bias.add_(8.0)
    folder = fx.root() / "sam3-confident"
    model.save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


def world_clip(path: Path) -> None:
    """The first frames of gradio's world.mp4 (real footage, 480x270), as an MJPG file."""
    reader = cv2.VideoCapture(str(WORLD))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (480, 270))
    for _ in range(FRAMES):
        ok, frame = reader.read()
        assert ok
        writer.write(frame)
    writer.release()
    reader.release()


def stored_track(app) -> np.ndarray:
    with ProjectStore(app.project) as store:
        eid = store.list_expressions()[0]["id"]
        return np.stack([store.get_mask(eid, t) for t in range(FRAMES)])


def test_segment_shows_video_candidates_and_a_click_saves_that_track(page, tmp_path, monkeypatch):  # noqa: F811
    for name in ("FLOWLABEL_SAM3_MODEL", "FLOWLABEL_SAM3_TRACKER_MODEL"):
        monkeypatch.delenv(name, raising=False)
    world_clip(tmp_path / "world.avi")
    app = LiveApp(tmp_path / "live.sqlite", "--sam3-model", str(confident_model_dir()),
                  "--sam3-tracker-model", str(tracker_dir()), "--device", "cpu")
    try:
        page.goto(app.url)
        upload(page, tmp_path / "world.avi")
        add_expression(page, TEXT)
        expect(page.locator("#segment")).to_have_text("Segment with sam3")  # set up: the default
        pick_engine(page, "sam3")
        edit(page, lambda: page.locator("#segment").click())
        expect(page.get_by_text(re.compile(r"sam3 segmented 4 frame\(s\): filled [1-4] empty; [1-9] other pick\(s\) "
                                           r"under Candidates"))).to_be_visible()

        with ProjectStore(app.project) as store:
            media = store.list_media()[0]
            clip = np.stack([FrameCache().frame(store.media_file(media["id"]), "video", t, frames=media["frames"])
                             for t in range(FRAMES)])
        found = load(model=str(confident_model_dir()), tracker=str(tracker_dir())).video_candidates(clip, TEXT)
        assert len(found) >= 2 and all(c.track.array()[1:].any() for c in found)
        np.testing.assert_array_equal(stored_track(app), found[0].track.array())

        thumbs = page.locator("#candidates button img, #candidates .thumbnail-item img")
        expect(thumbs).to_have_count(len(found), timeout=30_000)
        for i, c in enumerate(found):
            expect(page.locator("#candidates")).to_contain_text(f"{i + 1}: {c.score:.2f} (frame {c.frame})")
        pick = found[-1].track.array()
        assert not np.array_equal(pick, found[0].track.array())
        thumbs.nth(len(found) - 1).click()
        wait_for(lambda: np.array_equal(stored_track(app), pick), timeout=60)
    finally:
        app.stop()
