"""Boundary-Aware Refinement (BAR): change mask logits only where the mask is uncertain.

    B = [dilate(P) - erode(P) > eps]           P = sigmoid(M_raw), eps = 0.1
    dM = tanh(f_refine([M_raw || f_comp(F_pix)])) * alpha
    M_refined = M_raw + dM * B

Pixels outside the band B keep their raw logits bit for bit (`torch.where`, not a product,
so even -0.0 and NaN-free rounding are untouched).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def boundary_band(prob: torch.Tensor, eps: float = 0.1, kernel: int = 3) -> torch.Tensor:
    """Morphological gradient of probabilities [..., h, w] > eps, as a bool tensor.

    Grey-scale dilation and erosion with a kernel x kernel square (max / min filters); the
    image border does not count as a neighbour.
    """
    if kernel % 2 == 0:
        raise ValueError(f"kernel must be odd, got {kernel}")
    shape = prob.shape
    x = prob.reshape(-1, 1, shape[-2], shape[-1])
    pad = kernel // 2
    dilated = F.max_pool2d(x, kernel, stride=1, padding=pad)
    eroded = -F.max_pool2d(-x, kernel, stride=1, padding=pad)
    return ((dilated - eroded) > eps).reshape(shape)


class BoundaryAwareRefinement(nn.Module):
    """f_comp (1x1 conv of the pixel features), f_refine (two 3x3 convs) and alpha."""

    def __init__(self, feature_channels: int, comp_channels: int = 8, hidden: int = 16,
                 eps: float = 0.1, kernel: int = 3, alpha_init: float = 0.1):
        super().__init__()
        self.eps = float(eps)
        self.kernel = int(kernel)
        self.comp = nn.Conv2d(feature_channels, comp_channels, kernel_size=1)
        self.refine = nn.Sequential(
            nn.Conv2d(1 + comp_channels, hidden, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(hidden, 1, kernel_size=3, padding=1),
        )
        self.alpha = nn.Parameter(torch.tensor(float(alpha_init)))

    def forward(self, mask_logits: torch.Tensor, features: torch.Tensor):
        """mask_logits [B, K, h, w] (any K: all queries or a few candidates), features
        [B, C, h, w] at the same resolution -> (refined logits [B, K, h, w], band bool)."""
        b, k, h, w = mask_logits.shape
        if features.shape[0] != b or features.shape[-2:] != (h, w):
            raise ValueError(f"features {tuple(features.shape)} must be [B, C, {h}, {w}] for "
                             f"mask logits {tuple(mask_logits.shape)}")
        band = boundary_band(mask_logits.float().sigmoid(), self.eps, self.kernel)
        comp = self.comp(features)                                       # [B, c, h, w]
        comp = comp[:, None].expand(b, k, *comp.shape[1:]).reshape(b * k, -1, h, w)
        x = torch.cat([mask_logits.reshape(b * k, 1, h, w), comp], dim=1)
        delta = torch.tanh(self.refine(x)).reshape(b, k, h, w) * self.alpha
        refined = torch.where(band, mask_logits + delta, mask_logits)
        return refined, band
