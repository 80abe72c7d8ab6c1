"""FlowSegModel: the X-SAM scaffold (SigLIP + SAM + Qwen3 + Mask2Former pixel decoder) with
FlowSeg's decoder (decoder.py) and Boundary-Aware Refinement (refine.py).

    SigLIP hidden_states[-2] ──MLP──┐
    SAM hidden_states[-2] ─unshuffle─MLP──┤ image tokens spliced into the prompt at <image>
                                     Qwen3 ── last hidden states ──φ_llm──> C (<p>..</p> span), S (<SEG>)
    SAM hidden_states[12, 18, 24] ─connector─> strides 8/16/32 ─Mask2Former pixel decoder─>
        multi-scale features + mask features (stride 8) ─FlowSegDecoder(C, S)─> masks, scores

Tensors in, tensors out; preprocessing and postprocessing live in the pipeline.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import FlowSegConfig
from .decoder import DecoderOutput, FlowSegDecoder, pool_conditions
from .refine import BoundaryAwareRefinement

IMAGE_TOKEN_INDEX = -200          # placeholder id in input_ids where the image tokens go
SCALES = (2, 1, 0.5)              # connector levels: strides patch/2, patch, 2*patch
# FlowSeg's own modules (the rest are the three public towers).
NEW_PARTS = ("siglip_proj", "sam_proj", "connector", "pixel_decoder", "text_proj", "decoder",
             "bar")


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a [B, C, H, W] map (SAM's neck uses the same)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, (x.shape[-1],), self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ConnectorLevel(nn.Module):
    """1x1 conv -> LN -> 3x3 conv -> LN -> 1x1 conv to width*s -> LN -> pixel-(un)shuffle."""

    def __init__(self, in_channels: int, width: int, mid: int, scale: float):
        super().__init__()
        out = int(round(width * scale))
        self.scale = scale
        self.layers = nn.Sequential(
            nn.Conv2d(in_channels, mid, kernel_size=1, bias=False), LayerNorm2d(mid),
            nn.Conv2d(mid, mid, kernel_size=3, padding=1, bias=False), LayerNorm2d(mid),
            nn.Conv2d(mid, out, kernel_size=1, bias=False), LayerNorm2d(out))
        if scale > 1:
            self.out_channels = out // int(scale) ** 2
        elif scale < 1:
            self.out_channels = out * int(round(1 / scale)) ** 2
        else:
            self.out_channels = out

    def forward(self, x):
        x = self.layers(x)
        if self.scale > 1:
            return F.pixel_shuffle(x, int(self.scale))
        if self.scale < 1:
            return F.pixel_unshuffle(x, int(round(1 / self.scale)))
        return x


class SamConnector(nn.Module):
    def __init__(self, in_channels: int, width: int, mid: int):
        super().__init__()
        self.levels = nn.ModuleList(ConnectorLevel(in_channels, width, mid, s) for s in SCALES)

    @property
    def out_channels(self) -> list[int]:
        return [level.out_channels for level in self.levels]

    def forward(self, maps: list) -> list:
        """Three channels-first SAM maps -> maps at strides patch/2, patch, 2*patch."""
        return [level(x) for level, x in zip(self.levels, maps)]


def projector(in_dim: int, out_dim: int) -> nn.Sequential:
    """X-SAM's 2-layer MLP projector."""
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


def pixel_decoder_config(config: FlowSegConfig, sam_patch: int):
    from transformers import Mask2FormerConfig
    strides = [sam_patch // 2, sam_patch, sam_patch * 2]
    return Mask2FormerConfig(
        feature_size=config.pixel_feature_size, mask_feature_size=config.mask_feature_size,
        hidden_dim=config.hidden_dim, encoder_layers=config.pixel_encoder_layers,
        encoder_feedforward_dim=config.pixel_encoder_ffn, num_attention_heads=config.pixel_heads,
        dropout=config.dropout, feature_strides=strides, common_stride=strides[0])


def init_pixel_decoder(module: nn.Module) -> None:
    """Mask2Former's own initialisation for the pixel decoder (Mask2FormerPreTrainedModel
    would run it; built standalone it must be called): level embeddings ~ N(0, 1) (they are
    allocated uninitialised) and Deformable-DETR's sampling-offset grid."""
    import math

    from transformers.models.mask2former.modeling_mask2former import (
        Mask2FormerPixelDecoder,
        Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention,
    )
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, Mask2FormerPixelDecoder):
                nn.init.normal_(m.level_embed, std=1.0)
            elif isinstance(m, Mask2FormerPixelDecoderEncoderMultiscaleDeformableAttention):
                nn.init.zeros_(m.sampling_offsets.weight)
                thetas = torch.arange(m.n_heads, dtype=torch.float32) * (2.0 * math.pi / m.n_heads)
                grid = torch.stack([thetas.cos(), thetas.sin()], -1)
                grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(m.n_heads, 1, 1, 2)
                grid = grid.repeat(1, m.n_levels, m.n_points, 1)
                for i in range(m.n_points):
                    grid[:, :, i, :] *= i + 1
                m.sampling_offsets.bias.copy_(grid.view(-1))
                nn.init.zeros_(m.attention_weights.weight)
                nn.init.zeros_(m.attention_weights.bias)
                nn.init.xavier_uniform_(m.value_proj.weight)
                nn.init.zeros_(m.value_proj.bias)
                nn.init.xavier_uniform_(m.output_proj.weight)
                nn.init.zeros_(m.output_proj.bias)


@dataclass
class FlowSegOutput:
    decoder: DecoderOutput
    mask_features: torch.Tensor        # [B, Cm, h, w], stride patch/2 of the SAM input
    conditions: torch.Tensor           # [B, T, d] C(0), projected LLM states of the <p> span
    condition_pad: torch.Tensor        # [B, T] True where padding
    seg: torch.Tensor                  # [B, d] S, projected LLM state at <SEG>
    llm_hidden: torch.Tensor           # [B, L, H] last LLM hidden states (image tokens included)

    @property
    def mask_logits(self) -> torch.Tensor:
        return self.decoder.final.mask_logits

    @property
    def class_logits(self) -> torch.Tensor:
        return self.decoder.final.class_logits

    @property
    def scores(self) -> torch.Tensor:
        return self.decoder.final.scores

    @property
    def final_conditions(self) -> torch.Tensor:
        return self.decoder.conditions


class FlowSegModel(nn.Module):
    def __init__(self, config: FlowSegConfig, siglip=None, sam=None, llm=None):
        """Towers not given are built from config.siglip / sam / llm (random weights, or
        none at all under transformers' no_init_weights when a checkpoint follows)."""
        super().__init__()
        from transformers import (
            Qwen3Config,
            Qwen3ForCausalLM,
            SamVisionConfig,
            SamVisionModel,
            SiglipVisionConfig,
            SiglipVisionModel,
        )
        from transformers.models.mask2former.modeling_mask2former import Mask2FormerPixelDecoder
        self.config = config
        self.siglip = siglip if siglip is not None else \
            SiglipVisionModel(SiglipVisionConfig.from_dict(config.siglip))
        self.sam = sam if sam is not None else \
            SamVisionModel(SamVisionConfig.from_dict(config.sam))
        self.llm = llm if llm is not None else Qwen3ForCausalLM(Qwen3Config.from_dict(config.llm))

        siglip_dim = self.siglip.config.hidden_size
        sam_cfg = self.sam.config
        llm_dim = self.llm.config.hidden_size
        self.siglip_proj = projector(siglip_dim, llm_dim)
        u = config.sam_llm_unshuffle
        self.sam_proj = (projector(sam_cfg.hidden_size * u * u, llm_dim)
                         if config.sam_llm_layer is not None else None)
        self.connector = SamConnector(sam_cfg.hidden_size, config.connector_width,
                                      config.connector_mid)
        self.pixel_decoder = Mask2FormerPixelDecoder(
            pixel_decoder_config(config, sam_cfg.patch_size),
            feature_channels=self.connector.out_channels)
        self.text_proj = projector(llm_dim, config.hidden_dim)   # φ_llm, shared by C and S
        self.decoder = FlowSegDecoder(config)
        self.bar = (BoundaryAwareRefinement(
            config.mask_feature_size, config.bar_comp_channels, config.bar_hidden,
            config.bar_eps, config.bar_kernel, config.bar_alpha_init)
            if config.boundary_refinement else None)
        self._check()

    def _check(self) -> None:
        cfg, sam = self.config, self.sam.config
        grid = sam.image_size // sam.patch_size
        if sam.image_size % sam.patch_size or grid % 4:
            raise ValueError(f"SAM image_size {sam.image_size} / patch_size {sam.patch_size} "
                             f"must give a grid divisible by 4 (stride-32 level), got {grid}")
        if cfg.sam_llm_layer is not None and grid % cfg.sam_llm_unshuffle:
            raise ValueError(f"SAM grid {grid} is not divisible by sam_llm_unshuffle "
                             f"{cfg.sam_llm_unshuffle}")
        if self.llm.config.model_type != "qwen3":
            raise ValueError(f"the LLM must be a Qwen3 causal LM (model_type 'qwen3'), got "
                             f"{self.llm.config.model_type!r}")

    # ------------------------------------------------------------------ init

    def init_new_parts(self) -> None:
        """Initialisation for FlowSeg's own parts beyond PyTorch's defaults."""
        init_pixel_decoder(self.pixel_decoder)

    def new_parts(self) -> dict:
        return {name: getattr(self, name) for name in NEW_PARTS if getattr(self, name) is not None}

    @property
    def device(self) -> torch.device:
        return self.decoder.query_feat.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.decoder.query_feat.weight.dtype

    # ------------------------------------------------------------------ pieces

    def encode_images(self, siglip_pixels: torch.Tensor, sam_pixels: torch.Tensor):
        """-> (image tokens for the LLM [B, T, H], three SAM maps channels-first)."""
        cfg = self.config
        siglip_out = self.siglip(pixel_values=siglip_pixels.to(self.dtype),
                                 output_hidden_states=True)
        tokens = [self.siglip_proj(siglip_out.hidden_states[cfg.siglip_layer])]
        sam_out = self.sam(pixel_values=sam_pixels.to(self.dtype), output_hidden_states=True)
        states = sam_out.hidden_states                                     # [B, h, w, C] each
        if self.sam_proj is not None:
            x = states[cfg.sam_llm_layer].permute(0, 3, 1, 2)
            x = F.pixel_unshuffle(x, cfg.sam_llm_unshuffle).flatten(2).transpose(1, 2)
            tokens.append(self.sam_proj(x))
        maps = [states[i].permute(0, 3, 1, 2) for i in cfg.sam_feature_layers]
        return torch.cat(tokens, dim=1), maps

    def run_llm(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor],
                image_tokens: torch.Tensor):
        """Splice the image tokens in at IMAGE_TOKEN_INDEX (one per row) and run the LLM's
        backbone (no LM head: only hidden states are needed). Returns (hidden [B, L', H],
        ids [B, L'] with IMAGE_TOKEN_INDEX at the image positions, attention mask)."""
        b, length = input_ids.shape
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        n_img = image_tokens.shape[1]
        embed = self.llm.get_input_embeddings()
        text = embed(input_ids.clamp(min=0))
        rows, ids, masks = [], [], []
        for i in range(b):
            where = (input_ids[i] == IMAGE_TOKEN_INDEX).nonzero().flatten()
            if len(where) != 1:
                raise ValueError(f"input_ids row {i} must hold exactly one image placeholder "
                                 f"({IMAGE_TOKEN_INDEX}), found {len(where)}")
            p = int(where[0])
            rows.append(torch.cat([text[i, :p], image_tokens[i].to(text.dtype), text[i, p + 1:]]))
            ids.append(torch.cat([input_ids[i, :p], input_ids.new_full((n_img,), IMAGE_TOKEN_INDEX),
                                  input_ids[i, p + 1:]]))
            masks.append(torch.cat([attention_mask[i, :p], attention_mask.new_ones(n_img),
                                    attention_mask[i, p + 1:]]))
        embeds, ids, mask = torch.stack(rows), torch.stack(ids), torch.stack(masks)
        out = self.llm.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False)
        return out.last_hidden_state, ids, mask

    def conditions_from(self, hidden: torch.Tensor, ids: torch.Tensor):
        """C from the first <p> ... </p> span (tags included), S from the last <SEG>; both
        through φ_llm. Returns (C [B, T, d], pad [B, T], S [B, d])."""
        cfg = self.config
        spans, segs = [], []
        for i in range(ids.shape[0]):
            opens = (ids[i] == cfg.p_open_id).nonzero().flatten()
            closes = (ids[i] == cfg.p_close_id).nonzero().flatten()
            seg = (ids[i] == cfg.seg_id).nonzero().flatten()
            if len(opens) == 0 or len(seg) == 0:
                raise ValueError(f"row {i}: the prompt needs a {cfg.p_open_token}...{cfg.p_close_token}"
                                 f" span and a {cfg.seg_token} token (ids {cfg.token_ids})")
            start = int(opens[0])
            after = closes[closes > start]
            if len(after) == 0:
                raise ValueError(f"row {i}: {cfg.p_open_token} at {start} is never closed by "
                                 f"{cfg.p_close_token}")
            spans.append(hidden[i, start:int(after[0]) + 1])
            segs.append(hidden[i, int(seg[-1])])
        longest = max(len(s) for s in spans)
        conditions = hidden.new_zeros(len(spans), longest, hidden.shape[-1])
        pad = torch.ones(len(spans), longest, dtype=torch.bool, device=hidden.device)
        for i, s in enumerate(spans):
            conditions[i, :len(s)] = s
            pad[i, :len(s)] = False
        conditions = self.text_proj(conditions)
        if cfg.condition_mode == "pooled":
            conditions = pool_conditions(conditions, pad)[:, None]
            pad = pad[:, :1] & False
        return conditions, pad, self.text_proj(torch.stack(segs))

    def pixel_features(self, sam_maps: list):
        """-> (multi-scale features, lowest resolution first; mask features at stride patch/2)."""
        levels = self.connector(sam_maps)
        out = self.pixel_decoder(levels)
        return list(out.multi_scale_features), out.mask_features

    # ------------------------------------------------------------------ forward

    def forward(self, siglip_pixels: torch.Tensor, sam_pixels: torch.Tensor,
                input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None
                ) -> FlowSegOutput:
        """siglip_pixels [B, 3, S, S], sam_pixels [B, 3, T, T] (normalised, padded);
        input_ids [B, L] with one IMAGE_TOKEN_INDEX per row."""
        image_tokens, sam_maps = self.encode_images(siglip_pixels, sam_pixels)
        hidden, ids, _ = self.run_llm(input_ids, attention_mask, image_tokens)
        conditions, pad, seg = self.conditions_from(hidden, ids)
        multi_scale, mask_features = self.pixel_features(sam_maps)
        decoded = self.decoder(multi_scale, mask_features, conditions.to(mask_features.dtype),
                               pad, seg.to(mask_features.dtype))
        return FlowSegOutput(decoded, mask_features, conditions, pad, seg, hidden)

    def refine(self, mask_logits: torch.Tensor, mask_features: torch.Tensor):
        """BAR on any subset of masks [B, K, h, w] -> (refined, band); without BAR the
        logits come back unchanged and the band is empty."""
        if self.bar is None:
            return mask_logits, torch.zeros_like(mask_logits, dtype=torch.bool)
        return self.bar(mask_logits, mask_features)
