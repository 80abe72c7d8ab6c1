"""The FlowRVS ODE: timesteps for the release's schedules and one Euler loop.

Convention of the release (flowrvs-release.md, "Inference" 4 and "Training"): sigma = 1
(timestep 1000) is the video latent z0, sigma = 0 the mask latent; the DiT predicts the
velocity v = x0 - x1, so an Euler step is z <- z + (sigma_next - sigma) * v and the
default single step is mask_latent = z0 - v(z0, t=1000). The scheduler is diffusers'
FlowMatchEulerDiscreteScheduler with shift 1.0 (the release loads it from Wan's UniPC
config, whose `flow_shift` key it does not know, so shift falls back to 1.0).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from engine.registry import Cancelled

SCHEDULES = ("official", "linear", "mevis")


def make_scheduler(num_train_timesteps: int = 1000):
    from diffusers import FlowMatchEulerDiscreteScheduler
    return FlowMatchEulerDiscreteScheduler(num_train_timesteps=num_train_timesteps, shift=1.0)


def mevis_timesteps(num_steps: int, shift: float = 3.0) -> list[float]:
    """The MeViS script's timesteps: round(1000 * 3s / (1 + 2s)), s = linspace(1, 0.001, n+1)[:-1].

    4 steps -> [1000, 900, 750, 501] (then sigma 0).
    """
    s = torch.linspace(1.0, 0.001, num_steps + 1, dtype=torch.float32)
    t = shift * s / (1 + (shift - 1) * s) * 1000
    return t[:-1].round().tolist()


def check_schedule(schedule: str, num_steps) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(map(repr, SCHEDULES))}, got "
                         f"{schedule!r}: 'official' is the release default (one step at "
                         "t=1000), 'linear' N evenly spaced steps, 'mevis' the MeViS script's "
                         "shift-3 timesteps")
    if not isinstance(num_steps, (int, np.integer)) or isinstance(num_steps, bool) \
            or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    if schedule == "official" and num_steps != 1:
        raise ValueError(f"the 'official' schedule is the release's single step (t=1000); for "
                         f"num_steps={num_steps} pick schedule='linear' (the demo's 1000, 667, "
                         "334, 1 for 4 steps) or schedule='mevis' (1000, 900, 750, 501)")


def schedule_timesteps(scheduler, schedule: str, num_steps: int, device=None):
    """-> (timesteps [N] float32, sigmas [N+1] float32 ending in 0) from `scheduler`."""
    check_schedule(schedule, num_steps)
    if schedule in ("official", "linear"):
        scheduler.set_timesteps(num_steps, device=device)
    else:
        timesteps = np.array(mevis_timesteps(num_steps), dtype=np.float32)
        sigmas = timesteps / scheduler.config.num_train_timesteps
        scheduler.set_timesteps(sigmas=sigmas.tolist(), timesteps=timesteps.tolist(),
                                device=device)
    return scheduler.timesteps.float(), scheduler.sigmas.float()


def solve_flow(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               z0: torch.Tensor, timesteps: torch.Tensor, sigmas: torch.Tensor, *,
               callback: Optional[Callable[[int, torch.Tensor, torch.Tensor], None]] = None,
               cancel: Optional[Callable[[], bool]] = None) -> torch.Tensor:
    """Integrate dz/dsigma = v(z, t) with Euler from sigmas[0] (the video) to sigmas[-1] = 0.

    velocity(z, t): the DiT's prediction for latents z at timestep t (a 0-d float tensor in
    [0, 1000]). callback(i, t, z) runs after step i; cancel() is checked before each step
    and a True stops the loop with engine.Cancelled. Latents are kept in float32.
    """
    if len(sigmas) != len(timesteps) + 1:
        raise ValueError(f"need one more sigma than timesteps, got {len(sigmas)} sigmas for "
                         f"{len(timesteps)} timesteps")
    z = z0.float()
    for i, t in enumerate(timesteps):
        if cancel is not None and cancel():
            raise Cancelled("segmentation cancelled")
        v = velocity(z, t)
        z = z + (sigmas[i + 1] - sigmas[i]).to(z.device) * v.float()
        if callback is not None:
            callback(i, t, z)
    return z
