"""The annotation loop with the shipped FlowSeg demo in real Chromium: an expression, Segment
(with flowseg-demo, chosen as the toy it is), a correction on the canvas, a candidate click,
done, next expression, Segment again. Each step is checked against the stored mask."""
import cv2
import numpy as np
from playwright.sync_api import expect

from app.masks.frame_tools import mask_iou
from app.masks.ops import paint
from bench.canvas_driver import (  # noqa: F401
    add_expression,
    drag,
    edit,
    keys,
    pick_engine,
    stored,
    upload,
    wait_for,
    zoom,
)
from engine.demo_world import images
from engine.flowseg.demo import DEMO_DIR
from engine.flowseg.pipeline import FlowSegPipeline


def held_out_scene():
    """A held-out scene (seed 1000: never trained on) with two attribute expressions."""
    for scene in images(1000, 50):
        found = [e for e in scene.expressions if e.kind == "attribute"]
        if len(found) >= 2:
            return scene, found[:2]
    raise AssertionError("no scene with two attribute expressions in 50")


def test_expression_segment_correct_next_loop(live_app, page, tmp_path):  # noqa: F811
    scene, (first, second) = held_out_scene()
    path = tmp_path / "shapes.png"
    cv2.imwrite(str(path), cv2.cvtColor(scene.image, cv2.COLOR_RGB2BGR))
    page.goto(live_app.url)
    upload(page, path)
    add_expression(page, first.text)
    add_expression(page, second.text)
    page.locator("#expressions").get_by_text(first.text).click()
    expect(page.locator("#mask-info")).to_contain_text(first.text)

    # A synthetic scene is not the shipped demo media: the toy is chosen on purpose, and says so.
    expect(page.locator("#segment")).to_have_text("Segment (no engine yet)")
    pick_engine(page, "flowseg-demo")
    expect(page.locator("#segment")).to_have_text("Segment with flowseg-demo (toy)")
    expect(page.locator("#candidates")).to_be_hidden()                         # none offered yet
    edit(page, lambda: page.locator("#segment").click())
    proposal, sources = stored(live_app)
    assert sources == {0: "flowseg-demo"}
    assert mask_iou(proposal, scene.mask(first)) > 0.5
    expect(page.locator("#mask-info")).to_contain_text("(flowseg-demo)")

    zoom(page, 400)  # correct the proposal with a stroke: exactly those pixels are added
    h, w = proposal.shape
    points = [(2, 2), (w // 4, 3)]
    edit(page, lambda: drag(page, points))
    corrected = paint(proposal, points, 6, True)
    assert np.array_equal(stored(live_app)[0], corrected) and stored(live_app)[1] == {0: "manual"}

    # The same weights in this process give the candidates; a click on one that differs uses it.
    cands = FlowSegPipeline.from_pretrained(DEMO_DIR, device="cpu").candidates(scene.image, first.text, k=5)
    offered = [m for j, m in enumerate(cands.masks) if j == 0 or m.any()]   # empty ones are not offered
    thumbs = page.locator("#candidates button img, #candidates .thumbnail-item img")
    expect(thumbs.first).to_be_visible(timeout=30_000)
    assert thumbs.count() == len(offered)
    pick = next(j for j in range(1, len(offered)) if mask_iou(offered[j], proposal) < 0.9)
    edit(page, lambda: thumbs.nth(pick).click())
    assert mask_iou(stored(live_app)[0], offered[pick]) > 0.95

    keys(page, "d")                                   # done, then N: the next expression to work on
    expect(page.locator("#expressions")).to_contain_text("[done]")
    keys(page, "n")
    expect(page.locator("#mask-info")).to_contain_text(f"{second.text} · to do")
    edit(page, lambda: page.locator("#segment").click())
    wait_for(lambda: stored(live_app, expression=1)[1] == {0: "flowseg-demo"})
    assert mask_iou(stored(live_app, expression=1)[0], scene.mask(second)) > 0.3
