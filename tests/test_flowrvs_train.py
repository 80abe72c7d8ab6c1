"""engine.flowrvs.train: the recipe pieces (BBS, SPA, DVI, EMA), a few steps that learn,
exact resume, and the save_pretrained / from_pretrained round trip. Tiny and on CPU."""
from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from engine.flowrvs import train as tr  # noqa: E402
from engine.flowrvs.demo import write_builtin_world  # noqa: E402


@functools.lru_cache(maxsize=1)
def _data_dir() -> Path:
    root = Path(tempfile.mkdtemp(prefix="flowrvs-train-test-"))
    write_builtin_world(seed=7, count=3, out=root)
    return root


def _args(out, *extra):
    return tr.parse_args(["--data", str(_data_dir()), "--out", str(out), "--tiny",
                          "--size", "32", "32", "--threads", "1", "--seed", "3",
                          "--batch-size", "2", "--ema-decay", "0.9", *extra])


def _trainer(out, *extra):
    args = _args(out, *extra)
    torch.manual_seed(args.seed)
    data = tr.MevisData(args.data, args.num_frames, args.max_videos)
    return tr.Trainer(data, *tr.build(args, data), args)


# -- Boundary-Biased Sampling ---------------------------------------------------------------

def test_bbs_half_of_each_batch_at_the_boundary():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        t = tr.sample_timesteps(4, 0.5, g)
        assert int((t == 1000).sum()) >= 2          # exactly 2 boundary + rare u-draws of 1000
        assert t.min() >= 1 and t.max() <= 1000 and torch.equal(t, t.floor())


def test_bbs_statistics_batch_of_one():
    g = torch.Generator().manual_seed(1)
    t = torch.cat([tr.sample_timesteps(1, 0.5, g) for _ in range(4000)])
    share = float((t == 1000).float().mean())
    assert abs(share - 0.5) < 0.03                  # p = 0.5 of the draws start the trajectory
    rest = t[t < 1000]
    assert abs(float(rest.mean()) - 500) < 25        # the others ~ U{1..999}
    assert float((rest < 500).float().mean()) == pytest.approx(0.5, abs=0.04)


def test_bbs_extremes_and_validation():
    g = torch.Generator().manual_seed(2)
    assert torch.all(tr.sample_timesteps(8, 1.0, g) == 1000)
    uniform = torch.cat([tr.sample_timesteps(8, 0.0, g) for _ in range(200)])
    assert float((uniform == 1000).float().mean()) < 0.01
    with pytest.raises(ValueError, match="BBS p"):
        tr.sample_timesteps(2, 1.5, g)


# -- Start-Point Augmentation ---------------------------------------------------------------

def _latents():
    g = torch.Generator().manual_seed(4)
    mean = torch.randn(2, 16, 2, 4, 4, generator=g)
    std = torch.rand(2, 16, 2, 4, 4, generator=g) + 0.1
    lat_mean = torch.randn(1, 16, 1, 1, 1, generator=g)
    lat_std = torch.rand(1, 16, 1, 1, 1, generator=g) + 0.5
    return mean, std, lat_mean, lat_std


def test_spa_off_is_the_identity():
    mean, std, lat_mean, lat_std = _latents()
    x0 = tr.SPA(sample=False, norm_jitter=0.0).start_point(
        mean, std, lat_mean, lat_std, torch.Generator().manual_seed(0))
    assert torch.equal(x0, (mean - lat_mean) / lat_std)


def test_spa_perturbs_as_configured():
    mean, std, lat_mean, lat_std = _latents()
    base = (mean - lat_mean) / lat_std
    g = torch.Generator().manual_seed(0)
    # normalisation jitter only: x0 = (z - m - a s) / (s (1 + b)), |a|, |b| <= 0.1, per channel
    x0 = tr.SPA(sample=False, norm_jitter=0.1).start_point(mean, std, lat_mean, lat_std, g)
    assert not torch.equal(x0, base)
    b = base.abs() + 0.1                              # |x0| <= (|base| + 0.1) / 0.9
    assert torch.all(x0.abs() <= b / 0.9 + 1e-5)
    # latent sampling only: x0 - base = std * eps / lat_std, eps ~ N(0, 1)
    x0 = tr.SPA(sample=True, norm_jitter=0.0).start_point(mean, std, lat_mean, lat_std, g)
    eps = (x0 - base) * lat_std / std
    assert abs(float(eps.mean())) < 0.1 and abs(float(eps.std()) - 1) < 0.1


# -- DVI --------------------------------------------------------------------------------------

def test_dvi_changes_the_input_channels():
    words = ["the", "red", "square"]
    on = tr.tiny_components(words, dvi=True)[0]
    off = tr.tiny_components(words, dvi=False)[0]
    assert on.config.in_channels == 32 and on.patch_embedding.weight.shape[1] == 32
    assert off.config.in_channels == 16 and off.patch_embedding.weight.shape[1] == 16
    adapted = tr.dvi_transformer(off, dvi=True)    # the release's rule: copy 0-15, zero 16-31
    w = adapted.patch_embedding.weight
    assert torch.equal(w[:, :16], off.patch_embedding.weight)
    assert torch.count_nonzero(w[:, 16:]) == 0
    assert torch.equal(adapted.patch_embedding.bias, off.patch_embedding.bias)


def test_dvi_flag_of_the_trainer(tmp_path):
    assert _trainer(tmp_path / "a").transformer.config.in_channels == 32
    assert _trainer(tmp_path / "b", "--no-dvi").transformer.config.in_channels == 16


# -- EMA ------------------------------------------------------------------------------------

def test_ema_update_math():
    model = torch.nn.Linear(3, 2)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    ema = tr.EMA(model, decay=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    ema.update(model)
    for k, p in model.named_parameters():
        assert torch.allclose(ema.shadow[k], 0.9 * before[k] + 0.1 * p.detach())
    ema.update(model)
    for k, p in model.named_parameters():
        expect = 0.9 * (0.9 * before[k] + 0.1 * p.detach()) + 0.1 * p.detach()
        assert torch.allclose(ema.shadow[k], expect)
    target = torch.nn.Linear(3, 2)
    ema.copy_to(target)
    assert torch.equal(target.weight, ema.shadow["weight"])


# -- flow objective and training ------------------------------------------------------------

def test_flow_pair_follows_the_release_convention():
    x0, x1 = torch.full((2, 1, 1, 1, 1), 3.0), torch.full((2, 1, 1, 1, 1), -1.0)
    x_t, u = tr.flow_pair(x0, x1, torch.tensor([1000.0, 250.0]))
    assert x_t.flatten().tolist() == [3.0, 0.0]      # t=1: the video; t=0.25: 0.25*3 - 0.75
    assert torch.all(u == 4.0)                       # u = x0 - x1


def test_a_few_steps_reduce_the_flow_loss(tmp_path):
    t = _trainer(tmp_path, "--lr", "2e-3", "--no-spa-sample", "--spa-norm-jitter", "0")
    losses = [t.step() for _ in range(40)]
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:8])


def test_a_few_vae_steps_reduce_the_loss(tmp_path):
    t = _trainer(tmp_path, "--stage", "vae", "--lr", "2e-3", "--batch-size", "1")
    losses = [t.step() for _ in range(12)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_resume_continues_identically(tmp_path):
    straight = _trainer(tmp_path / "s")
    expected = [straight.step() for _ in range(6)]
    first = _trainer(tmp_path / "r")
    head = [first.step() for _ in range(3)]
    first.save(tmp_path / "r" / tr.CHECKPOINT)
    torch.manual_seed(12345)                          # a fresh process: other global RNG state
    second = _trainer(tmp_path / "r")
    second.load(tmp_path / "r" / tr.CHECKPOINT)
    assert second.step_count == 3
    tail = [second.step() for _ in range(3)]
    assert head + tail == expected
    for k, v in straight.ema.shadow.items():
        assert torch.equal(v, second.ema.shadow[k])


def test_resume_refuses_another_stage(tmp_path):
    t = _trainer(tmp_path)
    t.save(tmp_path / tr.CHECKPOINT)
    other = _trainer(tmp_path, "--stage", "vae")
    with pytest.raises(ValueError, match="'flow' checkpoint"):
        other.load(tmp_path / tr.CHECKPOINT)


def test_trained_model_saves_and_loads_with_from_pretrained(tmp_path):
    from engine.flowrvs import FlowRVSPipeline
    t = _trainer(tmp_path / "run")
    for _ in range(2):
        t.step()
    pipe = t.pipeline()
    assert pipe.vae.config.out_channels == 1          # the tuned_vae layout: mask row only
    pipe.save_pretrained(tmp_path / "pipe")
    assert list((tmp_path / "pipe" / "transformer").glob("*.safetensors"))
    loaded = FlowRVSPipeline.from_pretrained(tmp_path / "pipe", device="cpu")
    assert loaded.config.dvi and loaded.config.max_height == 32
    frames, _, expression = t.data.clip(0)
    a = pipe(frames, expression, return_probs=True)
    b = loaded(frames, expression, return_probs=True)
    assert a.shape == frames.shape[:3]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_mevis_reader_unions_objects_and_swaps_left_right(tmp_path):
    data = tr.MevisData(_data_dir(), num_frames=5)
    s = data.samples[0]
    frames, target, _ = data.clip(0)
    assert frames.shape == (5, 64, 64, 3) and target.shape == (5, 64, 64) and target.any()
    flipped_frames, flipped, _ = data.clip(0, flip=True)
    assert np.array_equal(flipped, target[:, :, ::-1])
    assert tr.swap_left_right("the square moving left, not right") == \
        "the square moving right, not left"
    s2 = tr.Sample(s.vid, "x", "both", tuple(a for a in data.mask_dict if a.startswith(s.vid)))
    union = data.target(s2, (5, 64, 64))
    assert union.sum() >= target.sum()
    with pytest.raises(ValueError, match="4k\\+1"):
        tr.MevisData(_data_dir(), num_frames=4)


# -- the shipped demo weights ---------------------------------------------------------------

def test_demo_weights_fit_the_budget_and_segment():
    from engine.flowrvs import demo
    assert (demo.DEMO_DIR / "flowrvs_config.json").is_file(), "the shipped demo weights are missing"
    size = sum(p.stat().st_size for p in demo.DEMO_DIR.rglob("*") if p.is_file())
    assert size <= 12 * 2 ** 20
    assert not list(demo.DEMO_DIR.rglob("*.bin")) and list(demo.DEMO_DIR.rglob("*.safetensors"))
    seg = demo.load_demo("cpu")
    from engine.demo_world import video_samples
    frames, expression, mask = next(iter(video_samples(seed=99, count=1)))
    out = seg.segment_video(frames, expression)
    assert out.dtype == bool and out.shape == mask.shape
    assert seg.segment_image(frames[0], expression).shape == mask.shape[1:]
