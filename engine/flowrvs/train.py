"""Train or fine-tune FlowRVS on MeViS-format data: `python -m engine.flowrvs.train`.

Data: the layout the studio exports (app/formats/mevis.py): JPEGImages/<vid>/<frame>.jpg,
meta_expressions.json and mask_dict.json; the target of an expression is the union of its
objects' masks. Each sample is one expression on a clip of --num-frames (4k+1) consecutive
frames, resized with the inference rule (frames.py) into the --size box.

Two stages (--stage):

- `flow` (the release's training, flowrvs-release.md "Training"): the text encoder and the VAE
  encoder are frozen (the text encoder is trained too with --train-text-encoder, which the
  tiny demo needs because no pretrained tiny UMT5 exists). For a batch:
      x0 = normalise(vae.encode(video).latent_dist.sample())   (SPA: sampling + jitter)
      x1 = vae.encode(2 * mask - 1, as 3 channels).latent_dist.mean      (raw, not normalised)
      timestep: Boundary-Biased Sampling (a fraction p of the batch at 1000, the rest
                clamp(floor(u * 1000), 1, 1000), u ~ U(0, 1), shuffled); t = timestep / 1000
      x_t = t * x0 + (1 - t) * x1;  target u = x0 - x1;  loss = MSE(DiT([x_t, x0]), u)
  ([x_t, x0] on channels with DVI, x_t alone without). AdamW, gradient clipping, EMA (fp32
  shadow), optional gradient checkpointing, bf16 autocast on CUDA.
- `vae`: the mask VAE. With official weights (--wan-dir) it does what the release did: the
  encoder stays frozen and the decoder, its conv_out replaced by a 1-channel conv (96 -> 1,
  initialised from the mean of the 3 RGB rows), learns to decode mask latents to 2*mask-1.
  From a tiny config (--tiny) nothing pretrained exists, so the whole VAE is trained from
  scratch with a 4-channel head (RGB + mask): frames are reconstructed on channels 0-2 (so
  frame latents keep colour and shape) and masks on channel 3; the saved VAE keeps only the
  mask row of conv_out (1 channel, the tuned_vae layout). latents_mean/std are then measured
  on the training frames and written into the VAE config.

Checkpoints (<out>/checkpoint.pt, every --save-every steps and at the end) hold the model(s),
the EMA, the optimizer, the step and every RNG state; --resume continues exactly where a run
stopped (the same batches, timesteps and noise). At the end <out>/pipeline/ is a
FlowRVSPipeline.save_pretrained folder (EMA weights unless --no-ema-export).

    python -m engine.flowrvs.train --data DIR --tiny --stage vae  --out runs/a --max-steps 2000
    python -m engine.flowrvs.train --data DIR --tiny --stage flow --vae-from runs/a/pipeline \
        --out runs/b --max-steps 4000
    python -m engine.flowrvs.train --data DIR --tiny --stage vae --vae-from runs/a/pipeline \
        --no-train-vae-encoder --out runs/c      # decoder-only tuning (encoder frozen)
    python -m engine.flowrvs.train --data DIR --wan-dir Wan2.1-T2V-1.3B-Diffusers \
        --dit-checkpoint FlowRVS_dit_mevis.pth --vae-checkpoint tuned_vae.pth --out runs/ft
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from .config import FlowRVSConfig
from .frames import pad_to_4k1, preprocess_frames

log = logging.getLogger("engine.flowrvs.train")

CHECKPOINT = "checkpoint.pt"

# The tiny config of the demo model (real diffusers / transformers classes at toy sizes).
TINY_DIT = dict(patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=24,
                in_channels=16, out_channels=16, text_dim=64, freq_dim=32, ffn_dim=256,
                num_layers=6, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
                eps=1e-6, rope_max_seq_len=64)
TINY_VAE = dict(base_dim=8, z_dim=16, dim_mult=[1, 2, 2, 2], num_res_blocks=1,
                temperal_downsample=[False, True, True])
TINY_T5 = dict(d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4,
               relative_attention_num_buckets=8, relative_attention_max_distance=16,
               pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0)
SPECIAL_TOKENS = ("<pad>", "</s>", "<unk>")


# ---------------------------------------------------------------------------- data

def _decode_rle(rle: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils
    counts = rle["counts"]
    if isinstance(counts, list):
        rle = mask_utils.frPyObjects(rle, *rle["size"])
    elif isinstance(counts, str):
        rle = {"size": rle["size"], "counts": counts.encode("ascii")}
    return mask_utils.decode(rle).astype(bool)


@dataclass
class Sample:
    vid: str
    eid: str
    expression: str
    anno_ids: tuple


class MevisData:
    """Expressions of a MeViS-format folder; clips are decoded on demand and kept in memory.

    clip(i, start, flip) -> (frames uint8 [T,H,W,3], target bool [T,H,W], expression).
    """

    def __init__(self, root, num_frames: int = 5, max_videos: Optional[int] = None):
        from PIL import Image  # noqa: F401  (fail early if Pillow is missing)
        self.root = Path(root)
        meta_path = self.root / "meta_expressions.json"
        dict_path = self.root / "mask_dict.json"
        for p in (meta_path, dict_path):
            if not p.is_file():
                raise FileNotFoundError(f"{p} not found: --data must be a MeViS-format folder "
                                        "(JPEGImages/, meta_expressions.json, mask_dict.json), "
                                        "as the studio's MeViS export writes")
        if num_frames < 1 or (num_frames - 1) % 4:
            raise ValueError(f"num_frames must be 4k+1 (1, 5, 9, 17, ...), got {num_frames}")
        self.num_frames = num_frames
        self.videos = json.loads(meta_path.read_text())["videos"]
        self.mask_dict = json.loads(dict_path.read_text())
        self.samples: list[Sample] = []
        if max_videos is not None:
            self.videos = {v: self.videos[v] for v in sorted(self.videos)[:max_videos]}
        for vid in sorted(self.videos):
            for eid, e in sorted(self.videos[vid]["expressions"].items(), key=lambda kv: kv[0]):
                anno = tuple(str(a) for a in e.get("anno_id", []))
                if not anno:
                    continue
                self.samples.append(Sample(vid, eid, str(e["exp"]).lower(), anno))
        if not self.samples:
            raise ValueError(f"{meta_path} holds no expression with objects")
        self._frames: dict = {}

    def __len__(self) -> int:
        return len(self.samples)

    def vocabulary(self) -> list[str]:
        words = set()
        for s in self.samples:
            words.update(_words(s.expression))
        return sorted(words)

    def num_video_frames(self, vid: str) -> int:
        return len(self.videos[vid]["frames"])

    def video(self, vid: str) -> np.ndarray:
        if vid not in self._frames:
            from PIL import Image
            folder = self.root / "JPEGImages" / vid
            self._frames[vid] = np.stack([
                np.asarray(Image.open(folder / f"{name}.jpg").convert("RGB"))
                for name in self.videos[vid]["frames"]])
        return self._frames[vid]

    def target(self, sample: Sample, shape) -> np.ndarray:
        out = np.zeros(shape, bool)
        for a in sample.anno_ids:
            for f, rle in enumerate(self.mask_dict.get(a, [])):
                if rle is not None and f < shape[0]:
                    out[f] |= _decode_rle(rle)
        return out

    def clip(self, index: int, start: int = 0, flip: bool = False):
        s = self.samples[index]
        video = self.video(s.vid)
        mask = self.target(s, video.shape[:3])
        frames, target = video[start:start + self.num_frames], mask[start:start + self.num_frames]
        if len(frames) < self.num_frames:  # short video: repeat the last frame
            extra = self.num_frames - len(frames)
            frames = np.concatenate([frames, np.repeat(frames[-1:], extra, 0)])
            target = np.concatenate([target, np.repeat(target[-1:], extra, 0)])
        expression = s.expression
        if flip:  # the release's horizontal flip, swapping left and right in the caption
            frames, target = frames[:, :, ::-1], target[:, :, ::-1]
            expression = swap_left_right(expression)
        return np.ascontiguousarray(frames), np.ascontiguousarray(target), expression


def _words(text: str) -> list[str]:
    import re
    return re.findall(r"\w+|[^\w\s]", text.lower())


def swap_left_right(text: str) -> str:
    import re
    return re.sub(r"\b(left|right)\b", lambda m: "right" if m.group(1) == "left" else "left", text)


def build_tokenizer(words):
    """A word-level tokenizer over `words` (tokenizers library), as a PreTrainedTokenizerFast:
    lower-cased, split on whitespace and punctuation, `</s>` appended like T5's."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for w in sorted(set(words)):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>",
                                                       special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


# ---------------------------------------------------------------------------- the recipe

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


class EMA:
    """Exponential moving average of a model's float parameters (fp32 shadow):
    shadow <- decay * shadow + (1 - decay) * param, after every optimizer step."""

    def __init__(self, model: torch.nn.Module, decay: float = 0.9999):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: p.detach().float().clone() for k, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for k, p in model.named_parameters():
            self.shadow[k].mul_(self.decay).add_(p.detach().float(), alpha=1 - self.decay)

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        for k, p in model.named_parameters():
            p.copy_(self.shadow[k].to(p.dtype))

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}


def flow_pair(x0: torch.Tensor, x1: torch.Tensor, timesteps: torch.Tensor):
    """x_t = t * x0 + (1 - t) * x1 with t = timestep / 1000, and the target u = x0 - x1."""
    t = (timesteps / 1000.0).view(-1, 1, 1, 1, 1).to(x0)
    return t * x0 + (1 - t) * x1, x0 - x1


def encode_texts(tokenizer, text_encoder, prompts, max_sequence_length: int) -> torch.Tensor:
    """Like text.encode_prompt (cleaned prompts, real-token rows then zeros), batched and with
    gradients when the text encoder trains."""
    from .text import clean_prompt
    inputs = tokenizer([clean_prompt(p) for p in prompts], padding="max_length",
                       max_length=max_sequence_length, truncation=True, add_special_tokens=True,
                       return_attention_mask=True, return_tensors="pt")
    device = next(text_encoder.parameters()).device
    ids, mask = inputs.input_ids.to(device), inputs.attention_mask.to(device)
    hidden = text_encoder(ids, mask).last_hidden_state
    return hidden * mask.unsqueeze(-1).to(hidden.dtype)


# ---------------------------------------------------------------------------- models

def tiny_components(words, dvi: bool = True, seed: int = 0, vae_out_channels: int = 4):
    """Seeded tiny transformer / VAE / UMT5 / tokenizer (the demo model's sizes)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(words)
    transformer = WanTransformer3DModel(**{**TINY_DIT, "in_channels": 32 if dvi else 16})
    vae = AutoencoderKLWan(**TINY_VAE, out_channels=vae_out_channels)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), **TINY_T5))
    return transformer, vae, text_encoder, tokenizer


def _plain(config) -> dict:
    """A model config without diffusers' private keys: `_use_default_values` would make
    from_config drop values changed with register_to_config (e.g. latents_mean)."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def mask_vae(vae, row: Optional[int] = None):
    """The VAE with a 1-channel conv_out: row `row` of the current conv_out, or (row=None)
    the mean of its rows (the start of the release's decoder tuning)."""
    from diffusers import AutoencoderKLWan
    conv = vae.decoder.conv_out
    if conv.out_channels == 1:
        return vae
    new = AutoencoderKLWan.from_config({**_plain(vae.config), "out_channels": 1})
    state = vae.state_dict()
    w, b = state["decoder.conv_out.weight"], state["decoder.conv_out.bias"]
    if row is None:
        state["decoder.conv_out.weight"], state["decoder.conv_out.bias"] = \
            w.mean(0, keepdim=True), b.mean(0, keepdim=True)
    else:
        state["decoder.conv_out.weight"], state["decoder.conv_out.bias"] = \
            w[row:row + 1].clone(), b[row:row + 1].clone()
    new.load_state_dict(state, strict=True)
    return new.to(next(vae.parameters()).device)


def dvi_transformer(transformer, dvi: bool):
    """Adapt base weights to DVI (32 input channels): copy them into channels 0-15, zero
    16-31, keep the bias (the release's rule). No-op when the channels already match."""
    from diffusers import WanTransformer3DModel
    z = transformer.config.out_channels
    want = 2 * z if dvi else z
    if transformer.config.in_channels == want:
        return transformer
    if not dvi:
        raise ValueError(f"the checkpoint takes {transformer.config.in_channels} input channels "
                         "(DVI); fine-tune it with --dvi, or start from a 16-channel one")
    new = WanTransformer3DModel.from_config({**_plain(transformer.config), "in_channels": want})
    state = transformer.state_dict()
    w = state["patch_embedding.weight"]
    state["patch_embedding.weight"] = torch.cat([w, torch.zeros_like(w)], dim=1)
    new.load_state_dict(state, strict=True)
    return new


# ---------------------------------------------------------------------------- trainer

class Trainer:
    """One training run; step() does one optimizer step and returns the loss."""

    def __init__(self, data: MevisData, transformer, vae, text_encoder, tokenizer, args):
        self.data, self.args = data, args
        self.device = torch.device(args.device)
        self.stage = args.stage
        self.transformer, self.vae = transformer, vae
        self.text_encoder, self.tokenizer = text_encoder, tokenizer
        self.size = tuple(args.size)
        self.generator = torch.Generator().manual_seed(args.seed)
        self.spa = SPA(sample=not args.no_spa_sample, norm_jitter=args.spa_norm_jitter)
        self.step_count = 0
        self.losses: list[float] = []
        self._cache: dict = {}
        for m in (transformer, vae, text_encoder):
            m.to(self.device).requires_grad_(False)
        if self.stage == "flow":
            self.model = transformer
            params = list(transformer.parameters())
            transformer.requires_grad_(True).train()
            if args.train_text_encoder:
                text_encoder.requires_grad_(True).train()
                params += list(text_encoder.parameters())
            if args.gradient_checkpointing:
                transformer.enable_gradient_checkpointing()
            self.trained = [transformer] + ([text_encoder] if args.train_text_encoder else [])
        elif self.stage == "vae":
            self.model = vae
            vae.requires_grad_(True).train()
            if not args.train_vae_encoder:  # the release: encoder frozen, decoder tuned
                for name in ("encoder", "quant_conv"):
                    getattr(vae, name).requires_grad_(False)
            params = [p for p in vae.parameters() if p.requires_grad]
            self.trained = [vae]
        else:
            raise ValueError(f"--stage must be 'flow' or 'vae', got {self.stage!r}")
        self.optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
        self.ema = EMA(self.model, args.ema_decay) if args.ema_decay > 0 else None
        self.autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                         if self.device.type == "cuda" and args.bf16 else _Null())

    # -- data ---------------------------------------------------------------------------
    def _batch_items(self):
        g = self.generator
        items = []
        for _ in range(self.args.batch_size):
            i = int(torch.randint(len(self.data), (1,), generator=g))
            n = self.data.num_video_frames(self.data.samples[i].vid)
            start = int(torch.randint(max(1, n - self.data.num_frames + 1), (1,), generator=g))
            flip = bool(self.args.hflip and torch.rand((), generator=g).item() < 0.5)
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
        if not self.args.cache_latents:
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
        torch.nn.utils.clip_grad_norm_(params, self.args.grad_clip)
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
        mean, std = _latent_stats(self.vae, self.device)
        x0 = self.spa.start_point(z_mean, z_std, mean, std, self.generator)
        timesteps = sample_timesteps(len(items), self.args.bbs_p, self.generator,
                                     getattr(self.args, "timestep_bias", 0.0)).to(self.device)
        x_t, target = flow_pair(x0, x1, timesteps)
        hidden = torch.cat([x_t, x0], dim=1) if self.transformer.config.in_channels == \
            2 * x0.shape[1] else x_t
        prompts = [self.data.samples[i].expression for i, _, _ in items]
        prompts = [swap_left_right(p) if it[2] else p for p, it in zip(prompts, items)]
        if self.args.train_text_encoder:
            text = encode_texts(self.tokenizer, self.text_encoder, prompts, self.args.text_length)
        else:
            with torch.no_grad():
                text = encode_texts(self.tokenizer, self.text_encoder, prompts,
                                    self.args.text_length)
        pred = self.transformer(hidden_states=hidden, timestep=timesteps,
                                encoder_hidden_states=text, return_dict=False)[0]
        return F.mse_loss(pred.float(), target.float())

    def _vae_loss(self, items) -> torch.Tensor:
        xs, ms = zip(*[self._tensors(it)[:2] for it in items])
        x, m = torch.stack(xs).to(self.device), torch.stack(ms).to(self.device)
        b = len(items)
        if self.vae.config.out_channels != 4:   # decoder tuning: masks only, encoder frozen
            with torch.no_grad():
                z = self.vae.encode(m).latent_dist.mean
            return mask_loss(decode_unclamped(self.vae, z)[:, :1], m[:, :1], self.args.mask_fg_weight)
        dist = self.vae.encode(torch.cat([x, m])).latent_dist
        z = dist.sample(generator=None) if self.args.train_vae_encoder else dist.mean
        out = decode_unclamped(self.vae, z)   # tiny from scratch: RGB rows and the mask row
        mask = mask_loss(out[b:, 3:], m[:, :1], self.args.mask_fg_weight)
        rgb = F.mse_loss(out[:b, :3], x)
        kl = dist.kl()[:b].mean() / z[0].numel()
        return rgb + self.args.mask_weight * mask + self.args.kl_weight * kl

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
            "args": vars(self.args),
        }

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    def load(self, path) -> None:
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
                               max_sequence_length=self.args.text_length,
                               max_height=max(h, self.args.max_height or h),
                               max_width=max(w, self.args.max_width or w),
                               notes={"source": "engine.flowrvs.train", "stage": self.stage,
                                      "steps": self.step_count,
                                      "weights": "ema" if use_ema and self.ema else "model"})
        return FlowRVSPipeline(transformer, vae, copy.deepcopy(self.text_encoder),
                               self.tokenizer, make_scheduler(), config)


def decode_unclamped(vae, z: torch.Tensor) -> torch.Tensor:
    """vae.decode without its final clamp to [-1, 1] (diffusers' AutoencoderKLWan._decode,
    non-tiled): a loss on the clamped output has no gradient where the output is beyond
    +-1, so a decoder that pushes every pixel to background could never recover."""
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    outs = []
    for i in range(z.shape[2]):
        vae._conv_idx = [0]
        outs.append(vae.decoder(x[:, :, i:i + 1], feat_cache=vae._feat_map,
                                feat_idx=vae._conv_idx, first_chunk=(i == 0)))
    vae.clear_cache()
    out = torch.cat(outs, 2)
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


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _latent_stats(vae, device):
    from .frames import latent_stats
    return latent_stats(vae, device)


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


# ---------------------------------------------------------------------------- building

def _vocabulary(args, data: MevisData) -> list[str]:
    words = set(data.vocabulary())
    if args.demo_world_vocabulary:
        from engine.demo_world import VOCABULARY
        words.update(VOCABULARY)
    return sorted(words)


def build(args, data: MevisData):
    """-> (transformer, vae, text_encoder, tokenizer) per the source flags."""
    if args.vae_from or args.resume_from_pipeline:
        from .pipeline import FlowRVSPipeline
        src = args.resume_from_pipeline or args.vae_from
        pipe = FlowRVSPipeline.from_pretrained(src, device="cpu")
        vae, text_encoder, tokenizer = pipe.vae, pipe.text_encoder, pipe.tokenizer
        if args.resume_from_pipeline:
            transformer = dvi_transformer(pipe.transformer, args.dvi)
        else:
            transformer = tiny_components(_vocabulary(args, data), dvi=args.dvi, seed=args.seed)[0]
            torch.manual_seed(args.seed)
            from transformers import UMT5Config, UMT5EncoderModel
            if args.tiny:   # tokenizer and text encoder over this data's words
                tokenizer = build_tokenizer(_vocabulary(args, data))
                text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), **TINY_T5))
        return transformer, vae, text_encoder, tokenizer
    if args.tiny:
        return tiny_components(_vocabulary(args, data), dvi=args.dvi, seed=args.seed,
                               vae_out_channels=4 if args.stage == "vae" else 1)
    if not (args.wan_dir and args.dit_checkpoint):
        raise SystemExit("give --tiny, or --wan-dir and --dit-checkpoint (official weights), or "
                         "--vae-from / --resume-from-pipeline (a save_pretrained folder)")
    from .pipeline import FlowRVSPipeline
    pipe = FlowRVSPipeline.from_official(args.wan_dir, args.dit_checkpoint, args.vae_checkpoint,
                                         device="cpu", dtype="float32")
    vae = pipe.vae
    if args.stage == "vae" and vae.config.out_channels != 1:
        vae = mask_vae(vae)
    return dvi_transformer(pipe.transformer, args.dvi), vae, pipe.text_encoder, pipe.tokenizer


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m engine.flowrvs.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="MeViS-format folder")
    p.add_argument("--out", required=True, help="output folder (checkpoint.pt, pipeline/)")
    p.add_argument("--stage", choices=("flow", "vae"), default="flow")
    src = p.add_argument_group("weights")
    src.add_argument("--tiny", action="store_true", help="random tiny config (the demo sizes)")
    src.add_argument("--wan-dir", help="Wan2.1-T2V-1.3B-Diffusers folder (official weights)")
    src.add_argument("--dit-checkpoint", help="FlowRVS DiT .pth to start from")
    src.add_argument("--vae-checkpoint", help="tuned_vae.pth")
    src.add_argument("--vae-from", help="save_pretrained folder whose VAE to use (flow stage "
                                        "after the tiny VAE stage)")
    src.add_argument("--resume-from-pipeline", help="save_pretrained folder to fine-tune")
    tr = p.add_argument_group("training")
    tr.add_argument("--max-steps", type=int, default=1000)
    tr.add_argument("--batch-size", type=int, default=1)
    tr.add_argument("--lr", type=float, default=5e-5)
    tr.add_argument("--weight-decay", type=float, default=5e-4)
    tr.add_argument("--grad-clip", type=float, default=1.0)
    tr.add_argument("--ema-decay", type=float, default=0.9999, help="0 disables the EMA")
    tr.add_argument("--bbs-p", type=float, default=0.5, help="Boundary-Biased Sampling share")
    tr.add_argument("--timestep-bias", type=float, default=0.0,
                    help="lean the non-boundary timesteps toward t=1000, the start of the flow "
                         "(density ~ t**bias; 0 = the release's uniform)")
    tr.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                    help="stop (and export) after the first step past this many seconds since "
                         "the run started (loading and latent encoding included)")
    tr.add_argument("--no-spa-sample", action="store_true",
                    help="SPA off part 1: x0 from the latent mean, not a sample")
    tr.add_argument("--spa-norm-jitter", type=float, default=0.05,
                    help="SPA normalisation perturbation (0 = off)")
    tr.add_argument("--dvi", action=argparse.BooleanOptionalAction, default=True,
                    help="Direct Video Injection (32 input channels)")
    tr.add_argument("--train-text-encoder", action=argparse.BooleanOptionalAction, default=None,
                    help="default: on with --tiny, off otherwise (the release freezes it)")
    tr.add_argument("--train-vae-encoder", action=argparse.BooleanOptionalAction, default=None,
                    help="vae stage: default on with --tiny, off otherwise (the release)")
    tr.add_argument("--mask-weight", type=float, default=4.0)
    tr.add_argument("--mask-fg-weight", type=float, default=2.0,
                    help="weight of foreground pixels in the mask loss")
    tr.add_argument("--kl-weight", type=float, default=1e-3)
    tr.add_argument("--demo-world-vocabulary", action="store_true",
                    help="tiny tokenizer: add engine.demo_world.VOCABULARY to the data's words")
    tr.add_argument("--hflip", action="store_true", help="flip clips, swapping left/right")
    tr.add_argument("--gradient-checkpointing", action="store_true")
    tr.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="bf16 autocast on CUDA")
    tr.add_argument("--num-frames", type=int, default=5)
    tr.add_argument("--max-videos", type=int, default=None, help="use the first N videos")
    tr.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"))
    tr.add_argument("--max-height", type=int, default=None)
    tr.add_argument("--max-width", type=int, default=None)
    tr.add_argument("--text-length", type=int, default=None,
                    help="text tokens (default 16 with --tiny, 256 otherwise)")
    tr.add_argument("--cache-latents", action=argparse.BooleanOptionalAction, default=True)
    tr.add_argument("--precompute-latents", action="store_true",
                    help="flow stage: encode every clip (from frame 0) before training")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    tr.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    tr.add_argument("--save-every", type=int, default=200)
    tr.add_argument("--log-every", type=int, default=20)
    tr.add_argument("--resume", nargs="?", const="auto", default=None,
                    help="continue from <out>/checkpoint.pt (or the given file)")
    tr.add_argument("--no-ema-export", action="store_true")
    args = p.parse_args(argv)
    tiny = args.tiny
    if args.train_text_encoder is None:
        args.train_text_encoder = tiny
    if args.train_vae_encoder is None:
        args.train_vae_encoder = tiny and not args.vae_from
    if args.text_length is None:
        args.text_length = 16 if tiny else 256
    return args


def run(args) -> Trainer:
    started = time.time()           # --time-limit counts loading and latent encoding too
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    random.seed(args.seed)
    data = MevisData(args.data, args.num_frames, args.max_videos)
    transformer, vae, text_encoder, tokenizer = build(args, data)
    trainer = Trainer(data, transformer, vae, text_encoder, tokenizer, args)
    out = Path(args.out)
    if args.resume:
        path = out / CHECKPOINT if args.resume == "auto" else Path(args.resume)
        if path.is_file():
            trainer.load(path)
            log.info("resumed from %s at step %d", path, trainer.step_count)
        elif args.resume != "auto":
            raise FileNotFoundError(f"--resume {path}: no such checkpoint")
    if args.stage == "flow" and args.precompute_latents:
        trainer.precompute_latents()
    t0 = time.time()
    end = args.max_steps
    while trainer.step_count < end:
        loss = trainer.step()
        s = trainer.step_count
        time_limit = getattr(args, "time_limit", None)
        if time_limit is not None and time.time() - started > time_limit and s < end:
            log.info("time limit %g s reached at step %d", time_limit, s)
            end = s
        if s % args.log_every == 0 or s == end:
            recent = trainer.losses[-args.log_every:]
            log.info("step %d loss %.5f (mean of last %d: %.5f) %.1fs", s, loss, len(recent),
                     sum(recent) / len(recent), time.time() - t0)
        if s % args.save_every == 0 or s == end:
            trainer.save(out / CHECKPOINT)
    if args.stage == "vae" and args.train_vae_encoder:
        model = copy.deepcopy(trainer.vae)
        if trainer.ema is not None and not args.no_ema_export:
            trainer.ema.copy_to(model)
        mean, std = measure_latent_stats(model.eval(), data, tuple(args.size), device=trainer.device)
        trainer.vae.register_to_config(latents_mean=mean, latents_std=std)
    pipe = trainer.pipeline(use_ema=not args.no_ema_export)
    pipe.save_pretrained(out / "pipeline")
    log.info("saved %s", out / "pipeline")
    return trainer


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
