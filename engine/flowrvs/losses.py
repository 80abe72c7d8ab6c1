"""The pieces of FlowRVS's training objective (flowrvs-release.md, "Training").

flow stage, for a batch:
    x0 = normalise(vae.encode(video).latent_dist.sample())   (SPA: sampling + jitter)
    x1 = vae.encode(2 * mask - 1, as 3 channels).latent_dist.mean      (raw, not normalised)
    timestep: Boundary-Biased Sampling; t = timestep / 1000
    x_t = t * x0 + (1 - t) * x1;  target u = x0 - x1;  loss = MSE(DiT([x_t, x0]), u)
vae stage: a squared hinge towards the mask image 2m-1 on the decoder's unclamped output.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def lean_toward_start(u: torch.Tensor, bias: float) -> torch.Tensor:
    """u ~ U(0, 1) -> u ** (1 / (1 + bias)), whose density (1 + bias) * x**bias leans toward 1
    (t = 1000, the start of the flow): P(x <= a) = a ** (1 + bias). bias 0 returns u itself."""
    if bias < 0:
        raise ValueError(f"timestep bias must be >= 0 (0: uniform), got {bias}")
    return u if bias == 0 else u ** (1.0 / (1.0 + bias))


def sample_timesteps(batch_size: int, p: float, generator: torch.Generator,
                     bias: float = 0.0) -> torch.Tensor:
    """Boundary-Biased Sampling: float timesteps [batch_size] in [1, 1000].

    A fraction p of the batch gets 1000 (the video end, where the flow starts); the release
    gives exactly half of each batch (p=0.5). p * batch_size is rounded stochastically so a
    batch of 1 gets 1000 with probability p. The rest: clamp(floor(u * 1000), 1, 1000) with
    u ~ U(0, 1), or with bias > 0 (not the release's) u leaned toward 1 by lean_toward_start:
    with DVI only the start of the flow needs the text. Then shuffled.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"BBS p must be in [0, 1], got {p}")
    exact = p * batch_size
    n_boundary = int(math.floor(exact))
    if torch.rand((), generator=generator).item() < exact - n_boundary:
        n_boundary += 1
    u = lean_toward_start(torch.rand(batch_size - n_boundary, generator=generator), bias)
    rest = torch.clamp(torch.floor(u * 1000), 1, 1000)
    t = torch.cat([torch.full((n_boundary,), 1000.0), rest])
    return t[torch.randperm(batch_size, generator=generator)]


@dataclass
class SPA:
    """Start-Point Augmentation of the video latent x0.

    sample: x0 from vae.encode(video).latent_dist.sample() instead of its mean (the release);
    norm_jitter: the normalisation perturbed per sample and channel,
        x0 = (z - mean - a * std) / (std * (1 + b)),  a, b ~ U(-norm_jitter, norm_jitter).
    Off (sample=False, norm_jitter=0) is the identity: x0 = (mean_z - mean) / std.
    """
    sample: bool = True
    norm_jitter: float = 0.05

    def start_point(self, z_mean: torch.Tensor, z_std: torch.Tensor, lat_mean: torch.Tensor,
                    lat_std: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        z = z_mean
        if self.sample:
            z = z_mean + z_std * torch.randn(z_mean.shape, generator=generator).to(z_mean)
        if self.norm_jitter > 0:
            shape = (z.shape[0], z.shape[1], 1, 1, 1)
            a = (torch.rand(shape, generator=generator) * 2 - 1).to(z) * self.norm_jitter
            b = (torch.rand(shape, generator=generator) * 2 - 1).to(z) * self.norm_jitter
            return (z - lat_mean - a * lat_std) / (lat_std * (1 + b))
        return (z - lat_mean) / lat_std


def flow_pair(x0: torch.Tensor, x1: torch.Tensor, timesteps: torch.Tensor):
    """x_t = t * x0 + (1 - t) * x1 with t = timestep / 1000, and the target u = x0 - x1."""
    t = (timesteps / 1000.0).view(-1, 1, 1, 1, 1).to(x0)
    return t * x0 + (1 - t) * x1, x0 - x1


def decode_unclamped(vae, z: torch.Tensor) -> torch.Tensor:
    """vae.decode(z) before its final clamp to [-1, 1]: a loss on the clamped output has no
    gradient where the output is beyond +-1, so a decoder that pushes every pixel to
    background could never recover.

    diffusers offers no public flag for this. AutoencoderKLWan.decode (0.42.1) runs
    `vae.decoder` once per latent frame, concatenates the outputs on the time axis and clamps;
    a forward hook on `vae.decoder` (public torch API) keeps those outputs. The call count is
    checked, and tests/engine/test_flowrvs_train.py pins clamp(result) == vae.decode(z).sample with
    values beyond +-1, so a diffusers release that decodes differently fails loudly."""
    chunks = []
    handle = vae.decoder.register_forward_hook(lambda module, args, output: chunks.append(output))
    try:
        vae.decode(z)
    finally:
        handle.remove()
    if len(chunks) != z.shape[2]:
        raise RuntimeError(
            f"vae.decode ran its decoder {len(chunks)} times for {z.shape[2]} latent frames; "
            "decode_unclamped needs one call per frame (diffusers 0.42.1's AutoencoderKLWan, "
            "with tiling and slicing off: vae.disable_tiling(), vae.disable_slicing())")
    out = torch.cat(chunks, 2)
    if vae.config.patch_size is not None:
        from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify
        out = unpatchify(out, patch_size=vae.config.patch_size)
    return out


def mask_loss(out: torch.Tensor, target: torch.Tensor, fg_weight: float = 1.0) -> torch.Tensor:
    """Squared hinge towards the mask image 2m-1 on unclamped decoder output: inside the
    margin it is the MSE to +-1, beyond +-1 on the right side it is 0 (the decode clamps
    there anyway). fg_weight > 1 weighs foreground pixels more (1: a plain mean; balancing
    foreground and background fully over-segments: the masks come out about 1.7x too big)."""
    err = F.relu(1 - out * target) ** 2
    if fg_weight != 1.0:
        err = torch.where(target > 0, err * fg_weight, err)
    return err.mean()
