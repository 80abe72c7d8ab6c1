"""The interactive SAM 2 engine against transformers' own calls, step by step: masks equal. Each test
runs on SAM 2.1 (Sam2Model) and on EdgeTAM (EdgeTamModel, its RepViT backbone built by timm)."""
import numpy as np
import pytest
import torch

from engine.sam2.predictor import SamPredictor
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")

H, W = 60, 80


@pytest.fixture(scope="module", params=["tiny", "edgetam"])
def family(request):
    return request.param


@pytest.fixture(scope="module")
def predictor(family):
    from engine.sam2.checkpoints import load_model
    model = load_model(fx.model_dir(family), video=False)
    assert type(model).__name__ == fx.FAMILIES[family][1]
    return SamPredictor(model, max_cached=2)


def reference(family, img, points=(), box=None, mask_logits=None, multimask=True):
    """<Model>.get_image_embeddings, then <Model>(image_embeddings=...), then post-processing."""
    model = fx.models(family)[0]
    with torch.no_grad():
        embeddings = model.get_image_embeddings(fx.reference_pixels(img))
        kwargs = {}
        if points:
            kwargs["input_points"] = torch.tensor([[fx.reference_coords([p[:2] for p in points], H, W)]])
            kwargs["input_labels"] = torch.tensor([[[int(p[2]) for p in points]]])
        if box is not None:
            (x0, y0), (x1, y1) = fx.reference_coords([box[:2], box[2:]], H, W)
            kwargs["input_boxes"] = torch.tensor([[[x0, y0, x1, y1]]])
        if mask_logits is not None:
            kwargs["input_masks"] = torch.tensor(mask_logits)[None, None]
        out = model(image_embeddings=embeddings, multimask_output=multimask, **kwargs)
    order = torch.argsort(out.iou_scores[0, 0], descending=True, stable=True)
    return fx.reference_masks(out.pred_masks[0, 0][order], H, W), out.iou_scores[0, 0][order].numpy(), \
        out.pred_masks[0, 0][order].numpy()


def test_click_gives_the_reference_masks_and_alternatives(predictor, family):
    img = fx.image(H, W)
    got = predictor.click(("m", 0), img, "obj", 20, 30, positive=True)
    masks, scores, _ = reference(family, img, [(20, 30, 1)])
    assert got.masks.shape == (3, H, W) and got.masks.dtype == bool
    np.testing.assert_array_equal(got.masks, masks)
    np.testing.assert_allclose(got.scores, scores, rtol=1e-5)
    assert len({m.tobytes() for m in got.masks}) == 3  # three different alternatives


def test_clicks_refine_with_the_last_mask_and_a_box_restarts(predictor, family):
    img = fx.image(H, W, seed=1)
    first = predictor.click(("m", 1), img, "o", 20, 30, positive=True)
    second = predictor.click(("m", 1), img, "o", 60, 10, positive=False, current=first.masks[0])
    _, _, logits = reference(family, img, [(20, 30, 1)])
    masks, _, _ = reference(family, img, [(20, 30, 1), (60, 10, 0)], mask_logits=logits[0], multimask=False)
    assert second.masks.shape == (1, H, W)
    np.testing.assert_array_equal(second.masks, masks)
    boxed = predictor.box(("m", 1), img, "o", (10, 5, 50, 40))
    np.testing.assert_array_equal(boxed.masks, reference(family, img, box=(10, 5, 50, 40))[0])
    after_box = predictor.click(("m", 1), img, "o", 30, 20, positive=True, current=boxed.masks[0])
    expected = reference(family, img, [(30, 20, 1)], box=(10, 5, 50, 40), mask_logits=boxed.logits[0],
                         multimask=False)[0]
    np.testing.assert_array_equal(after_box.masks, expected)


def test_a_painted_mask_restarts_the_object_from_it(predictor, family):
    img = fx.image(H, W, seed=2)
    predictor.click(("m", 2), img, "p", 20, 30, positive=True)
    painted = np.zeros((H, W), bool)
    painted[10:40, 10:50] = True
    got = predictor.click(("m", 2), img, "p", 15, 15, positive=True, current=painted)
    from engine.sam2.predictor import mask_to_logits
    expected = reference(family, img, [(15, 15, 1)], mask_logits=mask_to_logits(painted, 32), multimask=False)[0]
    np.testing.assert_array_equal(got.masks, expected)


def test_choosing_an_alternative_makes_the_next_click_refine_it(predictor, family):
    img = fx.image(H, W, seed=3)
    first = predictor.click(("m", 3), img, "c", 40, 30, positive=True)
    predictor.choose("c", first, 2)
    got = predictor.click(("m", 3), img, "c", 10, 10, positive=False, current=first.masks[2])
    expected = reference(family, img, [(40, 30, 1), (10, 10, 0)], mask_logits=first.logits[2], multimask=False)[0]
    np.testing.assert_array_equal(got.masks, expected)


def test_embedding_cache_is_bounded_and_checks_the_pixels(predictor, family):
    predictor.clear_cache()
    a, b, c = fx.image(H, W, seed=4), fx.image(H, W, seed=5), fx.image(H, W, seed=6)
    predictor.prepare(("m", 10), a)
    predictor.prepare(("m", 11), b)
    assert predictor.is_prepared(("m", 10), a) and predictor.is_prepared(("m", 11), b)
    predictor.prepare(("m", 12), c)  # max_cached=2: the least recently used goes
    assert not predictor.is_prepared(("m", 10), a) and predictor.is_prepared(("m", 12), c)
    assert not predictor.is_prepared(("m", 12), a)  # same key, other pixels: not a hit
    got = predictor.click(("m", 12), a, "x", 20, 30, positive=True)  # recomputed for the new pixels
    np.testing.assert_array_equal(got.masks, reference(family, a, [(20, 30, 1)])[0])


@pytest.mark.parametrize("call, message", [
    (lambda p, img: p.click(("m", 0), img, "e", 80, 10, True), "outside the 80x60 frame"),
    (lambda p, img: p.box(("m", 0), img, "e", (0, 0, 90, 10)), "reaches outside"),
    (lambda p, img: p.box(("m", 0), img, "e", (5, 5, 6, 20)), "smaller than 2x2"),
    (lambda p, img: p.predict(("m", 0), img), "give SAM a prompt"),
    (lambda p, img: p.prepare(("m", 0), img[..., 0]), r"\[H,W,3\]"),
])
def test_bad_prompts_are_refused_with_the_fix(predictor, call, message):
    with pytest.raises(ValueError, match=message):
        call(predictor, fx.image(H, W))
