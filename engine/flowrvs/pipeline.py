"""FlowRVSPipeline: referring video segmentation with the FlowRVS release's weights.

The pieces live apart: text encoding (text.py), frame preprocessing and latent
normalisation (frames.py), the ODE (solver.py), long-video windows (windows.py) and
checkpoint reading (checkpoints.py). This file only orchestrates them; `__call__` is one
numbered script. NumPy in, NumPy out.

    pipe = FlowRVSPipeline.from_official("Wan2.1-T2V-1.3B-Diffusers",
                                         "FlowRVS_dit_mevis.pth", "tuned_vae.pth")
    masks = pipe(frames, "the dog jumping over the fence")   # bool [T, H, W]

A pipeline keeps per-run state (the scheduler's timesteps): calls are serialised by a lock.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from engine.checks import check_frames
from engine.registry import pick_device
from engine.torch_utils import as_dtype

from . import checkpoints as ck
from .config import FlowRVSConfig, describe_generation
from .frames import (
    latent_stats,
    logits_from_decoded,
    model_size,
    normalize_latents,
    pad_to_4k1,
    preprocess_frames,
    probabilities_at,
    unnormalize_latents,
)
from .memory import WINDOW_MEMORY
from .solver import check_schedule, make_scheduler, schedule_timesteps, solve_flow
from .text import PromptCache, clean_prompt, encode_prompt
from .windows import (
    CPU_WINDOW,
    MAX_AUTO_WINDOW,
    MIN_WINDOW,
    Blender,
    check_window,
    default_overlap,
    plan_windows,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[float, str], None]
SUBFOLDERS = ("transformer", "vae", "text_encoder", "tokenizer", "scheduler")


class FlowRVSPipeline:
    def __init__(self, transformer, vae, text_encoder, tokenizer, scheduler,
                 config: FlowRVSConfig, *, prompt_cache_size: int = 32,
                 offload_text_encoder: Optional[bool] = None):
        self.transformer = transformer.eval()
        self.vae = vae.eval()
        self.text_encoder = text_encoder.eval()
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.config = config
        self.prompt_cache = PromptCache(prompt_cache_size)
        self._offload_text_encoder = offload_text_encoder
        self._lock = threading.RLock()
        for module in (self.transformer, self.vae, self.text_encoder):
            module.requires_grad_(False)
        self._check_components()

    # ------------------------------------------------------------------ loading

    @classmethod
    def from_official(cls, wan_dir, dit_checkpoint, vae_checkpoint=None, device=None,
                      dtype=None, *, generation: Optional[int] = None, weights: str = "auto",
                      max_sequence_length: Optional[int] = None,
                      max_size: Optional[tuple] = None, **pipeline_kwargs) -> "FlowRVSPipeline":
        """Build from the release: a Wan2.1-T2V-1.3B-Diffusers folder (or its Hugging Face
        cache path), a FlowRVS DiT `.pth` of either generation and the `tuned_vae.pth`.

        generation: 1 or 2 to override the detection (16 input channels -> Gen2; 32 -> Gen1,
        since Gen1 always used DVI and Gen2 defaults to no DVI). weights: "auto" ('model' if
        present, as the release's inference scripts, else 'ema_model'), "model" or "ema".
        max_sequence_length / max_size=(h, w) override the generation's text length and the
        480x832 resolution box. Without vae_checkpoint the stock Wan VAE decodes (3 channels,
        averaged): the paper's frozen-decoder ablation, not the release's inference.
        """
        from diffusers import AutoencoderKLWan, WanTransformer3DModel

        device = pick_device(device)
        dtype = as_dtype(dtype, device)
        wan = ck.resolve_wan_dir(wan_dir)
        ck.check_wan_dir(wan, ("transformer", "vae", "text_encoder", "tokenizer"))

        # DiT: generation and DVI from the file, then a strict load.
        dit_path = Path(dit_checkpoint)
        obj = ck.read_checkpoint(dit_path)
        kind, payload = ck.dit_state_source(obj, dit_path, weights)
        in_channels = ck.dit_in_channels(kind, payload, dit_path)
        vae_config = AutoencoderKLWan.load_config(str(wan / "vae"))
        z_dim = int(vae_config.get("z_dim", 16))
        if in_channels not in (z_dim, 2 * z_dim):
            raise ck.CheckpointError(
                f"{dit_path}: patch_embedding takes {in_channels} input channels; FlowRVS uses "
                f"{z_dim} (no DVI) or {2 * z_dim} (DVI) for a VAE with z_dim={z_dim}")
        if generation is None:
            generation = ck.checkpoint_generation_hint(obj) or (2 if in_channels == z_dim else 1)
        height, width = max_size if max_size is not None else (None, None)
        config = FlowRVSConfig.for_generation(
            generation, in_channels, z_dim, max_sequence_length=max_sequence_length,
            max_height=height, max_width=width)
        config.notes = {"source": "from_official", "dit_checkpoint": dit_path.name,
                        "dit_weights": "ema_model" if kind == "ema_shadow" else weights,
                        "vae_checkpoint": Path(vae_checkpoint).name if vae_checkpoint else None}
        log.info("%s: %s", dit_path, describe_generation(config))

        transformer_config = WanTransformer3DModel.load_config(str(wan / "transformer"))
        transformer = ck.build_model(WanTransformer3DModel, transformer_config,
                                     in_channels=in_channels)
        state = ck.dit_state_dict(obj, dit_path, transformer, kind, payload)
        ck.load_strict(transformer, state, dit_path, "DiT checkpoint")
        del obj, payload, state

        # VAE: Wan's config with the tuned file's conv_out channels, strict.
        if vae_checkpoint is not None:
            vae_path = Path(vae_checkpoint)
            vstate = ck.vae_state_dict(ck.read_checkpoint(vae_path), vae_path)
            vae = ck.build_model(AutoencoderKLWan, vae_config,
                                 out_channels=ck.vae_out_channels(vstate))
            ck.load_strict(vae, vstate, vae_path, "tuned VAE checkpoint")
            del vstate
        else:
            log.warning("no tuned VAE given: decoding masks with the stock Wan VAE (3 channels "
                        "averaged); pass tuned_vae.pth for the release's results")
            vae = ck.load_diffusers_model(AutoencoderKLWan, wan / "vae")

        text_encoder, tokenizer = cls._load_text(wan, dtype)
        num_train = 1000
        if (wan / "scheduler" / "scheduler_config.json").is_file():
            from diffusers import FlowMatchEulerDiscreteScheduler
            num_train = int(FlowMatchEulerDiscreteScheduler.load_config(
                str(wan / "scheduler")).get("num_train_timesteps", 1000))
        pipe = cls(transformer, vae, text_encoder, tokenizer, make_scheduler(num_train), config,
                   **pipeline_kwargs)
        return pipe.to(device, dtype)

    @staticmethod
    def _load_text(folder: Path, dtype):
        from transformers import AutoTokenizer, UMT5EncoderModel
        text_encoder = UMT5EncoderModel.from_pretrained(str(folder / "text_encoder"), dtype=dtype,
                                                        local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(folder / "tokenizer"), local_files_only=True)
        return text_encoder, tokenizer

    @classmethod
    def from_pretrained(cls, directory, device=None, dtype=None,
                        **pipeline_kwargs) -> "FlowRVSPipeline":
        """Load a folder written by save_pretrained (this project's format)."""
        from diffusers import (
            AutoencoderKLWan,
            FlowMatchEulerDiscreteScheduler,
            WanTransformer3DModel,
        )
        directory = Path(directory)
        config = FlowRVSConfig.load(directory)
        missing = [s for s in SUBFOLDERS if not (directory / s).is_dir()]
        if missing:
            raise FileNotFoundError(f"{directory} lacks {', '.join(s + '/' for s in missing)}; "
                                    "save_pretrained writes all of "
                                    f"{', '.join(s + '/' for s in SUBFOLDERS)}")
        device = pick_device(device)
        dtype = as_dtype(dtype, device)
        transformer = ck.load_diffusers_model(WanTransformer3DModel, directory / "transformer")
        vae = ck.load_diffusers_model(AutoencoderKLWan, directory / "vae")
        text_encoder, tokenizer = cls._load_text(directory, dtype)
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(directory / "scheduler"))
        pipe = cls(transformer, vae, text_encoder, tokenizer, scheduler, config, **pipeline_kwargs)
        return pipe.to(device, dtype)

    def save_pretrained(self, directory) -> Path:
        """Diffusers-style subfolders plus flowrvs_config.json; from_pretrained reads it back."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.transformer.save_pretrained(str(directory / "transformer"))
        self.vae.save_pretrained(str(directory / "vae"))
        self.text_encoder.save_pretrained(str(directory / "text_encoder"))
        self.tokenizer.save_pretrained(str(directory / "tokenizer"))
        self.scheduler.save_pretrained(str(directory / "scheduler"))
        self.config.save(directory)
        return directory

    def _check_components(self) -> None:
        cfg = self.config
        t_in = self.transformer.config.in_channels
        if t_in != cfg.in_channels:
            raise ValueError(f"transformer takes {t_in} input channels but flowrvs_config says "
                             f"{cfg.in_channels}")
        if self.vae.config.z_dim != cfg.latent_channels:
            raise ValueError(f"VAE z_dim {self.vae.config.z_dim} != config latent_channels "
                             f"{cfg.latent_channels}")
        if self.transformer.config.out_channels != cfg.latent_channels:
            raise ValueError(f"transformer predicts {self.transformer.config.out_channels} "
                             f"channels, the VAE has {cfg.latent_channels}")
        text_dim = self.transformer.config.text_dim
        d_model = getattr(self.text_encoder.config, "d_model", text_dim)
        if d_model != text_dim:
            raise ValueError(f"text encoder width {d_model} != transformer text_dim {text_dim}")

    # ------------------------------------------------------------------ devices

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.transformer.parameters()).dtype

    def to(self, device=None, dtype=None) -> "FlowRVSPipeline":
        device = torch.device(pick_device(device) if device is not None else self.device)
        dtype = as_dtype(dtype, str(device)) if dtype is not None else self.dtype
        # Whole-model casts, as the release does (`model.to(torch.bfloat16)`); nn.Module.to
        # skips diffusers' warning about its keep-in-fp32 list, which the release ignores too.
        torch.nn.Module.to(self.transformer, device=device, dtype=dtype)
        torch.nn.Module.to(self.vae, device=device, dtype=dtype)
        text_device = "cpu" if self._offloads(device) else device
        self.text_encoder.to(device=text_device, dtype=dtype)
        self.prompt_cache.clear()
        return self

    def _offloads(self, device=None) -> bool:
        if self._offload_text_encoder is not None:
            return bool(self._offload_text_encoder)
        return torch.device(device or self.device).type == "cuda"

    # ------------------------------------------------------------------ pieces

    def check_inputs(self, frames, expression, num_steps, schedule, return_probs, progress,
                     window, overlap) -> None:
        check_frames(frames)
        model_size(frames.shape[1], frames.shape[2], self.config.max_height,
                   self.config.max_width, self.config.size_multiple)
        if not isinstance(expression, str) or not clean_prompt(expression):
            raise ValueError("expression must be a non-empty string describing the object, "
                             f"e.g. 'the dog on the left'; got {expression!r}")
        check_schedule(schedule, num_steps)
        if not isinstance(return_probs, bool):
            raise ValueError(f"return_probs must be True or False, got {return_probs!r}")
        if progress is not None and not callable(progress):
            raise ValueError(f"progress must be a function progress(fraction, message) or None, "
                             f"got {type(progress).__name__}")
        if window is not None:
            check_window(window)
        if overlap is not None:
            w = window if window is not None else self.default_window(frames.shape[1:3])
            if not isinstance(overlap, (int, np.integer)) or isinstance(overlap, bool) \
                    or not 0 <= overlap < w:
                raise ValueError(f"overlap must be an integer frame count from 0 to window-1="
                                 f"{w - 1}, got {overlap!r}")

    @torch.no_grad()
    def encode_prompt(self, expression: str) -> torch.Tensor:
        """[1, max_sequence_length, text_dim] on the DiT's device and dtype, cached."""
        length = self.config.max_sequence_length
        embeds = self.prompt_cache.get(expression, length)
        if embeds is None:
            offload = self._offloads()
            if offload:
                self.text_encoder.to(self.device)
            try:
                embeds = encode_prompt(self.tokenizer, self.text_encoder, expression, length)
            finally:
                if offload:
                    self.text_encoder.to("cpu")
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
            self.prompt_cache.put(expression, length, embeds)
        return embeds.to(device=self.device, dtype=self.dtype)

    def model_size(self, height: int, width: int) -> tuple[int, int]:
        c = self.config
        return model_size(height, width, c.max_height, c.max_width, c.size_multiple)

    def default_window(self, frame_size) -> int:
        """CPU: Wan's 81 frames. CUDA: the largest 4k+1 that fits the free memory, by the
        figures of memory.WINDOW_MEMORY (not yet calibrated on a GPU: see memory.py)."""
        if self.device.type != "cuda":
            return CPU_WINDOW
        free, _ = torch.cuda.mem_get_info(self.device)
        elem = torch.tensor([], dtype=self.dtype).element_size()
        frames = WINDOW_MEMORY.frames_for(free, self.model_size(*frame_size), elem)
        frames = max(MIN_WINDOW, min(MAX_AUTO_WINDOW, frames))
        return (frames - 1) // 4 * 4 + 1

    @torch.no_grad()
    def encode_video(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised frames [T(4k+1),3,h,w] -> normalised video latent z0 [1,z,k+1,h/8,w/8]."""
        video = x.permute(1, 0, 2, 3).unsqueeze(0).to(device=self.device, dtype=self.vae.dtype)
        z0 = self.vae.encode(video).latent_dist.mean.float()
        if self.config.normalize_video_latent:
            mean, std = latent_stats(self.vae, z0.device)
            z0 = normalize_latents(z0, mean, std)
        return z0

    @torch.no_grad()
    def velocity(self, z: torch.Tensor, t: torch.Tensor, z0: torch.Tensor,
                 prompt_embeds: torch.Tensor) -> torch.Tensor:
        """v(z_t, t | text); with DVI the DiT sees cat([z_t, z0]) on channels, z_t first."""
        hidden = torch.cat([z, z0], dim=1) if self.config.dvi else z
        timestep = t.reshape(1).expand(hidden.shape[0]).to(device=self.device, dtype=torch.float32)
        return self.transformer(hidden_states=hidden.to(self.dtype), timestep=timestep,
                                encoder_hidden_states=prompt_embeds, return_dict=False)[0]

    @torch.no_grad()
    def decode_mask(self, z: torch.Tensor) -> torch.Tensor:
        """Mask latent -> logits [T(4k+1), h, w] in [-1, 1] (the VAE clamps)."""
        if self.config.unnormalize_mask_latent:
            mean, std = latent_stats(self.vae, z.device)
            z = unnormalize_latents(z, mean, std)
        decoded = self.vae.decode(z.to(self.vae.dtype), return_dict=False)[0]
        return logits_from_decoded(decoded).float()

    # ------------------------------------------------------------------ call

    @torch.no_grad()
    def __call__(self, frames: np.ndarray, expression: str, num_steps: int = 1,
                 schedule: str = "official", return_probs: bool = False,
                 progress: Optional[ProgressFn] = None, window: Optional[int] = None,
                 overlap: Optional[int] = None) -> np.ndarray:
        """frames uint8 [T,H,W,3] RGB -> bool [T,H,W] (float32 probabilities with
        return_probs=True) at the input size.

        schedule: "official" (one step at t=1000), "linear" (num_steps evenly spaced) or
        "mevis" (the MeViS script's shift-3 timesteps). window: frames per pass, 4k+1
        (default: 81 on CPU, from free memory on CUDA); overlap: frames shared by
        neighbouring windows (default (window-1)//4). progress(fraction, message) is called
        per window and step; an exception it raises (engine.Cancelled) stops the run.
        """
        with self._lock:
            # 1. Check inputs
            self.check_inputs(frames, expression, num_steps, schedule, return_probs, progress,
                              window, overlap)
            num_frames, height, width = frames.shape[:3]
            size = self.model_size(height, width)
            if window is None:
                window = self.default_window((height, width))
            if overlap is None:
                overlap = default_overlap(window)
            windows = plan_windows(num_frames, window, overlap)
            units = 1 + len(windows) * (num_steps + 2)
            done = [0]

            def report(message: str, advance: int = 1) -> None:
                if progress is not None:
                    progress(min(1.0, done[0] / units), message)
                done[0] += advance

            # 2. Encode the expression (cached per cleaned text; the encoder is offloaded)
            report("encoding the expression")
            prompt_embeds = self.encode_prompt(expression)

            # 3. Prepare timesteps
            timesteps, sigmas = schedule_timesteps(self.scheduler, schedule, num_steps)

            # 4. Output, filled window by window with blended probabilities
            out = np.zeros((num_frames, height, width),
                           np.float32 if return_probs else np.bool_)
            blender = Blender(out, self.config.threshold)
            c = self.config
            for k, win in enumerate(windows):
                tag = f"window {k + 1}/{len(windows)}" if len(windows) > 1 else "clip"
                # 5. Prepare frames: resize, normalise, pad to 4k+1 frames
                report(f"{tag}: encoding frames")
                x = preprocess_frames(frames[win.start:win.stop], size, c.frame_mean, c.frame_std)
                x = pad_to_4k1(x)
                # 6. Encode video latents z0
                z0 = self.encode_video(x)
                del x

                # 7. The ODE from the video latent to the mask latent
                def step_done(i, t, z, tag=tag):
                    report(f"{tag}: step {i + 1}/{num_steps} done (t={float(t):.0f})")

                report(f"{tag}: step 1/{num_steps}", advance=0)
                z = solve_flow(lambda zt, t, z0=z0: self.velocity(zt, t, z0, prompt_embeds), z0,
                               timesteps, sigmas, callback=step_done)
                # 8. Decode, drop padded frames, resize to the input size, sigmoid
                report(f"{tag}: decoding masks")
                logits = self.decode_mask(z)[:len(win)]
                del z, z0
                for i, prob in enumerate(probabilities_at(logits, (height, width))):
                    blender.add(win.start + i, prob, win.weights[i])
                next_start = windows[k + 1].start if k + 1 < len(windows) else num_frames
                # 9. Blend overlaps and threshold finished frames
                blender.finish_before(next_start)
            blender.finish()
            if progress is not None:
                progress(1.0, "done")
            return out
