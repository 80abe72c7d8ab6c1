"""How many frames one FlowRVS window may hold on a GPU: the figures behind the default window.

A window of n frames at model size h x w needs, above the loaded weights (the text encoder
offloaded, as the pipeline does on CUDA),

    extra(n) = (fixed + per_frame * n) * h * w * element_size    bytes,

`fixed` for what a window holds whatever its length (the VAE's chunk caches, the prompt) and
`per_frame` for what grows with it (DiT activations, frames, latents, decoded logits). The
default window is the largest 4k+1 whose extra(n) fits `fraction` of the free memory.

WINDOW_MEMORY holds the figures the pipeline uses. They are a guess until a GPU run of
`bench/gpu.py` (part flowrvs-windows) measures extra(n) for several n at 480x832 in bf16 and
fits them with `fit`; its report prints the WindowMemory(...) to put here, with the device and
the date in `measured`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence


@dataclass(frozen=True)
class WindowMemory:
    fixed_bytes_per_pixel: float      # per model pixel and byte of the dtype, once per window
    frame_bytes_per_pixel: float      # the same, per frame of the window
    fraction: float                   # of the free memory a window may take
    measured: Optional[str] = None    # where the figures come from; None: not measured

    def extra_bytes(self, frames: int, model_hw: tuple, element_size: int) -> float:
        """Bytes above the loaded weights that a window of `frames` frames needs."""
        unit = model_hw[0] * model_hw[1] * element_size
        return (self.fixed_bytes_per_pixel + self.frame_bytes_per_pixel * frames) * unit

    def frames_for(self, free_bytes: float, model_hw: tuple, element_size: int) -> int:
        """The most frames (any count, not yet 4k+1) whose extra_bytes fit fraction * free."""
        unit = model_hw[0] * model_hw[1] * element_size
        budget = free_bytes * self.fraction - self.fixed_bytes_per_pixel * unit
        return int(budget // (self.frame_bytes_per_pixel * unit))


# Not yet calibrated on a GPU (see the module docstring): the first guess the pipeline shipped.
WINDOW_MEMORY = WindowMemory(fixed_bytes_per_pixel=6000, frame_bytes_per_pixel=64,
                             fraction=0.7, measured=None)


def fit(points: Sequence[tuple], model_hw: tuple, element_size: int, fraction: float = 0.85,
        measured: Optional[str] = None) -> WindowMemory:
    """Least-squares line through measured (frames, extra bytes) points -> WindowMemory.

    Needs at least two different frame counts. A negative intercept (memory that grows
    faster than linearly) is clamped to 0, and the slope then refitted through the origin,
    so the fitted line never promises less than was measured at the longest window.
    """
    frames = [float(n) for n, _ in points]
    extra = [float(b) for _, b in points]
    if len(set(frames)) < 2:
        raise ValueError(f"fit needs measurements at two or more window lengths, got {frames}")
    unit = model_hw[0] * model_hw[1] * element_size
    mean_n, mean_b = sum(frames) / len(frames), sum(extra) / len(extra)
    slope = (sum((n - mean_n) * (b - mean_b) for n, b in zip(frames, extra))
             / sum((n - mean_n) ** 2 for n in frames))
    if slope <= 0:
        raise ValueError(f"memory did not grow with the window ({list(zip(frames, extra))}): "
                         "nothing to fit")
    intercept = mean_b - slope * mean_n
    if intercept < 0:
        intercept = 0.0
        slope = max(b / n for n, b in zip(frames, extra))
    # never below any measured point: lift the line to the worst residual
    intercept += max(0.0, max(b - (intercept + slope * n) for n, b in zip(frames, extra)))
    # rounded up, so the printed figures keep the promise
    return WindowMemory(fixed_bytes_per_pixel=math.ceil(intercept / unit * 10) / 10,
                        frame_bytes_per_pixel=math.ceil(slope / unit * 100) / 100,
                        fraction=fraction, measured=measured)
