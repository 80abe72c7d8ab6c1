"""Named sizes for random-weight FlowRVS pipelines (tests, benchmarks); nothing is downloaded.

- tiny: the tests' toy Wan layout (the real diffusers / transformers classes: a 2-layer DiT
        of width 24, a VAE of base width 8, a 2-layer UMT5 of width 32); a call takes
        milliseconds on a CPU.
- full: Wan2.1-T2V-1.3B's sizes (the DiT of 1,418,996,800 parameters, Wan's VAE with the
        tuned 1-channel conv_out, the umt5-xxl encoder of ~5.7B) with random weights, for
        GPU benchmarks: ~28 GiB while built in float32, ~14 GiB once cast to bf16.

Both use Gen2's preprocessing without DVI (16 input channels, like FlowRVS_dit_mevis.pth) by
default, and a word-level tokenizer over WORDS (the real umt5 tokenizer is not shipped
here; the prompt is zero-padded to max_sequence_length either way, so only the count of
real tokens differs).

The trained demo model (engine.flowrvs.demo) has its own sizes, DEMO_*: wider and deeper than
TINY_*, still small enough to train on a CPU.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch

PRESETS = ("tiny", "full")

# The tests' toy sizes (preset "tiny")
TINY_DIT = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12,
                in_channels=16, out_channels=16, text_dim=32, freq_dim=16, ffn_dim=32,
                num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                eps=1e-6, rope_max_seq_len=32)
TINY_VAE = dict(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                temperal_downsample=[False, True, True])
TINY_T5 = dict(vocab_size=64, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
               relative_attention_num_buckets=8, relative_attention_max_distance=16,
               pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)

# The demo model's sizes (engine.flowrvs.components.tiny_components; vocab_size and the DiT's
# in_channels are set when it is built).
DEMO_DIT = dict(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=24,
                in_channels=16, out_channels=16, text_dim=64, freq_dim=32, ffn_dim=256,
                num_layers=6, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                eps=1e-6, rope_max_seq_len=64)
DEMO_VAE = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                temperal_downsample=[False, True, True])
DEMO_T5 = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
               relative_attention_num_buckets=8, relative_attention_max_distance=16,
               pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0)

# Wan2.1-T2V-1.3B-Diffusers (transformer/, vae/ and text_encoder/ config.json)
FULL_DIT = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128,
                in_channels=16, out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960,
                num_layers=30, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                eps=1e-6, rope_max_seq_len=1024)
FULL_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2,
                temperal_downsample=[False, True, True])      # latents_mean/std: Wan's defaults
FULL_T5 = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
               num_heads=64, relative_attention_num_buckets=32,
               relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
               tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
               decoder_start_token_id=0)

WORDS = ("the a an dog cat person man woman left right on of in small big large red blue "
         "green square circle triangle moving running jumping first second which is and to "
         "from with near far top bottom").split()
FULL_MAX_SIZE = (480, 832)     # the release's resolution box


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)


def make_transformer(in_channels: int, seed: int, sizes: Optional[dict] = None):
    """A seeded WanTransformer3DModel (default: the tiny sizes)."""
    from diffusers import WanTransformer3DModel
    _seed(seed)
    model = WanTransformer3DModel(**{**(sizes or TINY_DIT), "in_channels": in_channels})
    if sizes is None:
        # A random init leaves proj_out and the modulation tables near their defaults; widen
        # the output so the velocity (and hence the mask) clearly depends on the inputs and
        # the text.
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def make_vae(out_channels: int, seed: int, encoder_from=None, sizes: Optional[dict] = None):
    """A seeded AutoencoderKLWan; out_channels=1 is the tuned mask VAE's layout."""
    from diffusers import AutoencoderKLWan
    _seed(seed)
    vae = AutoencoderKLWan(**(sizes or TINY_VAE), out_channels=out_channels)
    if encoder_from is not None:  # the tuned VAE keeps Wan's frozen encoder
        state = {k: v for k, v in encoder_from.state_dict().items()
                 if not k.startswith("decoder.")}
        vae.load_state_dict(state, strict=False)
    return vae.eval()


def make_text_encoder(seed: int, sizes: Optional[dict] = None):
    from transformers import UMT5Config, UMT5EncoderModel
    _seed(seed)
    return UMT5EncoderModel(UMT5Config(**(sizes or TINY_T5))).eval()


def make_tokenizer():
    # The same word-level tokenizer the demo model trains with (ids 0-2: <pad>, </s>, <unk>).
    from .data import build_tokenizer
    return build_tokenizer(WORDS)


def random_pipeline(preset: str, *, seed: int = 0, device=None, dtype=None, dvi: bool = False,
                    max_size: Optional[tuple] = None, **pipeline_kwargs):
    """A FlowRVSPipeline of the preset's sizes with seeded random weights.

    max_size=(h, w): the box frames are resized into (default: the release's 480x832 for
    full, 64x64 for tiny). dvi=True gives the DiT 32 input channels. pipeline_kwargs go to
    FlowRVSPipeline (offload_text_encoder=, prompt_cache_size=).
    """
    from engine.registry import pick_device
    from engine.torch_utils import as_dtype

    from .config import FlowRVSConfig
    from .pipeline import FlowRVSPipeline
    from .solver import make_scheduler

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r} (the "
                         "trained demo model loads with engine.flowrvs.demo.load_demo)")
    device = pick_device(device)
    dtype = as_dtype(dtype, device)
    in_channels = 32 if dvi else 16
    if preset == "tiny":
        sizes = dict(dit=None, vae=None, t5=None)
        max_size = max_size or (64, 64)
    else:
        sizes = dict(dit=FULL_DIT, vae=FULL_VAE, t5=FULL_T5)
        max_size = max_size or FULL_MAX_SIZE
    # Built in float32 on the target device (the full text encoder alone is 23 GB in fp32:
    # too much to build on the host first), then cast as a whole, as from_official does.
    with torch.device(device):
        transformer = make_transformer(in_channels, seed, sizes["dit"])
        vae = make_vae(1, seed + 1, sizes=sizes["vae"])
        text_encoder = make_text_encoder(seed + 2, sizes["t5"])
    config = FlowRVSConfig.for_generation(2, in_channels, 16, max_height=max_size[0],
                                          max_width=max_size[1])
    config.notes = {"source": f"engine.flowrvs.presets.random_pipeline({preset!r})",
                    "seed": seed, "weights": "random"}
    pipe = FlowRVSPipeline(transformer, vae, text_encoder, make_tokenizer(), make_scheduler(1000),
                           config, **pipeline_kwargs)
    return pipe.to(device, dtype)
