"""FlowRVS pieces on their own: prompt cleaning, resize rule, 4k+1 padding, schedules,
window planning, the prompt cache, the config file, EMA naming."""
import numpy as np
import pytest
import torch

from engine.flowrvs.config import FlowRVSConfig
from engine.flowrvs.frames import model_size, pad_to_4k1, padded_length
from engine.flowrvs.solver import make_scheduler, mevis_timesteps, schedule_timesteps, solve_flow
from engine.flowrvs.text import PromptCache, clean_prompt
from engine.flowrvs.windows import Blender, check_window, plan_windows


@pytest.mark.parametrize("raw,clean", [
    ("  the   dog\n on\tthe left ", "the dog on the left"),
    ("the &quot;big&quot; dog", "the big dog"),           # unescaped, then quotes dropped
    ('a "quoted" \\ back\\slash', "a quoted  backslash"),  # not collapsed again: not idempotent
    ("caf&eacute; &amp; bar", "café & bar"),
    ("x&nbsp;y", "x\xa0y"),                               # whitespace collapses before unescape
])
def test_clean_prompt_matches_the_release_order(raw, clean):
    assert clean_prompt(raw) == clean


@pytest.mark.parametrize("hw,expected", [
    ((720, 1280), (464, 832)),      # the reference's example
    ((480, 832), (480, 832)),
    ((1080, 1920), (464, 832)),
    ((1920, 1080), (480, 256)),     # portrait: 1080 * 480/1920 = 270 -> 256
    ((100, 100), (480, 480)),       # small frames are scaled up, as in the release
    ((360, 640), (464, 832)),
])
def test_model_size_rule(hw, expected):
    assert model_size(*hw) == expected


def test_padding_to_4k_plus_1_repeats_the_last_frame():
    assert [padded_length(n) for n in (1, 2, 4, 5, 6, 9, 10, 81)] == [1, 5, 5, 5, 9, 9, 13, 81]
    x = torch.arange(6.0).view(6, 1)
    assert pad_to_4k1(x).flatten().tolist() == [0, 1, 2, 3, 4, 5, 5, 5, 5]
    assert pad_to_4k1(x[:5]).shape[0] == 5


def test_schedules():
    assert mevis_timesteps(4) == [1000.0, 900.0, 750.0, 501.0]
    assert mevis_timesteps(1) == [1000.0]
    sched = make_scheduler()
    t, s = schedule_timesteps(sched, "official", 1)
    assert t.tolist() == [1000.0] and s.tolist() == [1.0, 0.0]
    t, s = schedule_timesteps(sched, "linear", 4)
    np.testing.assert_allclose(t.numpy(), [1000, 667, 334, 1], atol=1e-3)
    np.testing.assert_allclose(s.numpy(), [1, 0.667, 0.334, 0.001, 0], atol=1e-6)
    t, s = schedule_timesteps(sched, "mevis", 4)
    assert t.tolist() == [1000.0, 900.0, 750.0, 501.0]
    np.testing.assert_allclose(s.numpy(), [1, 0.9, 0.75, 0.501, 0], atol=1e-6)


def test_one_euler_step_is_z0_minus_v():
    z0 = torch.randn(1, 4, 2, 3, 3)
    v = torch.randn_like(z0)
    out = solve_flow(lambda z, t: v, z0, torch.tensor([1000.0]), torch.tensor([1.0, 0.0]))
    assert torch.equal(out, z0 - v)
    seen = []
    solve_flow(lambda z, t: v, z0, torch.tensor([1000.0, 500.0]), torch.tensor([1.0, 0.5, 0.0]),
               callback=lambda i, t, z: seen.append((i, float(t))))
    assert seen == [(0, 1000.0), (1, 500.0)]
    with pytest.raises(ValueError, match="one more sigma"):
        solve_flow(lambda z, t: v, z0, torch.tensor([1000.0]), torch.tensor([1.0]))


@pytest.mark.parametrize("T,window,overlap", [(13, 9, 2), (17, 9, 2), (100, 17, 4),
                                              (82, 81, 20), (30, 5, 1), (200, 33, 0)])
def test_plan_windows_covers_with_full_windows(T, window, overlap):
    wins = plan_windows(T, window, overlap)
    assert wins[0].start == 0 and wins[-1].stop == T
    assert all(len(w) == window for w in wins)
    for a, b in zip(wins, wins[1:]):
        assert b.start > a.start and a.stop - b.start >= overlap
    cover = np.zeros(T)
    for w in wins:
        assert (w.weights > 0).all() and (w.weights <= 1).all()
        cover[w.start:w.stop] += w.weights
    if all(a.stop <= c.start for a, c in zip(wins, wins[2:])):   # at most 2 windows per frame
        np.testing.assert_allclose(cover, 1.0)


def test_short_clip_is_one_window_and_window_must_be_4k_plus_1():
    (w,) = plan_windows(7, 81, 20)
    assert (w.start, w.stop) == (0, 7) and (w.weights == 1).all()
    for bad in (0, 2, 8, 80, 9.0, True):
        with pytest.raises(ValueError, match="4k\\+1"):
            check_window(bad)


def test_blender_single_contribution_is_exact():
    out = np.zeros((3, 2, 2), np.float32)
    b = Blender(out, 0.5)
    p = np.full((2, 2), 0.3, np.float32)
    b.add(0, p, 0.123)
    b.add(1, p, 0.25)
    b.add(1, np.full((2, 2), 0.9, np.float32), 0.75)
    b.finish_before(1)
    assert (out[0] == p).all() and (out[1] == 0).all()
    b.finish()
    np.testing.assert_allclose(out[1], 0.75, rtol=1e-6)
    masks = np.zeros((1, 2, 2), bool)
    b = Blender(masks, 0.5)
    b.add(0, np.array([[0.5, 0.51], [0.2, 0.9]], np.float32), 1.0)
    b.finish()
    assert masks[0].tolist() == [[False, True], [False, True]]


def test_prompt_cache_is_a_small_lru_keyed_by_cleaned_text():
    cache = PromptCache(maxsize=2)
    cache.put("the dog", 256, torch.ones(1))
    assert cache.get("  the  dog ", 256) is not None
    assert cache.get("the dog", 64) is None               # the text length is part of the key
    cache.put("a", 256, torch.ones(1))
    cache.get("the dog", 256)                             # refresh
    cache.put("b", 256, torch.ones(1))                    # evicts "a"
    assert cache.get("a", 256) is None and cache.get("the dog", 256) is not None
    assert len(cache) == 2


def test_config_round_trip_and_validation(tmp_path):
    c = FlowRVSConfig.for_generation(1, 32, max_height=240, max_width=416)
    c.save(tmp_path)
    assert FlowRVSConfig.load(tmp_path) == c
    assert c.dvi and c.unnormalize_mask_latent and c.max_sequence_length == 64
    with pytest.raises(ValueError, match="16 \\(no DVI\\) or 32"):
        FlowRVSConfig(in_channels=20)
    with pytest.raises(ValueError, match="generation must be 1 or 2"):
        FlowRVSConfig.for_generation(3, 16)
    (tmp_path / "flowrvs_config.json").write_text('{"format_version": 99}')
    with pytest.raises(ValueError, match="Update FlowLabel"):
        FlowRVSConfig.load(tmp_path)


def test_config_refuses_unknown_keys_naming_them_and_the_file(tmp_path):
    import json
    import re
    path = FlowRVSConfig.for_generation(2, 16).save(tmp_path)
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "mystery": 1, "cfg_scale": 2.0}))
    with pytest.raises(ValueError, match=re.escape(f"{path} has unknown fields "
                                                   "['cfg_scale', 'mystery']")):
        FlowRVSConfig.load(tmp_path)
    path.write_text(json.dumps({**saved, "dvi": True}))   # to_dict's derived key must agree
    with pytest.raises(ValueError, match="dvi=True but in_channels=16"):
        FlowRVSConfig.load(tmp_path)


def test_shipped_demo_config_loads():
    from engine.flowrvs.demo import DEMO_DIR
    config = FlowRVSConfig.load(DEMO_DIR)
    assert config.dvi and config.notes["source"] == "engine.flowrvs.train"


def test_ema_shadow_naming_rejects_a_foreign_architecture(tmp_path):
    from engine.flowrvs.checkpoints import CheckpointError, shadow_to_state_dict
    from tests.helpers.flowrvs_fixtures import assets, ema_state
    model = assets().models[16]
    shadow = ema_state(model)["shadow_params"]
    with pytest.raises(CheckpointError, match="has 3 tensors but the DiT has"):
        shadow_to_state_dict(shadow[:3], model, "x.pth")
    swapped = list(shadow)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(CheckpointError, match="fits neither"):
        shadow_to_state_dict(swapped, model, "x.pth")


def test_default_window_on_cpu_and_from_cuda_memory(monkeypatch):
    from tests.helpers.flowrvs_fixtures import pipeline
    pipe = pipeline("dit16_model")
    assert pipe.default_window((720, 1280)) == 81
    monkeypatch.setattr(type(pipe), "device", property(lambda self: torch.device("cuda")))
    monkeypatch.setattr(pipe.config, "max_height", 480)     # the release's box
    monkeypatch.setattr(pipe.config, "max_width", 832)
    gib = 1 << 30
    for free, expected_range in ((80 * gib, (161, 161)), (20 * gib, (5, 161)), (1 * gib, (5, 5))):
        monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None, f=free: (f, 80 * gib))
        w = pipe.default_window((480, 832))
        assert expected_range[0] <= w <= expected_range[1] and (w - 1) % 4 == 0
