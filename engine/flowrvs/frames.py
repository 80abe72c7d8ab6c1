"""Frame preprocessing (resize, normalise, 4k+1 padding) and the latent normalisation.

Release facts (flowrvs-release.md, "Inference (Gen2)" 1-3 and 5):
- resize keeping the aspect ratio to fit inside 480 x 832 (h x w): ratio = min(480/h, 832/w),
  side = int(side * ratio) floored to a multiple of 16; bilinear with antialias on the PIL
  image (what torchvision's Resize does for PIL input); ToTensor; Normalize(mean, std);
- pad the frame count to 4k+1 by repeating the last frame;
- z0 = (vae.encode(x).latent_dist.mean - latents_mean) / latents_std with the VAE config's
  16-value vectors; Gen1 decodes mask_latent * std + mean;
- decoded logits are resized bilinearly (align_corners=False) to the input size, then
  sigmoid > 0.5.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def model_size(height: int, width: int, max_height: int = 480, max_width: int = 832,
               multiple: int = 16) -> tuple[int, int]:
    """The (h, w) frames are resized to before encoding (release rule, see module docstring)."""
    ratio = min(max_height / height, max_width / width)
    h = int(height * ratio) // multiple * multiple
    w = int(width * ratio) // multiple * multiple
    if h < multiple or w < multiple:
        raise ValueError(
            f"frames of {height}x{width} (h x w) are too elongated: fitting them inside "
            f"{max_height}x{max_width} leaves {int(height * ratio)}x{int(width * ratio)}, "
            f"less than {multiple} pixels on a side. Crop the video to a width:height ratio "
            f"between 1:{max_height // multiple} and {max_width // multiple}:1")
    return h, w


def preprocess_frames(frames: np.ndarray, size: tuple[int, int], mean, std) -> torch.Tensor:
    """uint8 [T,H,W,3] RGB -> float32 [T,3,h,w], resized (PIL bilinear) and normalised."""
    h, w = size
    out = np.empty((len(frames), h, w, 3), np.float32)
    for i, frame in enumerate(frames):
        img = Image.fromarray(np.ascontiguousarray(frame))  # uint8 [H,W,3] -> RGB
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        out[i] = np.asarray(img, np.float32)
    x = torch.from_numpy(out).permute(0, 3, 1, 2).div_(255.0)
    mean_t = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def padded_length(num_frames: int) -> int:
    """The smallest 4k+1 >= num_frames (the Wan VAE encodes 1 + 4k frames)."""
    return num_frames + (4 - (num_frames - 1) % 4) % 4


def pad_to_4k1(x: torch.Tensor) -> torch.Tensor:
    """[T,...] -> [4k+1,...] by repeating the last frame (release step 2)."""
    extra = padded_length(x.shape[0]) - x.shape[0]
    if extra == 0:
        return x
    return torch.cat([x, x[-1:].expand(extra, *x.shape[1:])], dim=0)


def latent_stats(vae, device, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """latents_mean, latents_std of the VAE config as [1, z_dim, 1, 1, 1] tensors."""
    z_dim = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean, dtype=dtype, device=device).view(1, z_dim, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, dtype=dtype, device=device).view(1, z_dim, 1, 1, 1)
    return mean, std


def normalize_latents(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (z - mean) / std


def unnormalize_latents(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return z * std + mean


def logits_from_decoded(decoded: torch.Tensor) -> torch.Tensor:
    """VAE output [1, C, T, h, w] -> mask logits [T, h, w].

    The tuned VAE has a 1-channel conv_out. With the stock Wan VAE (3 channels; the paper's
    "frozen decoder" ablation) masks were encoded as grey images repeated to 3 channels, so
    the channel mean is the logit (our choice; the release always uses the tuned VAE).
    """
    if decoded.shape[1] == 1:
        logits = decoded[0, 0]
    else:
        logits = decoded[0].mean(dim=0)
    return logits


def probabilities_at(logits: torch.Tensor, size: tuple[int, int], chunk: int = 8):
    """[T, h, w] logits -> iterator of float32 numpy [H, W] probabilities, frame by frame.

    Bilinear resize (align_corners=False) of the logits, then sigmoid, as the release does;
    resized in chunks so a long 1080p window never holds all its full-size frames at once.
    """
    for start in range(0, logits.shape[0], chunk):
        part = logits[start:start + chunk].float().unsqueeze(1)
        if tuple(part.shape[-2:]) != tuple(size):
            part = F.interpolate(part, size=size, mode="bilinear", align_corners=False)
        probs = torch.sigmoid(part[:, 0]).cpu().numpy()
        for p in probs:
            yield p
