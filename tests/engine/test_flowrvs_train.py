"""engine.flowrvs training: the recipe pieces (BBS, SPA, DVI, EMA, the unclamped decode), a
few steps that learn, exact resume, the save_pretrained / from_pretrained round trip, and the
CLI (every training command of the demo recipe parses). Tiny and on CPU."""
from __future__ import annotations

import dataclasses
import functools
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.flowrvs import components, losses
from engine.flowrvs.data import MevisData, Sample, swap_left_right
from engine.flowrvs.ema import EMA
from engine.flowrvs.trainer import CHECKPOINT, TrainConfig, Trainer


@functools.lru_cache(maxsize=1)
def _data_dir() -> Path:
    from engine.demo_world import write_video_dataset
    root = Path(tempfile.mkdtemp(prefix="flowrvs-train-test-")) / "data"
    write_video_dataset(root, seed=7, count=3, frames=5, size=64)
    return root


def _config(out, **changes) -> TrainConfig:
    base = dict(tiny=True, size=(32, 32), threads=1, seed=3, batch_size=2, ema_decay=0.9)
    return TrainConfig(data=str(_data_dir()), out=str(out), **{**base, **changes})


def _trainer(out, **changes):
    config = _config(out, **changes)
    torch.manual_seed(config.seed)
    data = MevisData(config.data, config.num_frames, config.max_videos)
    return Trainer(data, *components.build(config, data), config)


# -- Boundary-Biased Sampling ---------------------------------------------------------------

def test_bbs_half_of_each_batch_at_the_boundary():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        t = losses.sample_timesteps(4, 0.5, g)
        assert int((t == 1000).sum()) >= 2          # exactly 2 boundary + rare u-draws of 1000
        assert t.min() >= 1 and t.max() <= 1000 and torch.equal(t, t.floor())


def test_bbs_statistics_batch_of_one():
    g = torch.Generator().manual_seed(1)
    t = torch.cat([losses.sample_timesteps(1, 0.5, g) for _ in range(4000)])
    share = float((t == 1000).float().mean())
    assert abs(share - 0.5) < 0.03                  # p = 0.5 of the draws start the trajectory
    rest = t[t < 1000]
    assert abs(float(rest.mean()) - 500) < 25        # the others ~ U{1..999}
    assert float((rest < 500).float().mean()) == pytest.approx(0.5, abs=0.04)


def test_bbs_extremes_and_validation():
    g = torch.Generator().manual_seed(2)
    assert torch.all(losses.sample_timesteps(8, 1.0, g) == 1000)
    uniform = torch.cat([losses.sample_timesteps(8, 0.0, g) for _ in range(200)])
    assert float((uniform == 1000).float().mean()) < 0.01
    with pytest.raises(ValueError, match="BBS p"):
        losses.sample_timesteps(2, 1.5, g)


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
    x0 = losses.SPA(sample=False, norm_jitter=0.0).start_point(
        mean, std, lat_mean, lat_std, torch.Generator().manual_seed(0))
    assert torch.equal(x0, (mean - lat_mean) / lat_std)


def test_spa_perturbs_as_configured():
    mean, std, lat_mean, lat_std = _latents()
    base = (mean - lat_mean) / lat_std
    g = torch.Generator().manual_seed(0)
    # normalisation jitter only: x0 = (z - m - a s) / (s (1 + b)), |a|, |b| <= 0.1, per channel
    x0 = losses.SPA(sample=False, norm_jitter=0.1).start_point(mean, std, lat_mean, lat_std, g)
    assert not torch.equal(x0, base)
    b = base.abs() + 0.1                              # |x0| <= (|base| + 0.1) / 0.9
    assert torch.all(x0.abs() <= b / 0.9 + 1e-5)
    # latent sampling only: x0 - base = std * eps / lat_std, eps ~ N(0, 1)
    x0 = losses.SPA(sample=True, norm_jitter=0.0).start_point(mean, std, lat_mean, lat_std, g)
    eps = (x0 - base) * lat_std / std
    assert abs(float(eps.mean())) < 0.1 and abs(float(eps.std()) - 1) < 0.1


# -- DVI --------------------------------------------------------------------------------------

def test_dvi_changes_the_input_channels():
    words = ["the", "red", "square"]
    on = components.tiny_components(words, dvi=True)[0]
    off = components.tiny_components(words, dvi=False)[0]
    assert on.config.in_channels == 32 and on.patch_embedding.weight.shape[1] == 32
    assert off.config.in_channels == 16 and off.patch_embedding.weight.shape[1] == 16
    adapted = components.dvi_transformer(off, dvi=True)    # the release's rule: copy 0-15, zero 16-31
    w = adapted.patch_embedding.weight
    assert torch.equal(w[:, :16], off.patch_embedding.weight)
    assert torch.count_nonzero(w[:, 16:]) == 0
    assert torch.equal(adapted.patch_embedding.bias, off.patch_embedding.bias)


def test_dvi_flag_of_the_trainer(tmp_path):
    assert _trainer(tmp_path / "a").transformer.config.in_channels == 32
    assert _trainer(tmp_path / "b", dvi=False).transformer.config.in_channels == 16


# -- EMA ------------------------------------------------------------------------------------

def test_ema_update_math():
    model = torch.nn.Linear(3, 2)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    ema = EMA(model, decay=0.9)
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


# -- the unclamped decode -------------------------------------------------------------------

def _loud_vae():
    """A seeded tiny mask VAE whose output head is scaled so decoded pixels go beyond +-1."""
    from diffusers import AutoencoderKLWan

    from engine.flowrvs.presets import TINY_VAE
    torch.manual_seed(0)
    vae = AutoencoderKLWan(**TINY_VAE, out_channels=1).eval()
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(50)
    return vae


def test_decode_unclamped_is_vae_decode_before_its_clamp():
    """Pins the diffusers route decode_unclamped takes (a hook on vae.decoder inside
    vae.decode): a diffusers release that decodes differently fails here."""
    vae = _loud_vae()
    z = torch.randn(2, 16, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = losses.decode_unclamped(vae, z)
        clamped = vae.decode(z).sample
    assert out.shape == clamped.shape == (2, 1, 9, 32, 32)
    assert out.abs().max() > 1.5 and (out.abs() > 1).float().mean() > 0.05
    assert torch.equal(out.clamp(-1, 1), clamped)
    again = losses.decode_unclamped(vae, z)            # the hook is gone: no double capture
    assert torch.equal(again, out)


def test_decode_unclamped_keeps_the_gradient_beyond_the_clamp():
    vae = _loud_vae()
    z = torch.randn(1, 16, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    out = losses.decode_unclamped(vae, z)
    target = -torch.sign(out.detach())                 # every pixel on the wrong side
    losses.mask_loss(out, target).backward()
    grad = vae.decoder.conv_out.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_decode_unclamped_refuses_sliced_decoding():
    vae = _loud_vae()
    vae.enable_slicing()
    with pytest.raises(RuntimeError, match="one call per frame"):
        losses.decode_unclamped(vae, torch.zeros(2, 16, 2, 4, 4))


# -- flow objective and training ------------------------------------------------------------

def test_flow_pair_follows_the_release_convention():
    x0, x1 = torch.full((2, 1, 1, 1, 1), 3.0), torch.full((2, 1, 1, 1, 1), -1.0)
    x_t, u = losses.flow_pair(x0, x1, torch.tensor([1000.0, 250.0]))
    assert x_t.flatten().tolist() == [3.0, 0.0]      # t=1: the video; t=0.25: 0.25*3 - 0.75
    assert torch.all(u == 4.0)                       # u = x0 - x1


def test_a_few_steps_reduce_the_flow_loss(tmp_path):
    t = _trainer(tmp_path, lr=2e-3, no_spa_sample=True, spa_norm_jitter=0.0)
    losses = [t.step() for _ in range(40)]
    assert np.mean(losses[-8:]) < 0.7 * np.mean(losses[:8])


def test_a_few_vae_steps_reduce_the_loss(tmp_path):
    t = _trainer(tmp_path, stage="vae", lr=2e-3, batch_size=1)
    losses = [t.step() for _ in range(12)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_resume_continues_identically(tmp_path):
    straight = _trainer(tmp_path / "s")
    expected = [straight.step() for _ in range(6)]
    first = _trainer(tmp_path / "r")
    head = [first.step() for _ in range(3)]
    first.save(tmp_path / "r" / CHECKPOINT)
    torch.manual_seed(12345)                          # a fresh process: other global RNG state
    second = _trainer(tmp_path / "r")
    second.load(tmp_path / "r" / CHECKPOINT)
    assert second.step_count == 3
    tail = [second.step() for _ in range(3)]
    assert head + tail == expected
    for k, v in straight.ema.shadow.items():
        assert torch.equal(v, second.ema.shadow[k])


def test_checkpoint_holds_the_config(tmp_path):
    t = _trainer(tmp_path, lr=2e-3)
    t.step()
    t.save(tmp_path / CHECKPOINT)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=False)
    assert state["config"] == dataclasses.asdict(t.config)
    assert TrainConfig.from_dict(state["config"]) == t.config
    # a checkpoint from before TrainConfig (vars(argparse.Namespace) under "args") resumes too
    state["args"] = {k: list(v) if isinstance(v, tuple) else v
                     for k, v in state.pop("config").items()}
    torch.save(state, tmp_path / "old.pt")
    again = _trainer(tmp_path, lr=2e-3)
    again.load(tmp_path / "old.pt")
    assert again.step_count == 1 and again.losses == t.losses


def test_resume_refuses_another_stage(tmp_path):
    t = _trainer(tmp_path)
    t.save(tmp_path / CHECKPOINT)
    other = _trainer(tmp_path, stage="vae")
    with pytest.raises(ValueError, match="'flow' checkpoint"):
        other.load(tmp_path / CHECKPOINT)


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
    data = MevisData(_data_dir(), num_frames=5)
    s = data.samples[0]
    frames, target, _ = data.clip(0)
    assert frames.shape == (5, 64, 64, 3) and target.shape == (5, 64, 64) and target.any()
    flipped_frames, flipped, _ = data.clip(0, flip=True)
    assert np.array_equal(flipped, target[:, :, ::-1])
    assert swap_left_right("the square moving left, not right") == \
        "the square moving right, not left"
    every = {a for e in data.videos[s.vid]["expressions"].values() for a in e["anno_id"]}
    s2 = Sample(s.vid, "x", "both", tuple(sorted(every)))
    union = data.target(s2, (5, 64, 64))
    assert union.sum() >= target.sum()
    with pytest.raises(ValueError, match="4k\\+1"):
        MevisData(_data_dir(), num_frames=4)


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


def test_demo_world_command_writes_what_training_reads(tmp_path, capsys):
    from engine.flowrvs import demo
    assert demo.main(["world", "--seed", "4", "--count", "2", "--out", str(tmp_path / "w")]) == 0
    assert "wrote 2 videos" in capsys.readouterr().out
    data = MevisData(tmp_path / "w", num_frames=9)
    frames, target, expression = data.clip(0)
    assert frames.shape == (9, 64, 64, 3) and target.any() and expression
