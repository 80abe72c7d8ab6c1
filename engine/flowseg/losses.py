"""FlowSeg's training loss: Mask2Former's Hungarian loss on every decoder layer, plus the
LLM's next-token loss on the answer.

    L = sum over layers (2.0 CE + 5.0 BCE + 5.0 dice)  +  lm_weight * LM

- Matching and the point-sampled mask losses are transformers' `Mask2FormerLoss` (scipy's
  Hungarian solver; uncertainty-based importance sampling of points: oversample 3.0,
  importance 0.75). Its class head is our selection head: class 0 = "the object the prompt
  names", class 1 = Mask2Former's "no object" (weight 0.1).
- Deep supervision: the initial queries' prediction and every layer's are matched and
  supervised on their own. The last one is supervised after BAR (the model's real output),
  so BAR learns from the same loss.
- Targets live on the padded SAM input grid; the loss samples points on it, so prediction
  and target resolutions need not agree.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

CLASS_WEIGHT, MASK_WEIGHT, DICE_WEIGHT = 2.0, 5.0, 5.0
NO_OBJECT_WEIGHT = 0.1
PAPER_POINTS = 12544


class FlowSegCriterion(nn.Module):
    def __init__(self, num_points: int = PAPER_POINTS, class_weight: float = CLASS_WEIGHT,
                 mask_weight: float = MASK_WEIGHT, dice_weight: float = DICE_WEIGHT,
                 no_object_weight: float = NO_OBJECT_WEIGHT, oversample_ratio: float = 3.0,
                 importance_sample_ratio: float = 0.75, lm_weight: float = 1.0):
        super().__init__()
        from transformers import Mask2FormerConfig
        from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss
        config = Mask2FormerConfig(
            num_labels=1, no_object_weight=no_object_weight, class_weight=class_weight,
            mask_weight=mask_weight, dice_weight=dice_weight, train_num_points=num_points,
            oversample_ratio=oversample_ratio, importance_sample_ratio=importance_sample_ratio)
        self.weights = {"loss_cross_entropy": class_weight, "loss_mask": mask_weight,
                        "loss_dice": dice_weight}
        self.hungarian = Mask2FormerLoss(config, self.weights)
        self.lm_weight = float(lm_weight)

    def segmentation(self, layers: list, targets: list) -> tuple[torch.Tensor, dict]:
        """layers: (mask_logits [B, N, h, w], class_logits [B, N, 2]) per supervised layer,
        the final one last; targets: bool/float [n_i, H, W] per sample (n_i >= 1).
        -> (weighted sum over layers, {name: value} of the final layer's parts)."""
        masks = [t.float() for t in targets]
        labels = [torch.zeros(len(t), dtype=torch.long, device=t.device) for t in targets]
        total, parts = 0.0, {}
        for i, (mask_logits, class_logits) in enumerate(layers):
            losses = self.hungarian(mask_logits.float(), class_logits.float(), masks, labels)
            total = total + sum(self.weights[k] * v for k, v in losses.items())
            if i == len(layers) - 1:
                parts = {k.removeprefix("loss_"): float(v.detach()) for k, v in losses.items()}
        return total, parts

    @staticmethod
    def language(lm_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Next-token cross-entropy; labels [B, L] with -100 where nothing is predicted."""
        return F.cross_entropy(lm_logits[:, :-1].flatten(0, 1).float(), labels[:, 1:].flatten(),
                               ignore_index=-100)

    def forward(self, layers: list, targets: list, lm_logits=None, lm_labels=None):
        seg, parts = self.segmentation(layers, targets)
        total = seg
        if lm_logits is not None and self.lm_weight:
            lm = self.language(lm_logits, lm_labels)
            total = total + self.lm_weight * lm
            parts["lm"] = float(lm.detach())
        parts["total"] = float(total.detach())
        return total, parts
