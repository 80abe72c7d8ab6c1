"""The SAM 3 concept engine against Sam3Model called directly (tiny seeded weights), and through the
studio: its instances become the candidates the annotator picks from."""
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import engine
from app.studio.studio import Studio
from engine.sam3 import load
from engine.sam3.presets import write_model_dir
from tests.helpers import sam_fixtures as fx
from tests.helpers.media_fixtures import write_image
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@functools.lru_cache(maxsize=None)
def model_dir():
    return write_model_dir(fx.root() / "sam3-concept")


def reference(img, text, folder=None):
    """AutoTokenizer + Sam3Model + the steps of post_process_instance_segmentation, by hand."""
    from transformers import AutoTokenizer, Sam3Model
    folder = folder or model_dir()
    model = Sam3Model.from_pretrained(folder).eval()
    tokens = AutoTokenizer.from_pretrained(folder)([text], padding="max_length", max_length=32,
                                                   return_tensors="pt")
    x = F.interpolate(torch.tensor(img).permute(2, 0, 1).float()[None], size=(112, 112), mode="bilinear",
                      antialias=True, align_corners=False) / 255
    with torch.no_grad():
        out = model(pixel_values=(x - 0.5) / 0.5, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
    scores = out.pred_logits[0].sigmoid() * out.presence_logits[0].sigmoid()
    order = torch.argsort(scores, descending=True, stable=True)
    masks = F.interpolate(out.pred_masks[0][order][None], size=img.shape[:2], mode="bilinear",
                          align_corners=False)[0].sigmoid() > 0.5
    return masks.numpy(), scores[order].numpy()


def test_instances_match_the_model_called_directly():
    img = fx.image(60, 80)
    segmenter = load(model=str(model_dir()))
    found = segmenter.instances(img, "the red ball")
    masks, scores = reference(img, "the red ball")
    assert found.masks.shape == (5, 60, 80) and found.boxes.shape == (5, 4)
    np.testing.assert_array_equal(found.masks, masks)
    np.testing.assert_allclose(found.scores, scores, rtol=1e-5)
    top, top_scores = segmenter.candidates(img, "the red ball", k=3)
    np.testing.assert_array_equal(top, masks[:3])
    assert not load(model=str(model_dir()), threshold=1.0).segment_image(img, "the red ball").any()
    np.testing.assert_array_equal(load(model=str(model_dir()), threshold=0.0).segment_image(img, "the red ball"),
                                  masks[0])


def test_studio_offers_the_instances_as_candidates(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM3_MODEL", raising=False)
    studio = Studio(tmp_path / "p.sqlite", device="cpu", engine_paths={"sam3": {"model": str(model_dir())}})
    try:
        write_image(tmp_path / "still.png", size=(80, 60))
        media = studio.add_media(tmp_path / "still.png")[0]
        eid = studio.store.add_expression(media["id"], "the dog on the left")["id"]
        studio.segment(eid, "sam3")
        masks, _ = reference(studio.frame(media["id"], 0), "the dog on the left")
        offered, _ = studio.candidates(eid)
        np.testing.assert_array_equal(offered, masks[[i for i in range(5) if i == 0 or masks[i].any()]])
        np.testing.assert_array_equal(studio.store.get_mask(eid, 0), masks[0])
        studio.choose_candidate(eid, len(offered) - 1)
        np.testing.assert_array_equal(studio.store.get_mask(eid, 0), offered[-1])
    finally:
        studio.close()


def test_unconfigured_says_what_to_set(monkeypatch):
    monkeypatch.delenv("FLOWLABEL_SAM3_MODEL", raising=False)
    with pytest.raises(engine.EngineNotConfigured, match="--sam3-model"):
        load()
    assert "sam3" in engine.available_segmenters("image")
