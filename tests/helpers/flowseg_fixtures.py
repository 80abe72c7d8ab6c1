"""Tiny seeded FlowSeg assets for the tests: random pipelines at the `tiny` preset (cached per
set of switches), test images, and public-model-shaped base folders (a full SiglipModel, a
full SamModel, a Qwen3 causal LM with its tokenizer) in a folder and in the Hugging Face cache
layout, built once per session in a temporary folder. Nothing is downloaded.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.helpers.hf_cache import write_hf_cache_entry  # noqa: E402

HF_HASH = "89abcdef0123456789abcdef0123456789abcdef"
EXPRESSION = "the red square left of the blue circle"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core box: one intra-op thread is ~40x faster than two
    spinning OpenMP threads. Import this into a test module to apply it there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def _pipeline(items: tuple):
    from engine.flowseg.presets import random_pipeline
    return random_pipeline("tiny", seed=0, device="cpu", **dict(items))


def pipeline(**overrides):
    """A tiny FlowSegPipeline with random weights (seed 0); shared, so don't modify it."""
    return _pipeline(tuple(sorted(overrides.items())))


def image(seed: int = 0, height: int = 40, width: int = 56) -> np.ndarray:
    """Smooth colour blobs (not white noise), uint8 RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.zeros((height, width, 3), np.float64)
    for _ in range(4):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(4, max(height, width) / 2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        img += blob[..., None] * rng.uniform(0, 255, 3)
    img += rng.normal(0, 8, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _hf_cache_entry(cache_root: Path, repo: str, folder: Path) -> Path:
    """`folder` as a hub cache entry: blobs + snapshots/<hash> symlinks + refs/main."""
    return write_hf_cache_entry(cache_root, repo, folder, HF_HASH)


@functools.lru_cache(maxsize=1)
def components() -> SimpleNamespace:
    """Base-model folders shaped like the public ones, at tiny sizes."""
    from transformers import (
        Qwen3Config,
        Qwen3ForCausalLM,
        SamConfig,
        SamModel,
        SiglipConfig,
        SiglipModel,
    )

    from engine.flowseg.presets import preset_config, word_tokenizer
    root = Path(tempfile.mkdtemp(prefix="flowseg-components-"))
    atexit.register(shutil.rmtree, root, True)
    tiny = preset_config("tiny")
    torch.manual_seed(1)
    siglip = SiglipModel(SiglipConfig(
        vision_config=tiny.siglip,
        text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, vocab_size=64, bos_token_id=1,
                         eos_token_id=2, pad_token_id=0)))
    siglip.save_pretrained(root / "siglip")
    torch.manual_seed(2)
    sam = SamModel(SamConfig(
        vision_config=tiny.sam,
        prompt_encoder_config=dict(hidden_size=16, image_size=64, patch_size=8,
                                   mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                 mlp_dim=32, iou_head_hidden_dim=16)))
    sam.save_pretrained(root / "sam")
    torch.manual_seed(3)
    tokenizer = word_tokenizer()
    llm = Qwen3ForCausalLM(Qwen3Config.from_dict({**tiny.llm, "vocab_size": len(tokenizer)}))
    llm.save_pretrained(root / "llm")
    tokenizer.save_pretrained(root / "llm")
    cache = root / "hub"
    entries = {name: _hf_cache_entry(cache, f"FlowLabelTest/{name}", root / name)
               for name in ("siglip", "sam", "llm")}
    return SimpleNamespace(root=root, siglip=root / "siglip", sam=root / "sam",
                           llm=root / "llm", cache=cache, entries=entries,
                           models={"siglip": siglip, "sam": sam, "llm": llm})
