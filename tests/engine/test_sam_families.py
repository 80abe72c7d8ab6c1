"""The SAM 3 tracker and EdgeTAM go through the same engine: their classes, their normalisation, the
same calls (EdgeTAM's clicks and tracks are also checked step by step in test_sam_predictor.py and
test_sam_tracker.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.sam2.checkpoints import load_model, normalization
from engine.sam2.predictor import SamPredictor
from engine.sam2.tracker import track
from tests.helpers import sam_fixtures as fx
from tests.helpers.sam_fixtures import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.mark.parametrize("family, size, mean_std", [("sam3", 112, ((0.5,) * 3, (0.5,) * 3)), ("edgetam", 128, IMAGENET)])
def test_click_matches_the_family_model_called_directly(family, size, mean_std):
    import transformers
    folder = fx.model_dir(family)
    engine_model = load_model(folder, video=False)
    assert type(engine_model).__name__ == fx.FAMILIES[family][1]
    assert normalization(folder) == mean_std
    img = fx.image(60, 80)
    got = SamPredictor(engine_model, normalization=normalization(folder)).click("k", img, "o", 20, 30, True)

    model = getattr(transformers, fx.FAMILIES[family][1]).from_pretrained(folder).eval()
    x = F.interpolate(torch.tensor(img).permute(2, 0, 1).float()[None], size=(size, size), mode="bilinear",
                      antialias=True, align_corners=False) / 255
    mean, std = (torch.tensor(v)[:, None, None] for v in mean_std)
    with torch.no_grad():
        out = model(pixel_values=(x - mean) / std, input_points=torch.tensor([[[[20 * size / 80, 30 * size / 60]]]]),
                    input_labels=torch.tensor([[[1]]]), multimask_output=True)
    order = torch.argsort(out.iou_scores[0, 0], descending=True, stable=True)
    up = F.interpolate(out.pred_masks[0, 0][order][:, None], size=(60, 80), mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(got.masks, (up[:, 0] > 0).numpy())


def test_sam3_tracker_tracks_with_the_same_verbs():
    frames = fx.clip(4)
    seed = np.zeros(frames.shape[1:3], bool)
    seed[8:20, 0:12] = True
    model = load_model(fx.model_dir("sam3"), video=True)
    assert type(model).__name__ == "Sam3TrackerVideoModel"
    steps = list(track(model, lambda i: frames[i], 4, 0, seed_mask=seed, normalization=((0.5,) * 3, (0.5,) * 3)))
    assert [s.frame for s in steps] == [1, 2, 3]
    assert all(s.mask.shape == seed.shape and s.mask.dtype == bool for s in steps)
    assert all(s.absent == (s.score <= 0) and (not s.absent or not s.mask.any()) for s in steps)
