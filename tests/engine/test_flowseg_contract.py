"""FlowSeg contract on tiny seeded models: shapes, determinism, candidates, text, the BAR band
property, every ablation switch, and that FlowSeg's own parameters are all used."""
import numpy as np
import pytest
import torch

from engine.flowseg.config import SWITCHES
from engine.flowseg.refine import BoundaryAwareRefinement, boundary_band
from tests.helpers.flowseg_fixtures import EXPRESSION, image, one_torch_thread, pipeline  # noqa: F401

# --------------------------------------------------------------------------- shapes, determinism

@pytest.mark.parametrize("size", [(40, 56), (57, 23), (64, 64), (5, 9)])
def test_mask_shape_and_dtype(size):
    img = image(1, *size)
    mask = pipeline()(img, EXPRESSION)
    assert mask.shape == size and mask.dtype == np.bool_
    cands = pipeline().candidates(img, EXPRESSION, k=3)
    assert cands.masks.shape == (3, *size) and cands.masks.dtype == np.bool_
    assert cands.scores.shape == (3,) and cands.scores.dtype == np.float32
    assert cands.queries.dtype == np.int64 and len(cands) == 3


def test_deterministic_across_calls_and_builds():
    from engine.flowseg.presets import random_pipeline
    img = image(2)
    a = pipeline().predict(img, EXPRESSION)
    b = pipeline().predict(img, EXPRESSION)
    c = random_pipeline("tiny", seed=0, device="cpu").predict(img, EXPRESSION)
    for other in (b, c):
        assert np.array_equal(a.scores, other.scores)
        assert np.array_equal(a.refined_logits, other.refined_logits)
        assert np.array_equal(a.candidates.masks, other.candidates.masks)
    d = random_pipeline("tiny", seed=1, device="cpu").predict(img, EXPRESSION)
    assert not np.array_equal(a.scores, d.scores)


def test_building_does_not_touch_the_global_rng():
    from engine.flowseg.presets import random_pipeline
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    random_pipeline("tiny", seed=5, device="cpu")
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------- candidates

def test_candidates_sorted_and_contain_the_selected_mask():
    pipe = pipeline()
    img = image(3)
    pred = pipe.predict(img, EXPRESSION, k=5)
    cands = pred.candidates
    assert np.all(np.diff(cands.scores) <= 0), cands.scores
    assert cands.queries[0] == int(np.argmax(pred.scores))
    assert np.allclose(cands.scores, pred.scores[cands.queries])
    assert len(set(cands.queries.tolist())) == 5
    assert np.array_equal(cands.masks[0], pipe(img, EXPRESSION))
    assert np.array_equal(cands.selected, cands.masks[0])
    masks, scores = zip(*cands)
    assert np.array_equal(np.stack(masks), cands.masks) and list(scores) == cands.scores.tolist()


def test_k_larger_than_the_queries_returns_all_of_them():
    pipe = pipeline()
    cands = pipe.candidates(image(4), EXPRESSION, k=100)
    assert len(cands) == pipe.config.num_queries
    assert sorted(cands.queries.tolist()) == list(range(pipe.config.num_queries))


def test_text_matters():
    pipe = pipeline()
    img = image(5)
    a = pipe.predict(img, "the red square")
    b = pipe.predict(img, "the blue circle on the left")
    assert np.abs(a.scores - b.scores).max() > 1e-3
    assert not np.allclose(a.conditions.mean(0), b.conditions.mean(0))


def test_image_matters():
    pipe = pipeline()
    a = pipe.predict(image(6), EXPRESSION)
    b = pipe.predict(image(7), EXPRESSION)
    assert np.abs(a.scores - b.scores).max() > 1e-3


# --------------------------------------------------------------------------- BAR

def _band_reference(prob: np.ndarray, eps: float, k: int) -> np.ndarray:
    """dilate - erode with a k x k square, the border not counting as a neighbour."""
    from numpy.lib.stride_tricks import sliding_window_view
    p = k // 2
    hi = np.pad(prob, p, constant_values=-np.inf)
    lo = np.pad(prob, p, constant_values=np.inf)
    dilated = sliding_window_view(hi, (k, k)).max(axis=(-1, -2))
    eroded = sliding_window_view(lo, (k, k)).min(axis=(-1, -2))
    return dilated - eroded > eps


@pytest.mark.parametrize("kernel", [3, 5])
def test_boundary_band_is_the_morphological_gradient(kernel):
    prob = torch.rand(2, 3, 12, 17, generator=torch.Generator().manual_seed(0))
    prob[0, 0] = 0.5                                   # flat: no band at all
    band = boundary_band(prob, 0.1, kernel)
    for b in range(2):
        for k in range(3):
            assert np.array_equal(band[b, k].numpy(), _band_reference(prob[b, k].numpy(), 0.1, kernel))
    assert not band[0, 0].any()


def test_bar_changes_nothing_outside_the_band():
    torch.manual_seed(0)
    bar = BoundaryAwareRefinement(feature_channels=6, comp_channels=4, hidden=8, alpha_init=0.5)
    logits = torch.full((1, 2, 16, 16), -8.0)
    logits[:, 0, 4:10, 5:12] = 8.0                     # a confident square
    logits[:, 1] = torch.randn(16, 16) * 3             # an uncertain mask
    feats = torch.randn(1, 6, 16, 16)
    refined, band = bar(logits, feats)
    assert torch.equal(refined[~band], logits[~band])  # bit for bit
    assert (refined[band] != logits[band]).float().mean() > 0.9
    assert ((refined - logits).abs() <= bar.alpha.abs() + 1e-6).all()   # tanh * alpha
    # the square's band is exactly the ring where the 3x3 neighbourhood crosses the edge
    ring = np.zeros((16, 16), bool)
    ring[3:11, 4:13] = True
    ring[5:9, 6:11] = False
    assert np.array_equal(band[0, 0].numpy(), ring)


def test_bar_in_the_pipeline_only_touches_the_band():
    pred = pipeline().predict(image(8), EXPRESSION, k=4)
    raw, refined, band = pred.raw_logits, pred.refined_logits, pred.band
    assert band.any() and (~band).any()
    assert np.array_equal(refined[~band], raw[~band])
    assert np.any(refined[band] != raw[band])
    prob = 1 / (1 + np.exp(-raw.astype(np.float64)))
    for i in range(len(raw)):
        assert np.array_equal(band[i], _band_reference(prob[i], 0.1, 3))


# --------------------------------------------------------------------------- ablation switches

# switch -> state-dict key fragments that must disappear with it (none: nothing to remove)
REMOVED = {
    "semantic_refinement": (".semantic_attn.", ".gate."),
    "semantic_gate": (".gate.",),
    "condition_refinement": (".condition_attn.",),
    "seg_to_queries": (),
    "masked_attention": (),
    "boundary_refinement": ("bar.",),
}


def test_every_switch_is_covered():
    assert set(REMOVED) == {name for name, _ in SWITCHES}


@pytest.mark.parametrize("switch", list(REMOVED))
def test_switch_off_removes_its_parameters_and_changes_the_computation(switch):
    full = pipeline()
    off = pipeline(**{switch: False})
    full_state, off_state = full.model.state_dict(), off.model.state_dict()
    removed = set(full_state) - set(off_state)
    assert set(off_state) <= set(full_state)
    assert all(any(f in k for f in REMOVED[switch]) for k in removed), sorted(removed)[:5]
    assert bool(removed) == bool(REMOVED[switch])
    for fragment in REMOVED[switch]:
        assert any(fragment in k for k in removed), fragment
    # same weights for everything they share: only the switch differs
    off.model.load_state_dict({k: full_state[k] for k in off_state}, strict=True)

    img = image(9)
    a = full.predict(img, EXPRESSION, k=3)
    b = off.predict(img, EXPRESSION, k=3)
    if switch == "boundary_refinement":
        # selection and raw masks are untouched; only the refined logits change
        assert np.array_equal(a.scores, b.scores) and np.array_equal(a.raw_logits, b.raw_logits)
        assert np.array_equal(b.refined_logits, b.raw_logits) and not b.band.any()
        assert not np.array_equal(a.refined_logits, b.refined_logits)
    else:
        assert np.abs(a.scores - b.scores).max() > 1e-6 or \
            not np.allclose(a.raw_logits, b.raw_logits)
    if switch == "condition_refinement":
        assert np.array_equal(b.conditions, b.final_conditions)
        assert not np.allclose(a.conditions, a.final_conditions)


def test_switched_off_modules_are_absent():
    model = pipeline(semantic_refinement=False, condition_refinement=False,
                     boundary_refinement=False).model
    for layer in model.decoder.layers:
        assert layer.semantic_attn is None and layer.gate is None and layer.condition_attn is None
    assert model.bar is None


def test_pooled_conditions():
    pipe = pipeline(condition_mode="pooled")
    pred = pipe.predict(image(10), EXPRESSION)
    assert pred.conditions.shape == (1, pipe.config.hidden_dim)
    tokens = pipeline().predict(image(10), EXPRESSION).conditions
    assert tokens.shape[0] == len(EXPRESSION.split()) + 2          # <p> words </p>


def test_flowseg_parameters_all_receive_gradients():
    """Nothing FlowSeg adds is dead weight: every parameter of the new parts gets a gradient
    from the deep-supervised outputs and the refined masks."""
    from engine.flowseg.images import sam_pixels, siglip_pixels
    from engine.flowseg.text import encode_prompt
    pipe = pipeline()
    model = pipe.model
    img = image(11)
    ids = torch.tensor([encode_prompt(pipe.tokenizer, pipe.config, EXPRESSION)])
    sig = siglip_pixels(img, model.siglip.config.image_size)
    sam, _ = sam_pixels(img, model.sam.config.image_size)
    try:
        model.requires_grad_(True)
        out = model(sig, sam, ids)
        loss = sum(p.mask_logits.mean() + p.class_logits.mean() for p in out.decoder.predictions)
        refined, _ = model.refine(out.mask_logits, out.mask_features)
        loss = loss + refined.mean()
        loss.backward()
        unused = [f"{part}.{n}" for part, module in model.new_parts().items()
                  for n, p in module.named_parameters() if p.grad is None]
        assert not unused, unused
    finally:
        model.zero_grad(set_to_none=True)
        model.requires_grad_(False)


# --------------------------------------------------------------------------- inputs

@pytest.mark.parametrize("bad, match", [
    (np.zeros((8, 8), np.uint8), r"\[H,W,3\]"),
    (np.zeros((8, 8, 4), np.uint8), "alpha"),
    (np.zeros((8, 8, 3), np.float32), "uint8"),
    ([[0]], "numpy array"),
])
def test_bad_images_are_explained(bad, match):
    with pytest.raises(ValueError, match=match):
        pipeline()(bad, EXPRESSION)


@pytest.mark.parametrize("expression, match", [
    ("", "non-empty"), ("   ", "non-empty"), (None, "non-empty"),
    ("the <SEG> dog", "control token"), ("a <p>dog</p>", "control token"),
    ("the <image>", "control token"),
])
def test_bad_expressions_are_explained(expression, match):
    with pytest.raises(ValueError, match=match):
        pipeline()(image(0), expression)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        pipeline().candidates(image(0), EXPRESSION, k=k)


def test_unknown_words_still_segment():
    mask = pipeline()(image(0), "zyzzyva quux")
    assert mask.shape == (40, 56)


def test_full_size_bsf_and_bar_parameter_cost_matches_the_paper():
    """The paper: BSF + BAR add 5.93M parameters to the 9-layer, d=256 decoder."""
    from engine.flowseg.config import FlowSegConfig
    from engine.flowseg.decoder import FlowSegDecoder, count_parameters
    from engine.flowseg.refine import BoundaryAwareRefinement
    cfg = FlowSegConfig()
    with torch.device("meta"):
        full = count_parameters(FlowSegDecoder(cfg))
        plain = count_parameters(FlowSegDecoder(cfg.replace(semantic_refinement=False,
                                                            condition_refinement=False)))
        bar = count_parameters(BoundaryAwareRefinement(cfg.mask_feature_size,
                                                       cfg.bar_comp_channels, cfg.bar_hidden))
    assert full - plain == 9 * (2 * (4 * 256 * 256 + 4 * 256) + (512 * 256 + 256)) == 5_918_976
    assert round((full - plain + bar) / 1e6, 2) == 5.92 and bar < 5000


def test_bfloat16_runs_and_agrees_with_float32():
    from engine.flowseg.presets import random_pipeline
    img = image(15)
    bf16 = random_pipeline("tiny", seed=0, device="cpu", dtype="bf16")
    assert bf16.dtype == torch.bfloat16
    a, b = bf16.predict(img, EXPRESSION), pipeline().predict(img, EXPRESSION)
    assert a.candidates.masks.dtype == np.bool_ and a.scores.dtype == np.float32
    assert np.abs(a.scores - b.scores).max() < 0.1
