"""The shipped FlowSeg demo in real Chromium: an image gets flowseg-demo, Segment proposes a
mask that matches the world's truth, and a click on a candidate thumbnail replaces it."""
import re

import cv2
from playwright.sync_api import expect

from app.frame_tools import mask_iou
from engine.demo_world import images
from engine.flowseg.demo import DEMO_DIR
from engine.flowseg.pipeline import FlowSegPipeline
from tests.test_e2e_browser import frame_loaded, page  # noqa: F401  (the browser fixture)
from tests.test_e2e_tools import stored, wait_for


def held_out_scene():
    """A held-out scene (seed 1000: never trained on) with an attribute expression."""
    for scene in images(1000, 50):
        for e in scene.expressions:
            if e.kind == "attribute":
                return scene, e
    raise AssertionError("no attribute expression in 50 scenes")


def test_image_segments_with_flowseg_demo_and_a_candidate_click(live_app, page, tmp_path):  # noqa: F811
    scene, expression = held_out_scene()
    path = tmp_path / "shapes.png"
    cv2.imwrite(str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
    page.goto(live_app.url)
    page.locator("#upload input[type=file]").set_input_files(str(path))
    expect(page.locator("#media input")).to_have_value(re.compile("shapes.png"), timeout=60_000)
    page.locator("#new-expression textarea").fill(expression.text)
    with frame_loaded(page):
        page.locator("#add-expression").click()

    page.get_by_text("Model", exact=True).click()                 # the accordion
    expect(page.locator("#engine input")).to_have_value("flowseg-demo")
    page.locator("#segment").click()
    wait_for(lambda: stored(live_app, 0)[1].get(0) == "flowseg-demo", timeout=120)
    expect(page.locator("#mask-info")).to_contain_text("(flowseg-demo)")
    page.wait_for_timeout(1500)                 # the editor reloads: still the model's proposal
    proposal, sources = stored(live_app, 0)
    assert sources == {0: "flowseg-demo"}
    assert mask_iou(proposal, scene.mask(expression)) > 0.5

    # The same weights in this process give the candidates; click one that differs.
    cands = FlowSegPipeline.from_pretrained(DEMO_DIR, device="cpu").candidates(
        scene.image, expression.text, k=5)
    assert mask_iou(cands.masks[0], proposal) > 0.95
    shown = [m for j, m in enumerate(cands.masks) if j == 0 or m.any()]   # empty ones are not offered
    pick = next(j for j in range(1, len(shown)) if mask_iou(shown[j], proposal) < 0.9)
    thumbs = page.locator("#candidates button img, #candidates .thumbnail-item img")
    expect(thumbs.first).to_be_visible(timeout=30_000)
    assert thumbs.count() == len(shown)
    thumbs.nth(pick).click()                                       # that candidate replaces the mask
    wait_for(lambda: stored(live_app, 0)[1].get(0) == "manual")
    chosen, _ = stored(live_app, 0)
    assert mask_iou(chosen, shown[pick]) > 0.95
