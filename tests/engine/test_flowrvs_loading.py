"""FlowRVS loading: every official checkpoint layout, strictness, the Wan folder in both
layouts, generation detection, and the project's own save_pretrained format."""
import json

import numpy as np
import pytest
import torch

from engine.flowrvs import FlowRVSPipeline
from engine.flowrvs.checkpoints import CheckpointError, resolve_wan_dir
from tests.helpers.flowrvs_fixtures import MAX_SIZE, assets, pipeline, video


def _load(dit, vae="vae_model", wan=None, **kw):
    a = assets()
    return FlowRVSPipeline.from_official(wan or a.wan, a.files[dit],
                                         a.files[vae] if vae else None, device="cpu",
                                         max_size=MAX_SIZE, **kw)


def _same_weights(model, reference):
    ref = reference.state_dict()
    got = model.state_dict()
    assert list(got) == list(ref)
    for k in ref:
        assert torch.equal(got[k], ref[k]), k


@pytest.mark.parametrize("channels", [16, 32])
@pytest.mark.parametrize("layout", ["bare", "module", "model", "model_module", "ema",
                                    "ema_diffusers_order"])
def test_every_dit_layout_loads_the_same_weights(channels, layout):
    pipe = _load(f"dit{channels}_{layout}")
    _same_weights(pipe.transformer, assets().models[channels])
    assert pipe.transformer.config.in_channels == channels
    assert pipe.config.in_channels == channels
    assert pipe.config.dvi == (channels == 32)


def test_generation_follows_the_input_channels():
    gen2 = _load("dit16_model").config
    assert (gen2.generation, gen2.frame_mean, gen2.frame_std) == (2, (0.5,) * 3, (0.5,) * 3)
    assert not gen2.unnormalize_mask_latent and gen2.max_sequence_length == 256
    gen1 = _load("dit32_model").config
    assert gen1.generation == 1 and gen1.unnormalize_mask_latent
    assert gen1.frame_mean == (0.485, 0.456, 0.406) and gen1.frame_std == (0.229, 0.224, 0.225)
    assert gen1.max_sequence_length == 64
    # a Gen2 checkpoint trained with DVI: say so explicitly
    forced = _load("dit32_model", generation=2, max_sequence_length=128).config
    assert forced.generation == 2 and forced.dvi and forced.max_sequence_length == 128


def test_auto_prefers_model_over_ema_like_the_release_scripts():
    a = assets()
    _same_weights(_load("dit32_model_and_ema").transformer, a.models[32])
    _same_weights(_load("dit32_model_and_ema", weights="ema").transformer, a.models["other32"])
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        _load("dit32_ema", weights="model")


def test_profiler_buffers_are_ignored_as_in_the_release():
    _same_weights(_load("dit16_thop").transformer, assets().models[16])


def test_missing_key_is_named_with_the_file():
    with pytest.raises(CheckpointError) as err:
        _load("dit16_missing")
    msg = str(err.value)
    assert "dit16_missing.pth" in msg and "missing 1 key" in msg
    assert "blocks.1.ffn.net.2.bias" in msg


def test_unexpected_key_is_named_with_the_file():
    with pytest.raises(CheckpointError) as err:
        _load("dit16_unexpected")
    msg = str(err.value)
    assert "dit16_unexpected.pth" in msg and "unexpected 1 key" in msg
    assert "blocks.0.attn2.extra_gate" in msg


def test_wrong_shape_is_named(tmp_path):
    sd = dict(assets().models[16].state_dict())
    sd["proj_out.bias"] = torch.zeros(7)
    torch.save(sd, tmp_path / "shape.pth")
    with pytest.raises(CheckpointError, match=r"shape.pth.*proj_out.bias \(7,\)"):
        FlowRVSPipeline.from_official(assets().wan, tmp_path / "shape.pth", device="cpu")


def test_tuned_vae_layouts_and_strictness():
    a = assets()
    for name in ("vae_model", "vae_bare"):
        pipe = _load("dit16_model", vae=name)
        _same_weights(pipe.vae, a.models["tuned_vae"])
        assert pipe.vae.decoder.conv_out.weight.shape[:2] == (1, 8)
    with pytest.raises(CheckpointError, match=r"tuned_vae_missing.pth.*decoder.conv_out.bias"):
        _load("dit16_model", vae="vae_missing")


def test_without_tuned_vae_the_stock_wan_vae_decodes():
    pipe = _load("dit16_model", vae=None)
    assert pipe.vae.config.out_channels == 3
    out = pipe(video(5), "the red square")
    assert out.shape == (5, 40, 60) and out.dtype == np.bool_


def test_not_a_checkpoint(tmp_path):
    torch.save({"optimizer": {"lr": 1}}, tmp_path / "junk.pth")
    with pytest.raises(CheckpointError, match=r"junk.pth.*no DiT weights.*optimizer"):
        FlowRVSPipeline.from_official(assets().wan, tmp_path / "junk.pth", device="cpu")
    torch.save({"model": {"foo.weight": torch.zeros(2)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="patch_embedding.weight"):
        FlowRVSPipeline.from_official(assets().wan, tmp_path / "other.pth", device="cpu")


def test_wrong_channel_count_is_explained(tmp_path):
    from tests.helpers.flowrvs_fixtures import make_transformer
    torch.save(make_transformer(8, seed=0).state_dict(), tmp_path / "ch8.pth")
    with pytest.raises(CheckpointError, match="8 input channels.*16 \\(no DVI\\) or 32"):
        FlowRVSPipeline.from_official(assets().wan, tmp_path / "ch8.pth", device="cpu")


def test_hugging_face_cache_layout_resolves_without_downloading(monkeypatch):
    a = assets()
    snap = a.hf_entry / "snapshots"
    expected = next(snap.iterdir())
    assert resolve_wan_dir(a.hf_entry) == expected            # models--Org--Name
    assert resolve_wan_dir(a.hf_cache) == expected            # the hub cache root
    assert resolve_wan_dir(expected) == expected              # the snapshot itself
    monkeypatch.setenv("HF_HUB_CACHE", str(a.hf_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_wan_dir("Wan-AI/Wan2.1-T2V-1.3B-Diffusers") == expected  # a cached repo id
    with pytest.raises(FileNotFoundError, match="never downloads"):
        resolve_wan_dir("Nobody/Not-Cached")
    from_cache = _load("dit16_model", wan=a.hf_entry)
    from_dir = _load("dit16_model")
    frames = video(5)
    assert np.array_equal(from_cache(frames, "the dog", return_probs=True),
                          from_dir(frames, "the dog", return_probs=True))


def test_incomplete_wan_dir_names_what_is_missing(tmp_path):
    import shutil
    broken = tmp_path / "wan"
    shutil.copytree(assets().wan, broken)
    shutil.rmtree(broken / "text_encoder")
    with pytest.raises(FileNotFoundError, match="lacks text_encoder/"):
        FlowRVSPipeline.from_official(broken, assets().files["dit16_model"], device="cpu")
    with pytest.raises(FileNotFoundError, match="not a Wan2.1 Diffusers folder"):
        FlowRVSPipeline.from_official(tmp_path, assets().files["dit16_model"], device="cpu")


def test_save_pretrained_round_trip(tmp_path):
    pipe = pipeline()
    pipe.save_pretrained(tmp_path / "flowrvs")
    for sub in ("transformer", "vae", "text_encoder", "tokenizer", "scheduler"):
        assert (tmp_path / "flowrvs" / sub).is_dir()
    config = json.loads((tmp_path / "flowrvs" / "flowrvs_config.json").read_text())
    assert config["in_channels"] == 32 and config["generation"] == 1 and config["dvi"]
    assert config["max_sequence_length"] == 64
    assert (config["max_height"], config["max_width"]) == MAX_SIZE
    assert config["frame_mean"] == [0.485, 0.456, 0.406] and config["unnormalize_mask_latent"]
    loaded = FlowRVSPipeline.from_pretrained(tmp_path / "flowrvs", device="cpu")
    assert loaded.config == pipe.config
    frames = video(7, 37, 53)
    for kw in ({}, {"num_steps": 3, "schedule": "mevis"}):
        assert np.array_equal(loaded(frames, "the big dog", return_probs=True, **kw),
                              pipe(frames, "the big dog", return_probs=True, **kw))


def test_from_pretrained_on_a_wrong_folder_teaches(tmp_path):
    with pytest.raises(FileNotFoundError, match="from_official"):
        FlowRVSPipeline.from_pretrained(tmp_path, device="cpu")
