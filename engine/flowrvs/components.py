"""The models a FlowRVS training run starts from: tiny and random (the demo's sizes), the
official weights, or a save_pretrained folder; and the two layout changes fine-tuning needs
(DVI input channels, the 1-channel mask decoder)."""
from __future__ import annotations

from typing import Optional

import torch

from .data import MevisData, build_tokenizer
from .presets import DEMO_DIT, DEMO_T5, DEMO_VAE


def tiny_components(words, dvi: bool = True, seed: int = 0, vae_out_channels: int = 4):
    """Seeded tiny transformer / VAE / UMT5 / tokenizer (the demo model's sizes)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(words)
    transformer = WanTransformer3DModel(**{**DEMO_DIT, "in_channels": 32 if dvi else 16})
    vae = AutoencoderKLWan(**DEMO_VAE, out_channels=vae_out_channels)
    return transformer, vae, tiny_text_encoder(tokenizer), tokenizer


def tiny_text_encoder(tokenizer):
    from transformers import UMT5Config, UMT5EncoderModel
    return UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), **DEMO_T5))


def _plain(config) -> dict:
    """A model config without diffusers' private keys: `_use_default_values` would make
    from_config drop values changed with register_to_config (e.g. latents_mean)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def mask_vae(vae, row: Optional[int] = None):
    """The VAE with a 1-channel conv_out: row `row` of the current conv_out, or (row=None)
    the mean of its rows (the start of the release's decoder tuning)."""
    from diffusers import AutoencoderKLWan
    conv = vae.decoder.conv_out
    if conv.out_channels == 1:
        return vae
    new = AutoencoderKLWan.from_config({**_plain(vae.config), "out_channels": 1})
    state = vae.state_dict()
    w, b = state["decoder.conv_out.weight"], state["decoder.conv_out.bias"]
    if row is None:
        state["decoder.conv_out.weight"], state["decoder.conv_out.bias"] = \
            w.mean(0, keepdim=True), b.mean(0, keepdim=True)
    else:
        state["decoder.conv_out.weight"], state["decoder.conv_out.bias"] = \
            w[row:row + 1].clone(), b[row:row + 1].clone()
    new.load_state_dict(state, strict=True)
    return new.to(next(vae.parameters()).device)


def dvi_transformer(transformer, dvi: bool):
    """Adapt base weights to DVI (32 input channels): copy them into channels 0-15, zero
    16-31, keep the bias (the release's rule). No-op when the channels already match."""
    from diffusers import WanTransformer3DModel
    z = transformer.config.out_channels
    want = 2 * z if dvi else z
    if transformer.config.in_channels == want:
        return transformer
    if not dvi:
        raise ValueError(f"the checkpoint takes {transformer.config.in_channels} input channels "
                         "(DVI); fine-tune it with --dvi, or start from a 16-channel one")
    new = WanTransformer3DModel.from_config({**_plain(transformer.config), "in_channels": want})
    state = transformer.state_dict()
    w = state["patch_embedding.weight"]
    state["patch_embedding.weight"] = torch.cat([w, torch.zeros_like(w)], dim=1)
    new.load_state_dict(state, strict=True)
    return new


def _vocabulary(config, data: MevisData) -> list[str]:
    words = set(data.vocabulary())
    if config.demo_world_vocabulary:
        from engine.demo_world import VOCABULARY
        words.update(VOCABULARY)
    return sorted(words)


def build(config, data: MevisData):
    """-> (transformer, vae, text_encoder, tokenizer) per the run's weight sources
    (a trainer.TrainConfig: tiny, wan_dir + dit_checkpoint, vae_from, resume_from_pipeline)."""
    if config.vae_from or config.resume_from_pipeline:
        from .pipeline import FlowRVSPipeline
        src = config.resume_from_pipeline or config.vae_from
        pipe = FlowRVSPipeline.from_pretrained(src, device="cpu")
        vae, text_encoder, tokenizer = pipe.vae, pipe.text_encoder, pipe.tokenizer
        if config.resume_from_pipeline:
            transformer = dvi_transformer(pipe.transformer, config.dvi)
        else:
            words = _vocabulary(config, data)
            transformer = tiny_components(words, dvi=config.dvi, seed=config.seed)[0]
            torch.manual_seed(config.seed)
            if config.tiny:   # tokenizer and text encoder over this data's words
                tokenizer = build_tokenizer(words)
                text_encoder = tiny_text_encoder(tokenizer)
        return transformer, vae, text_encoder, tokenizer
    if config.tiny:
        return tiny_components(_vocabulary(config, data), dvi=config.dvi, seed=config.seed,
                               vae_out_channels=4 if config.stage == "vae" else 1)
    if not (config.wan_dir and config.dit_checkpoint):
        raise SystemExit("give --tiny, or --wan-dir and --dit-checkpoint (official weights), or "
                         "--vae-from / --resume-from-pipeline (a save_pretrained folder)")
    from .pipeline import FlowRVSPipeline
    pipe = FlowRVSPipeline.from_official(config.wan_dir, config.dit_checkpoint,
                                         config.vae_checkpoint, device="cpu", dtype="float32")
    vae = pipe.vae
    if config.stage == "vae" and vae.config.out_channels != 1:
        vae = mask_vae(vae)
    return dvi_transformer(pipe.transformer, config.dvi), vae, pipe.text_encoder, pipe.tokenizer
