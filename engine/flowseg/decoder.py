"""FlowSeg's mask decoder: Mask2Former layers whose inner flow is Bidirectional Semantic Flow.

Per layer l, with queries Q(l-1) and conditions C(l-1) (flowseg-design.md):

1. masked visual cross-attention   Qvis = LN(Q + MHA(Q + pos, F + pos_F, F, mask))
2. semantic refinement (SR)        Qsem = MHA(Qvis + pos, C, C)
3. gate                            g = sigmoid(Wg [Qvis || Qsem]);  Qf = g*Qvis + (1-g)*Qsem
4. self-attention, FFN             Qs = LN(Q' + FFN(Q')),  Q' = LN(Qf + MHA(Qf + pos, Qf + pos, Qf))
5. condition refinement (CR)       C(l) = C(l-1) + MHA(C(l-1), Qs + pos, Qs)

Layers cycle over the three pixel-decoder scales, lowest resolution first, and each layer's
attention mask comes from the previous prediction (sigmoid < 0.5 is masked; a query whose
mask would hide everything sees everything), as in Mask2Former. Every layer, and the initial
queries, produce a prediction: mask logits and selection scores (deep supervision).

Selection: score = softmax(exp(s) * [cos(q, c), cos(q, bg)])[0] for each query q, with c the
final conditions pooled over their tokens, s a learnable log scale and bg a learnable
background embedding.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import FlowSegConfig


class MLP(nn.Module):
    """Linear layers with ReLU in between (Mask2Former's mask-embedding MLP)."""

    def __init__(self, dims: list[int]):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class BSFLayer(nn.Module):
    """One decoder layer. Switched-off parts are None, so they own no parameters."""

    def __init__(self, config: FlowSegConfig):
        super().__init__()
        d, heads, drop = config.hidden_dim, config.num_heads, config.dropout
        self.visual_attn = nn.MultiheadAttention(d, heads, dropout=drop, batch_first=True)
        self.visual_norm = nn.LayerNorm(d)
        self.semantic_attn = (nn.MultiheadAttention(d, heads, dropout=drop, batch_first=True)
                              if config.semantic_refinement else None)
        self.gate = (nn.Linear(2 * d, d) if config.semantic_refinement and config.semantic_gate
                     else None)
        if self.gate is not None:
            nn.init.constant_(self.gate.bias, config.gate_bias_init)
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=drop, batch_first=True)
        self.self_norm = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, config.dim_feedforward), nn.ReLU(),
                                 nn.Dropout(drop), nn.Linear(config.dim_feedforward, d))
        self.ffn_norm = nn.LayerNorm(d)
        self.condition_attn = (nn.MultiheadAttention(d, heads, dropout=drop, batch_first=True)
                               if config.condition_refinement else None)
        self.dropout = nn.Dropout(drop)

    def forward(self, queries, query_pos, features, feature_pos, attn_mask, conditions,
                condition_pad):
        """queries/query_pos [B, N, d]; features/feature_pos [B, HW, d]; attn_mask
        [B*heads, N, HW] bool (True = not allowed) or None; conditions [B, T, d];
        condition_pad [B, T] bool (True = padding). Returns (queries, conditions, gate)."""
        # 1. masked visual cross-attention
        attended = self.visual_attn(queries + query_pos, features + feature_pos, features,
                                    attn_mask=attn_mask, need_weights=False)[0]
        q_vis = self.visual_norm(queries + self.dropout(attended))

        # 2-3. semantic refinement and the gate
        gate = None
        if self.semantic_attn is not None:
            q_sem = self.semantic_attn(q_vis + query_pos, conditions, conditions,
                                       key_padding_mask=condition_pad, need_weights=False)[0]
            if self.gate is not None:
                gate = torch.sigmoid(self.gate(torch.cat([q_vis, q_sem], dim=-1)))
                fused = gate * q_vis + (1 - gate) * q_sem
            else:
                fused = q_vis + q_sem
        else:
            fused = q_vis

        # 4. self-attention and FFN
        qk = fused + query_pos
        q = self.self_norm(fused + self.dropout(
            self.self_attn(qk, qk, fused, need_weights=False)[0]))
        q = self.ffn_norm(q + self.dropout(self.ffn(q)))

        # 5. condition refinement
        if self.condition_attn is not None:
            conditions = conditions + self.condition_attn(conditions, q + query_pos, q,
                                                          need_weights=False)[0]
        return q, conditions, gate


class QueryGeometry(nn.Module):
    """Where a query's mask lies, as query content (config.query_position, off by default).

    The query content alone carries no position (query_pos only enters attention as q/k), so
    neither the selection's cosine nor the condition refinement can tell "the left one" from
    "the right one". From each prediction's soft mask (sigmoid of the logits, detached, as
    the attention mask is) come its centroid, spread and area in [-1, 1] grid coordinates
    (the mask-feature grid: SAM's padded square frame); an MLP embeds them and the result is
    added to the queries before the selection and the next layer. Its last layer starts at
    zero, so adding it to a trained decoder leaves the decoder's output unchanged.
    """

    FEATURES = ("x", "y", "spread_x", "spread_y", "area")

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = MLP([len(self.FEATURES), dim, dim])
        nn.init.zeros_(self.mlp.layers[-1].weight)
        nn.init.zeros_(self.mlp.layers[-1].bias)

    @staticmethod
    def features(mask_logits: torch.Tensor) -> torch.Tensor:
        """[B, N, h, w] logits -> [B, N, 5] (x, y, spread x, spread y, area), float32."""
        p = mask_logits.detach().float().sigmoid()
        h, w = p.shape[-2:]
        ys = torch.linspace(-1, 1, h, device=p.device)
        xs = torch.linspace(-1, 1, w, device=p.device)
        rows, cols = p.sum(-1), p.sum(-2)                 # [B, N, h], [B, N, w]
        mass = rows.sum(-1).clamp_min(1e-6)
        cy, cx = (rows * ys).sum(-1) / mass, (cols * xs).sum(-1) / mass
        sy = ((rows * ys ** 2).sum(-1) / mass - cy ** 2).clamp_min(0).sqrt()
        sx = ((cols * xs ** 2).sum(-1) / mass - cx ** 2).clamp_min(0).sqrt()
        area = p.mean((-2, -1)) * 2 - 1
        return torch.stack([cx, cy, sx, sy, area], dim=-1)

    def forward(self, mask_logits: torch.Tensor) -> torch.Tensor:
        """[B, N, h, w] -> [B, N, d] in the decoder's dtype."""
        weight = self.mlp.layers[0].weight
        return self.mlp(self.features(mask_logits).to(weight.dtype))


class SelectionHead(nn.Module):
    """exp(logit_scale) * cosine against [conditions, background]; softmax -> foreground."""

    def __init__(self, dim: int, logit_scale_init: float, logit_scale_max: float):
        super().__init__()
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale_init)))
        self.background = nn.Parameter(torch.randn(dim) * dim ** -0.5)
        self.logit_scale_max = float(logit_scale_max)

    def forward(self, queries, condition):
        """queries [B, N, d], condition [B, d] -> logits [B, N, 2] (foreground, background)."""
        q = F.normalize(queries, dim=-1)
        targets = torch.stack([condition, self.background.expand_as(condition)], dim=1)
        targets = F.normalize(targets, dim=-1)                           # [B, 2, d]
        scale = self.logit_scale.exp().clamp(max=self.logit_scale_max)
        return scale * torch.einsum("bnd,bkd->bnk", q, targets)


def pool_conditions(conditions: torch.Tensor, condition_pad: torch.Tensor) -> torch.Tensor:
    """Mean over the non-padding condition tokens: [B, T, d] -> [B, d]."""
    keep = (~condition_pad).to(conditions.dtype)[..., None]
    return (conditions * keep).sum(1) / keep.sum(1).clamp(min=1)


@dataclass
class LayerPrediction:
    mask_logits: torch.Tensor      # [B, N, h, w] at the mask-feature resolution
    class_logits: torch.Tensor     # [B, N, 2] (foreground, background)
    conditions: torch.Tensor       # [B, T, d] conditions used for this prediction

    @property
    def scores(self) -> torch.Tensor:
        """Foreground probability per query [B, N]."""
        return self.class_logits.float().softmax(-1)[..., 0]


@dataclass
class DecoderOutput:
    predictions: list              # LayerPrediction per layer; [0] is the initial queries
    queries: torch.Tensor          # [B, N, d] final queries (after the decoder norm)
    conditions: torch.Tensor       # [B, T, d] final conditions C(L)
    gates: list                    # per layer [B, N, d] gate values, or None

    @property
    def final(self) -> LayerPrediction:
        return self.predictions[-1]


class FlowSegDecoder(nn.Module):
    def __init__(self, config: FlowSegConfig, num_levels: int = 3):
        super().__init__()
        from transformers.models.mask2former.modeling_mask2former import (
            Mask2FormerSinePositionEmbedding,
        )
        d = config.hidden_dim
        self.config = config
        self.num_heads = config.num_heads
        self.num_levels = num_levels
        self.query_feat = nn.Embedding(config.num_queries, d)
        self.query_pos = nn.Embedding(config.num_queries, d)
        self.level_embed = nn.Embedding(num_levels, d)
        self.input_proj = nn.ModuleList(
            nn.Identity() if config.pixel_feature_size == d else
            nn.Conv2d(config.pixel_feature_size, d, kernel_size=1) for _ in range(num_levels))
        self.position = Mask2FormerSinePositionEmbedding(num_position_features=d // 2,
                                                         normalize=True)
        self.layers = nn.ModuleList(BSFLayer(config) for _ in range(config.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.mask_embed = MLP([d, d, d, config.mask_feature_size])
        self.selection = SelectionHead(d, config.logit_scale_init, config.logit_scale_max)
        self.geometry = QueryGeometry(d) if config.query_position else None

    def add_query_geometry(self) -> None:
        """Switch config.query_position on in a built (or trained) decoder: a fresh
        QueryGeometry whose zero last layer leaves every output as it was until trained."""
        if self.geometry is None:
            ref = self.query_feat.weight
            self.geometry = QueryGeometry(self.config.hidden_dim).to(ref.device, ref.dtype)

    def forward(self, multi_scale: list, mask_features: torch.Tensor, conditions: torch.Tensor,
                condition_pad: torch.Tensor, seg: Optional[torch.Tensor]) -> DecoderOutput:
        """multi_scale: num_levels maps [B, C, h_i, w_i], lowest resolution first;
        mask_features [B, Cm, h, w]; conditions [B, T, d] with condition_pad [B, T];
        seg [B, d] (added to the initial queries when seg_to_queries) or None."""
        cfg = self.config
        b = mask_features.shape[0]
        features, feature_pos, sizes = [], [], []
        for i, x in enumerate(multi_scale[:self.num_levels]):
            sizes.append(tuple(x.shape[-2:]))
            pos = self.position(x.shape, x.device, x.dtype)
            feature_pos.append(pos.flatten(2).transpose(1, 2))
            x = self.input_proj[i](x).flatten(2).transpose(1, 2)
            features.append(x + self.level_embed.weight[i][None, None])

        query_pos = self.query_pos.weight[None].expand(b, -1, -1)
        queries = self.query_feat.weight[None].expand(b, -1, -1)
        if cfg.seg_to_queries and seg is not None:
            queries = queries + seg[:, None, :]

        predictions, gates = [], []
        prediction, attn_mask, queries = self._predict(queries, conditions, condition_pad,
                                                       mask_features, sizes[0])
        predictions.append(prediction)
        for i, layer in enumerate(self.layers):
            level = i % self.num_levels
            queries, conditions, gate = layer(queries, query_pos, features[level],
                                              feature_pos[level], attn_mask, conditions,
                                              condition_pad)
            gates.append(gate)
            prediction, attn_mask, queries = self._predict(
                queries, conditions, condition_pad, mask_features,
                sizes[(i + 1) % self.num_levels])
            predictions.append(prediction)
        return DecoderOutput(predictions, self.norm(queries), conditions, gates)

    def _predict(self, queries, conditions, condition_pad, mask_features, next_size):
        """-> (prediction, next attention mask, queries): with query_position the queries
        come back carrying their mask's geometry."""
        q = self.norm(queries)
        mask_logits = torch.einsum("bnc,bchw->bnhw", self.mask_embed(q), mask_features)
        if self.geometry is not None:
            where = self.geometry(mask_logits)
            queries, q = queries + where, q + where
        class_logits = self.selection(q, pool_conditions(conditions, condition_pad))
        attn_mask = None
        if self.config.masked_attention:
            resized = F.interpolate(mask_logits.detach(), size=next_size, mode="bilinear",
                                    align_corners=False)
            attn_mask = (resized.flatten(2).sigmoid() < 0.5)             # [B, N, HW]
            attn_mask[attn_mask.all(-1)] = False
            attn_mask = attn_mask.repeat_interleave(self.num_heads, dim=0)
        return LayerPrediction(mask_logits, class_logits, conditions), attn_mask, queries


def count_parameters(module: Optional[nn.Module]) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())
