"""Seeded random SAM 2 models in the real layout, for tests and benchmarks (nothing downloaded).

TINY: 128 px input, 1.5M parameters (a Sam2VideoModel that also loads as Sam2Model). The video
model's hard limits shape it: memory_encoder_output_channels stays 64 and fpn_hidden_size is a
multiple of 64 above 64. FULL: transformers' default Sam2VideoConfig, the sizes of
facebook/sam2.1-hiera-tiny (Hiera [1,2,7,2], dims 96-768, 1024 px input). EDGETAM_TINY and
SAM3_TRACKER_TINY: the same toy sizes in the EdgeTAM and SAM 3 tracker architectures.
"""
from __future__ import annotations

from pathlib import Path

import torch

TINY = dict(
    vision_config=dict(
        model_type="sam2_vision_model", fpn_hidden_size=128, backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        backbone_config=dict(
            model_type="sam2_hiera_det_model", hidden_size=12, num_attention_heads=1, image_size=[128, 128],
            blocks_per_stage=[1, 2, 2, 1], embed_dim_per_stage=[12, 24, 48, 96],
            num_attention_heads_per_stage=[1, 1, 1, 1], window_size_per_stage=[4, 4, 4, 4],
            global_attention_blocks=[2, 4], window_positional_embedding_background_size=[2, 2])),
    prompt_encoder_config=dict(hidden_size=128, image_size=128, patch_size=16),
    mask_decoder_config=dict(hidden_size=128, mlp_dim=256, num_attention_heads=4, iou_head_hidden_dim=128),
    image_size=128, memory_attention_hidden_size=128, memory_attention_num_layers=1,
    memory_attention_feed_forward_hidden_size=256, memory_attention_rope_feat_sizes=[8, 8],
    memory_encoder_hidden_size=128, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
    memory_fuser_intermediate_dim=256)
FULL: dict = {}


def sam3_vision(fpn_hidden_size: int) -> dict:
    """SAM 3's vision tower at toy sizes (ViT, 112 px input, patch 14), shared by the tracker and the
    concept model presets."""
    return dict(
        model_type="sam3_vision_model", fpn_hidden_size=fpn_hidden_size,
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=2, image_size=112, patch_size=14, window_size=4,
                             global_attn_indexes=[1], pretrain_image_size=112))


# EdgeTAM at toy sizes: a RepViT backbone built by timm from its architecture name and these
# arguments (pretrained=False, nothing downloaded): channels 12-96, one block per stage, strides
# 4-32, so a 128 px input gives TINY's 32/16/8 feature maps. The spatial perceiver pools the 8x8
# memory map into 16 latents (4x4 windows, hence rope_k_sizes [4, 4]) plus 16 global ones.
# num_classes=0: no classifier head, and no ImageNet label list written into config.json.
EDGETAM_TINY = dict(
    vision_config=dict(
        model_type="edgetam_vision_model", fpn_hidden_size=128, backbone_channel_list=[96, 48, 24, 12],
        backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
        backbone_config=dict(model_type="timm_wrapper", architecture="repvit_m1", num_classes=0,
                             model_args=dict(in_chans=3, features_only=True, out_indices=[0, 1, 2, 3],
                                             embed_dim=[12, 24, 48, 96], depth=[1, 1, 1, 1]))),
    prompt_encoder_config=TINY["prompt_encoder_config"], mask_decoder_config=TINY["mask_decoder_config"],
    image_size=128, memory_attention_hidden_size=128, memory_attention_num_layers=1,
    memory_attention_mlp_hidden_size=256, memory_attention_rope_feat_sizes=[8, 8],
    memory_attention_rope_k_sizes=[4, 4], perceiver_resampler_num_latents=16, perceiver_resampler_num_latents_2d=16,
    perceiver_resampler_mlp_intermediate_size=64, perceiver_resampler_num_layers=1,
    **{k: TINY[k] for k in ("memory_encoder_hidden_size", "mask_downsampler_embed_dim", "memory_fuser_embed_dim",
                             "memory_fuser_intermediate_dim")})

# The SAM 3 tracker at toy sizes, for the family test.
SAM3_TRACKER_TINY = dict(
    vision_config=sam3_vision(128),
    prompt_encoder_config=dict(hidden_size=128, image_size=112, patch_size=14),
    mask_decoder_config=TINY["mask_decoder_config"],
    **{k: TINY[k] for k in TINY if k.startswith(("memory_", "mask_downsampler"))}, image_size=112)


# The vision tower's model_type prefix -> the video model family in transformers.
FAMILY_BY_VISION = {"sam3": "Sam3TrackerVideo", "edgetam": "EdgeTamVideo", "sam2": "Sam2Video"}


def make_video_model(preset: dict = TINY, seed: int = 0):
    """The preset's video model (Sam2VideoModel, EdgeTamVideoModel or Sam3TrackerVideoModel) with seeded
    random weights. Random SAM weights answer nearly the same everywhere; `_spread` scales the mask
    head so masks differ across the frame and between the multimask outputs (what the tests need to
    tell a right answer from a wrong one)."""
    import transformers
    vision = preset.get("vision_config", {}).get("model_type", "sam2")
    family = next(v for k, v in FAMILY_BY_VISION.items() if vision.startswith(k))
    torch.manual_seed(seed)
    config = getattr(transformers, f"{family}Config")(**preset)
    model = getattr(transformers, f"{family}Model")(config).eval()
    _spread(model, seed)
    return model


def _spread(model, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.startswith("mask_decoder.") and ("output_hypernetworks" in name or "upscale" in name):
                p.copy_(torch.randn(p.shape, generator=generator) * 0.5)


def write_model_dir(root: Path, preset: dict = TINY, seed: int = 0) -> Path:
    """save_pretrained of make_video_model: config.json + model.safetensors, the hub layout."""
    make_video_model(preset, seed).save_pretrained(root)
    return Path(root)
