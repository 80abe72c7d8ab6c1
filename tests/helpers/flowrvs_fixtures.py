"""Tiny seeded FlowRVS assets for the tests: a Wan2.1-layout folder (the real diffusers /
transformers classes at toy sizes, saved with their own save_pretrained), the same folder in
the Hugging Face cache layout, and `.pth` files in every layout the release used.

Built once per test session in a temporary folder (`assets()`); nothing is downloaded.
"""
from __future__ import annotations

import argparse
import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

# The tiny Wan layout and its seeded builders live in engine.flowrvs.presets (the benchmark
# builds the same models); re-exported here for the tests.
from engine.flowrvs.presets import (  # noqa: F401
    TINY_DIT,
    TINY_T5,
    TINY_VAE,
    WORDS,
    make_text_encoder,
    make_tokenizer,
    make_transformer,
    make_vae,
)

MAX_SIZE = (32, 48)          # the tests' resolution box instead of the release's 480 x 832
from tests.helpers.hf_cache import write_hf_cache_entry  # noqa: E402

HF_HASH = "0123456789abcdef0123456789abcdef01234567"


def write_wan_dir(root: Path) -> Path:
    """A Wan2.1-T2V-1.3B-Diffusers-shaped folder with tiny seeded components."""
    from diffusers import UniPCMultistepScheduler
    root.mkdir(parents=True, exist_ok=True)
    make_transformer(16, seed=1).save_pretrained(root / "transformer")
    make_vae(3, seed=2).save_pretrained(root / "vae")
    make_text_encoder(seed=3).save_pretrained(root / "text_encoder")
    make_tokenizer().save_pretrained(root / "tokenizer")
    # Wan ships a UniPC config with flow_shift 3.0; the release reads it into
    # FlowMatchEulerDiscreteScheduler, which ignores flow_shift (shift stays 1.0).
    UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                            flow_shift=3.0, num_train_timesteps=1000).save_pretrained(
        root / "scheduler")
    return root


def write_hf_cache(cache_root: Path, wan_dir: Path, repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers") -> Path:
    """The same files as a Hugging Face hub cache entry: blobs + snapshots/<hash> symlinks."""
    return write_hf_cache_entry(cache_root, repo, wan_dir, HF_HASH)


def flowrvs_order(model) -> list:
    """Parameters in the FlowRVS training class's order (attention: norm_q, norm_k, to_q,
    to_k, to_v, to_out), written independently of engine.flowrvs for the EMA fixture."""
    named = list(model.named_parameters())
    out, i = [], 0
    sub_rank = {"norm_q": 0, "norm_k": 1, "to_q": 2, "to_k": 3, "to_v": 4, "to_out": 5}
    while i < len(named):
        name = named[i][0]
        parts = name.split(".")
        if len(parts) > 3 and parts[0] == "blocks" and parts[2] in ("attn1", "attn2"):
            prefix = ".".join(parts[:3]) + "."
            j = i
            while j < len(named) and named[j][0].startswith(prefix):
                j += 1
            group = named[i:j]
            group.sort(key=lambda kv: sub_rank[kv[0][len(prefix):].split(".")[0]])
            out.extend(p for _, p in group)
            i = j
        else:
            out.append(named[i][1])
            i += 1
    return out


def ema_state(model, order: str = "flowrvs") -> dict:
    """diffusers EMAModel.state_dict() over the model's parameters in the given order."""
    from diffusers.training_utils import EMAModel
    params = flowrvs_order(model) if order == "flowrvs" else list(model.parameters())
    return EMAModel(params, decay=0.9999).state_dict()


def _args():
    return argparse.Namespace(lr=5e-5, epochs=50, dataset_file="mevis", num_frames=17)


def write_checkpoints(root: Path) -> dict:
    """Every DiT and VAE file layout; returns {name: path} plus the seeded source models."""
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    models = {}
    for ch, seed in ((16, 11), (32, 12)):
        dit = make_transformer(ch, seed=seed)
        models[ch] = dit
        sd = dit.state_dict()
        module_sd = {"module." + k: v for k, v in sd.items()}
        layouts = {
            f"dit{ch}_bare": sd,
            f"dit{ch}_module": module_sd,
            f"dit{ch}_model": {"model": sd, "epoch": 3, "args": _args()},
            f"dit{ch}_model_module": {"model": module_sd, "epoch": 3, "args": _args()},
            f"dit{ch}_ema": {"ema_model": ema_state(dit), "epoch": 3, "args": _args()},
            f"dit{ch}_ema_diffusers_order": {"ema_model": ema_state(dit, "diffusers")},
        }
        for name, obj in layouts.items():
            path = root / f"{name}.pth"
            torch.save(obj, path)
            files[name] = path
    # model and ema with different weights: 'auto' must pick 'model' (as the release's scripts)
    other = make_transformer(32, seed=13)
    models["other32"] = other
    both = {"model": models[32].state_dict(), "ema_model": ema_state(other), "args": _args()}
    files["dit32_model_and_ema"] = root / "dit32_model_and_ema.pth"
    torch.save(both, files["dit32_model_and_ema"])
    # broken files for strict loading
    sd = dict(models[16].state_dict())
    dropped = sd.pop("blocks.1.ffn.net.2.bias")
    files["dit16_missing"] = root / "dit16_missing.pth"
    torch.save(sd, files["dit16_missing"])
    sd["blocks.1.ffn.net.2.bias"] = dropped
    sd["blocks.0.attn2.extra_gate"] = torch.zeros(3)
    files["dit16_unexpected"] = root / "dit16_unexpected.pth"
    torch.save(sd, files["dit16_unexpected"])
    # profiler buffers the release's loaders ignore
    sd = dict(models[16].state_dict())
    sd["total_ops"] = torch.zeros(1, dtype=torch.float64)
    sd["blocks.0.total_params"] = torch.zeros(1, dtype=torch.float64)
    files["dit16_thop"] = root / "dit16_thop.pth"
    torch.save({"model": sd}, files["dit16_thop"])

    # tuned VAE: Wan's encoder, a fine-tuned decoder with a 1-channel causal conv_out
    from diffusers import AutoencoderKLWan
    wan_vae = AutoencoderKLWan.from_pretrained(str(root.parent / "wan" / "vae"), low_cpu_mem_usage=False)
    tuned = make_vae(1, seed=21, encoder_from=wan_vae)
    models["tuned_vae"] = tuned
    vsd = {"vae." + k: v for k, v in tuned.state_dict().items()}
    files["vae_model"] = root / "tuned_vae.pth"
    torch.save({"model": vsd, "epoch": 2, "args": _args()}, files["vae_model"])
    files["vae_bare"] = root / "tuned_vae_bare.pth"
    torch.save(vsd, files["vae_bare"])
    bad = dict(vsd)
    bad.pop("vae.decoder.conv_out.bias")
    files["vae_missing"] = root / "tuned_vae_missing.pth"
    torch.save({"model": bad}, files["vae_missing"])
    return files, models


class Assets:
    def __init__(self, root: Path):
        self.root = root
        self.wan = write_wan_dir(root / "wan")
        self.hf_cache = root / "hub"
        self.hf_entry = write_hf_cache(self.hf_cache, self.wan)
        self.files, self.models = write_checkpoints(root / "ckpt")


@functools.lru_cache(maxsize=1)
def assets() -> Assets:
    root = Path(tempfile.mkdtemp(prefix="flowrvs-test-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return Assets(root)


@functools.lru_cache(maxsize=None)
def pipeline(dit: str = "dit32_model", vae: str = "vae_model", **kwargs):
    """A cached FlowRVSPipeline over the tiny assets (tests must not mutate it)."""
    from engine.flowrvs import FlowRVSPipeline
    a = assets()
    return FlowRVSPipeline.from_official(a.wan, a.files[dit], a.files[vae] if vae else None,
                                         device="cpu", max_size=MAX_SIZE, **kwargs)


def video(num_frames: int, height: int = 40, width: int = 60, seed: int = 0) -> np.ndarray:
    """A moving bright square on a textured background, uint8 [T,H,W,3]."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 120, (height, width, 3), dtype=np.uint8)
    frames = np.repeat(base[None], num_frames, axis=0)
    s = max(4, min(height, width) // 3)
    for t in range(num_frames):
        x = (2 * t) % max(1, width - s)
        frames[t, height // 4:height // 4 + s, x:x + s] = (230, 40, 40)
    return frames
