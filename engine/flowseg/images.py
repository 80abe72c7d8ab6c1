"""Image in, tensors out, and mask logits back to the image: SigLIP and SAM preprocessing.

- SigLIP: resized to its square input (bicubic, antialiased), scaled to [-1, 1].
- SAM: longest side resized to the SAM input size (bilinear, antialiased), ImageNet
  mean/std, zero-padded at the bottom and right to a square (SamProcessor's recipe).
- Masks: logits at the mask-feature resolution are upsampled to the padded SAM input, the
  padding is cropped, and the rest resized to the image (SAM's postprocess_masks).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import SAM_MEAN, SAM_STD, SIGLIP_MEAN, SIGLIP_STD


def check_image(image) -> None:
    if not isinstance(image, np.ndarray):
        raise ValueError(f"image must be a numpy array uint8 [H,W,3] (RGB); got "
                         f"{type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must have shape [H,W,3] (RGB); got {list(image.shape)}. "
                         "Convert grey images with np.repeat(img[..., None], 3, -1) and drop "
                         "the alpha channel of RGBA images (img[..., :3])")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255); got {image.dtype}. For floats in [0,1] "
                         "pass (img * 255).round().astype(np.uint8)")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"image is empty: shape {list(image.shape)}")


def _as_tensor(image: np.ndarray, device) -> torch.Tensor:
    x = torch.tensor(image, device=device)          # a copy: frames from the cache are read-only
    return x.permute(2, 0, 1)[None].float()                              # [1, 3, H, W] 0..255


def _normalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    mean = torch.tensor(mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=x.device).view(1, 3, 1, 1)
    return (x / 255.0 - mean) / std


def siglip_pixels(image: np.ndarray, size: int, device="cpu") -> torch.Tensor:
    x = F.interpolate(_as_tensor(image, device), size=(size, size), mode="bicubic",
                      align_corners=False, antialias=True).clamp(0, 255)
    return _normalise(x, SIGLIP_MEAN, SIGLIP_STD)


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """Longest side to `size`, aspect kept, rounded half up (SamProcessor)."""
    scale = size / max(height, width)
    return max(1, int(height * scale + 0.5)), max(1, int(width * scale + 0.5))


def sam_pixels(image: np.ndarray, size: int, device="cpu") -> tuple[torch.Tensor, tuple]:
    """-> ([1, 3, size, size] normalised and padded, (valid height, valid width))."""
    h, w = resized_size(image.shape[0], image.shape[1], size)
    x = F.interpolate(_as_tensor(image, device), size=(h, w), mode="bilinear",
                      align_corners=False, antialias=True).clamp(0, 255)
    x = _normalise(x, SAM_MEAN, SAM_STD)
    return F.pad(x, (0, size - w, 0, size - h)), (h, w)


def logits_to_image(logits: torch.Tensor, size: int, valid: tuple, image_hw: tuple) -> torch.Tensor:
    """[K, h, w] logits -> [K, H, W] logits on the image grid (float32)."""
    x = F.interpolate(logits[None].float(), size=(size, size), mode="bilinear",
                      align_corners=False)
    x = x[..., :valid[0], :valid[1]]
    return F.interpolate(x, size=tuple(image_hw), mode="bilinear", align_corners=False)[0]
