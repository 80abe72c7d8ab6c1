"""One FlowRVS training run: TrainConfig (every option of `python -m engine.flowrvs.train`),
Trainer (batches, the two stages' losses, optimizer, EMA, checkpoints, export) and run().

Stages: `flow` trains the DiT (and, when asked, the text encoder) on losses.py's objective;
`vae` trains the mask decoder (official weights: the release's decoder tuning) or, for the
tiny demo, the whole VAE from scratch with an RGB + mask head. See train.py for the details.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .components import build, mask_vae
from .config import FlowRVSConfig
from .data import MevisData, swap_left_right
from .ema import EMA
from .frames import latent_stats, pad_to_4k1, preprocess_frames
from .losses import SPA, decode_unclamped, flow_pair, mask_loss, sample_timesteps
from .text import encode_texts

log = logging.getLogger("engine.flowrvs.train")

CHECKPOINT = "checkpoint.pt"
STAGES = ("flow", "vae")


@dataclass
class TrainConfig:
    """The options of one run; field names are the CLI's flags (--max-steps -> max_steps).
    None means "depends on other fields" and is resolved in __post_init__."""
    data: str                                  # MeViS-format folder
    out: str                                   # output folder (checkpoint.pt, pipeline/)
    stage: str = "flow"
    # weights
    tiny: bool = False                         # random tiny config (the demo sizes)
    wan_dir: Optional[str] = None              # Wan2.1-T2V-1.3B-Diffusers folder
    dit_checkpoint: Optional[str] = None       # FlowRVS DiT .pth to start from
    vae_checkpoint: Optional[str] = None       # tuned_vae.pth
    vae_from: Optional[str] = None             # save_pretrained folder whose VAE to use
    resume_from_pipeline: Optional[str] = None  # save_pretrained folder to fine-tune
    # training
    max_steps: int = 1000
    batch_size: int = 1
    lr: float = 5e-5
    weight_decay: float = 5e-4
    grad_clip: float = 1.0
    ema_decay: float = 0.9999                  # 0 disables the EMA
    bbs_p: float = 0.5                         # Boundary-Biased Sampling share
    timestep_bias: float = 0.0                 # lean non-boundary timesteps toward t=1000 (0: release)
    time_limit: Optional[float] = None         # seconds from the run's start; then stop and export
    no_spa_sample: bool = False                # SPA: x0 from the latent mean, not a sample
    spa_norm_jitter: float = 0.05              # SPA normalisation perturbation (0 = off)
    dvi: bool = True                           # Direct Video Injection (32 input channels)
    train_text_encoder: Optional[bool] = None  # None: on with tiny (the release freezes it)
    train_vae_encoder: Optional[bool] = None   # None: on with tiny from scratch (no vae_from)
    mask_weight: float = 4.0
    mask_fg_weight: float = 2.0
    kl_weight: float = 1e-3
    demo_world_vocabulary: bool = False        # tiny tokenizer: + engine.demo_world.VOCABULARY
    hflip: bool = False
    gradient_checkpointing: bool = False
    bf16: bool = True                          # bf16 autocast on CUDA
    num_frames: int = 5
    max_videos: Optional[int] = None
    size: tuple = (64, 64)                     # (H, W)
    max_height: Optional[int] = None
    max_width: Optional[int] = None
    text_length: Optional[int] = None          # None: 16 with tiny, 256 otherwise
    cache_latents: bool = True
    precompute_latents: bool = False
    seed: int = 0
    device: Optional[str] = None               # None: cuda when present, else cpu
    threads: Optional[int] = None
    save_every: int = 200
    log_every: int = 20
    resume: Optional[str] = None               # "auto": <out>/checkpoint.pt when present
    no_ema_export: bool = False

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        self.size = tuple(self.size)
        if self.train_text_encoder is None:
            self.train_text_encoder = self.tiny
        if self.train_vae_encoder is None:
            self.train_vae_encoder = self.tiny and not self.vae_from
        if self.text_length is None:
            self.text_length = 16 if self.tiny else 256
        if self.device is None:
            self.device = "cuda" if torch.cuda.is_available() else "cpu"

    @classmethod
    def from_dict(cls, d: dict, source="a checkpoint") -> "TrainConfig":
        """From dataclasses.asdict(config) (or an older checkpoint's vars(Namespace): the same
        keys); unknown keys are refused by name."""
        from engine.checks import known_fields
        return cls(**known_fields(cls, d, source, "; it was written by another FlowLabel"))


class Trainer:
    """One training run; step() does one optimizer step and returns the loss."""

    def __init__(self, data: MevisData, transformer, vae, text_encoder, tokenizer,
                 config: TrainConfig):
        self.data, self.config = data, config
        self.device = torch.device(config.device)
        self.stage = config.stage
        self.transformer, self.vae = transformer, vae
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.size = tuple(config.size)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.spa = SPA(sample=not config.no_spa_sample, norm_jitter=config.spa_norm_jitter)
        self.step_count = 0
        self.losses: list[float] = []
        self._cache: dict = {}
        for m in (transformer, vae, text_encoder):
            m.to(self.device).requires_grad_(False)
        if self.stage == "flow":
            self.model = transformer
            params = list(transformer.parameters())
            transformer.requires_grad_(True).train()
            if config.train_text_encoder:
                text_encoder.requires_grad_(True).train()
                params += list(text_encoder.parameters())
            if config.gradient_checkpointing:
                transformer.enable_gradient_checkpointing()
            self.trained = [transformer] + ([text_encoder] if config.train_text_encoder else [])
        else:
            self.model = vae
            vae.requires_grad_(True).train()
            if not config.train_vae_encoder:  # the release: encoder frozen, decoder tuned
                for name in ("encoder", "quant_conv"):
                    getattr(vae, name).requires_grad_(False)
            params = [p for p in vae.parameters() if p.requires_grad]
            self.trained = [vae]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.ema = EMA(self.model, config.ema_decay) if config.ema_decay > 0 else None
        cuda_bf16 = self.device.type == "cuda" and config.bf16
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cuda_bf16
                         else contextlib.nullcontext())

    # -- data ---------------------------------------------------------------------------
    def _batch_items(self):
        g = self.generator
        items = []
        for _ in range(self.config.batch_size):
            i = int(torch.randint(len(self.data), (1,), generator=g))
            n = self.data.num_video_frames(self.data.samples[i].vid)
            start = int(torch.randint(max(1, n - self.data.num_frames + 1), (1,), generator=g))
            flip = bool(self.config.hflip and torch.rand((), generator=g).item() < 0.5)
            items.append((i, start, flip))
        return items

    def _tensors(self, item):
        frames, target, expression = self.data.clip(*item)
        x = pad_to_4k1(preprocess_frames(frames, self.size, (0.5,) * 3, (0.5,) * 3))
        m = torch.from_numpy(target.astype(np.float32))[:, None]
        m = F.interpolate(m, size=self.size, mode="nearest")
        m = pad_to_4k1(m).expand(-1, 3, -1, -1) * 2 - 1
        return x.permute(1, 0, 2, 3), m.permute(1, 0, 2, 3), expression

    def _latents(self, item):
        """(frame latent mean, std, mask latent mean), cached: the encoder is frozen."""
        if item in self._cache:
            return self._cache[item]
        self._encode([item])
        out = self._cache[item]
        if not self.config.cache_latents:
            del self._cache[item]
        return out

    @torch.no_grad()
    def _encode(self, items) -> None:
        """Encode the clips and targets of `items` in one VAE batch; fill the cache. A clip's
        frames are encoded once for all of its expressions."""
        if not items:
            return
        clips, frames_at, xs, ms = {}, [], [], []
        for it in items:
            x, m, _ = self._tensors(it)
            key = (self.data.samples[it[0]].vid,) + tuple(it[1:])
            if key not in clips:
                clips[key] = len(xs)
                xs.append(x)
            frames_at.append(clips[key])
            ms.append(m)
        d = self.vae.encode(torch.stack(xs + ms).to(self.device)).latent_dist
        mean, std = d.mean.float(), d.std.float()
        n = len(xs)
        for k, (it, c) in enumerate(zip(items, frames_at)):
            self._cache[it] = (mean[c:c + 1], std[c:c + 1], mean[n + k:n + k + 1])

    def precompute_latents(self, batch: int = 32) -> None:
        """Encode every expression's clip from frame 0, unflipped (the clips the demo trains
        on when --num-frames equals the clip length), in VAE batches."""
        items = [(i, 0, False) for i in range(len(self.data))]
        items.sort(key=lambda it: self.data.samples[it[0]].vid)
        t0 = time.time()
        for k in range(0, len(items), batch):
            self._encode([it for it in items[k:k + batch] if it not in self._cache])
            if (k // batch) % 20 == 0:
                log.info("encoded %d/%d targets %.0fs", k + batch, len(items), time.time() - t0)

    # -- steps --------------------------------------------------------------------------
    def step(self) -> float:
        items = self._batch_items()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            loss = self._flow_loss(items) if self.stage == "flow" else self._vae_loss(items)
        loss.backward()
        params = [p for m in self.trained for p in m.parameters() if p.requires_grad]
        torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip)
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update(self.model)
        self.step_count += 1
        value = float(loss.detach())
        self.losses.append(value)
        return value

    def _flow_loss(self, items) -> torch.Tensor:
        lat = [self._latents(it) for it in items]
        z_mean = torch.cat([l[0] for l in lat])
        z_std = torch.cat([l[1] for l in lat])
        x1 = torch.cat([l[2] for l in lat])
        mean, std = latent_stats(self.vae, self.device)
        x0 = self.spa.start_point(z_mean, z_std, mean, std, self.generator)
        timesteps = sample_timesteps(len(items), self.config.bbs_p, self.generator,
                                     self.config.timestep_bias).to(self.device)
        x_t, target = flow_pair(x0, x1, timesteps)
        hidden = torch.cat([x_t, x0], dim=1) if self.transformer.config.in_channels == \
            2 * x0.shape[1] else x_t
        prompts = [self.data.samples[i].expression for i, _, _ in items]
        prompts = [swap_left_right(p) if it[2] else p for p, it in zip(prompts, items)]
        with contextlib.nullcontext() if self.config.train_text_encoder else torch.no_grad():
            text = encode_texts(self.tokenizer, self.text_encoder, prompts,
                                self.config.text_length)
        pred = self.transformer(hidden_states=hidden, timestep=timesteps,
                                encoder_hidden_states=text, return_dict=False)[0]
        return F.mse_loss(pred.float(), target.float())

    def _vae_loss(self, items) -> torch.Tensor:
        c = self.config
        xs, ms = zip(*[self._tensors(it)[:2] for it in items])
        x, m = torch.stack(xs).to(self.device), torch.stack(ms).to(self.device)
        b = len(items)
        if self.vae.config.out_channels != 4:   # decoder tuning: masks only, encoder frozen
            with torch.no_grad():
                z = self.vae.encode(m).latent_dist.mean
            return mask_loss(decode_unclamped(self.vae, z)[:, :1], m[:, :1], c.mask_fg_weight)
        dist = self.vae.encode(torch.cat([x, m])).latent_dist
        z = dist.sample(generator=None) if c.train_vae_encoder else dist.mean
        out = decode_unclamped(self.vae, z)   # tiny from scratch: RGB rows and the mask row
        mask = mask_loss(out[b:, 3:], m[:, :1], c.mask_fg_weight)
        rgb = F.mse_loss(out[:b, :3], x)
        kl = dist.kl()[:b].mean() / z[0].numel()
        return rgb + c.mask_weight * mask + c.kl_weight * kl

    # -- checkpoints ----------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "stage": self.stage, "step": self.step_count, "losses": self.losses,
            "transformer": self.transformer.state_dict(), "vae": self.vae.state_dict(),
            "vae_config": dict(self.vae.config),
            "text_encoder": self.text_encoder.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "optimizer": self.optimizer.state_dict(),
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                    "numpy": np.random.get_state(), "python": random.getstate(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "config": dataclasses.asdict(self.config),
        }

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    def load(self, path) -> None:
        """Continue from a checkpoint. The run's options come from this run's config, not the
        file's (a resumed run may change --max-steps, --bbs-p, ...)."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["stage"] != self.stage:
            raise ValueError(f"{path} is a '{state['stage']}' checkpoint; this run is "
                             f"--stage {self.stage}")
        self.vae.load_state_dict(state["vae"])
        if self.stage == "flow":   # the vae stage neither trains nor exports a DiT
            self.transformer.load_state_dict(state["transformer"])
            self.text_encoder.load_state_dict(state["text_encoder"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count, self.losses = state["step"], list(state["losses"])
        rng = state["rng"]
        self.generator.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
        random.setstate(rng["python"])
        if rng.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(rng["cuda"])

    # -- export ---------------------------------------------------------------------------
    def pipeline(self, use_ema: bool = True):
        """A FlowRVSPipeline over (copies of) the trained components."""
        from .pipeline import FlowRVSPipeline
        from .solver import make_scheduler
        transformer, vae = copy.deepcopy(self.transformer), copy.deepcopy(self.vae)
        if use_ema and self.ema is not None:
            self.ema.copy_to(transformer if self.stage == "flow" else vae)
        if hasattr(transformer, "disable_gradient_checkpointing"):
            transformer.disable_gradient_checkpointing()
        vae = mask_vae(vae, row=3 if vae.config.out_channels == 4 else None)
        h, w = self.size
        config = FlowRVSConfig(generation=2, in_channels=transformer.config.in_channels,
                               latent_channels=vae.config.z_dim,
                               max_sequence_length=self.config.text_length,
                               max_height=max(h, self.config.max_height or h),
                               max_width=max(w, self.config.max_width or w),
                               notes={"source": "engine.flowrvs.train", "stage": self.stage,
                                      "steps": self.step_count,
                                      "weights": "ema" if use_ema and self.ema else "model"})
        return FlowRVSPipeline(transformer, vae, copy.deepcopy(self.text_encoder),
                               self.tokenizer, make_scheduler(), config)


@torch.no_grad()
def measure_latent_stats(vae, data: MevisData, size, limit: int = 64, device="cpu"):
    """Per-channel mean and std of frame latents (latent_dist.mean) over up to `limit` clips;
    written into the VAE config (latents_mean / latents_std) after the tiny VAE stage."""
    zs = []
    for i in range(min(limit, len(data))):
        frames, _, _ = data.clip(i)
        x = pad_to_4k1(preprocess_frames(frames, size, (0.5,) * 3, (0.5,) * 3))
        zs.append(vae.encode(x.permute(1, 0, 2, 3)[None].to(device)).latent_dist.mean.float())
    z = torch.cat(zs).transpose(0, 1).reshape(vae.config.z_dim, -1)
    return z.mean(1).tolist(), z.std(1).clamp_min(1e-3).tolist()


def run(config: TrainConfig) -> Trainer:
    started = time.time()           # time_limit counts loading and latent encoding too
    """The whole run: build, resume, train to max_steps with checkpoints, export pipeline/."""
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    data = MevisData(config.data, config.num_frames, config.max_videos)
    trainer = Trainer(data, *build(config, data), config)
    out = Path(config.out)
    if config.resume:
        path = out / CHECKPOINT if config.resume == "auto" else Path(config.resume)
        if path.is_file():
            trainer.load(path)
            log.info("resumed from %s at step %d", path, trainer.step_count)
        elif config.resume != "auto":
            raise FileNotFoundError(f"--resume {path}: no such checkpoint")
    if config.stage == "flow" and config.precompute_latents:
        trainer.precompute_latents()
    t0 = time.time()
    end = config.max_steps
    while trainer.step_count < end:
        loss = trainer.step()
        s = trainer.step_count
        if config.time_limit is not None and time.time() - started > config.time_limit and s < end:
            log.info("time limit %g s reached at step %d", config.time_limit, s)
            end = s
        if s % config.log_every == 0 or s == end:
            recent = trainer.losses[-config.log_every:]
            log.info("step %d loss %.5f (mean of last %d: %.5f) %.1fs", s, loss, len(recent),
                     sum(recent) / len(recent), time.time() - t0)
        if s % config.save_every == 0 or s == end:
            trainer.save(out / CHECKPOINT)
    if config.stage == "vae" and config.train_vae_encoder:
        model = copy.deepcopy(trainer.vae)
        if trainer.ema is not None and not config.no_ema_export:
            trainer.ema.copy_to(model)
        mean, std = measure_latent_stats(model.eval(), data, tuple(config.size),
                                         device=trainer.device)
        trainer.vae.register_to_config(latents_mean=mean, latents_std=std)
    pipe = trainer.pipeline(use_ema=not config.no_ema_export)
    pipe.save_pretrained(out / "pipeline")
    log.info("saved %s", out / "pipeline")
    return trainer
