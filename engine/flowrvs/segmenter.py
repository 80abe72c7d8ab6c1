"""The FlowRVS engine behind the segmenter contract (engine/registry.py).

Registered by the app as "flowrvs" with the factory `load`; model locations come from
keyword arguments (launch.py flags) or environment variables:

    --flowrvs-wan-dir DIR      FLOWLABEL_FLOWRVS_WAN_DIR     Wan2.1-T2V-1.3B-Diffusers folder
    --flowrvs-checkpoint PTH   FLOWLABEL_FLOWRVS_CHECKPOINT  FlowRVS DiT .pth
    --flowrvs-vae PTH          FLOWLABEL_FLOWRVS_VAE         FlowRVS tuned_vae.pth
    (model_dir)                FLOWLABEL_FLOWRVS_MODEL_DIR   a save_pretrained folder instead

No torch at import time: the pipeline is imported inside `load`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from engine import hub
from engine.registry import EngineNotConfigured, ModelPath

ENV_VARS = {
    "wan_dir": ModelPath("--flowrvs-wan-dir", "FLOWLABEL_FLOWRVS_WAN_DIR",
                         "local Wan2.1-T2V-1.3B-Diffusers folder (or its Hugging Face cache path)"),
    "dit_checkpoint": ModelPath("--flowrvs-checkpoint", "FLOWLABEL_FLOWRVS_CHECKPOINT",
                                "FlowRVS DiT .pth checkpoint"),
    "vae_checkpoint": ModelPath("--flowrvs-vae", "FLOWLABEL_FLOWRVS_VAE", "FlowRVS tuned_vae.pth"),
    "model_dir": ModelPath("--flowrvs-model-dir", "FLOWLABEL_FLOWRVS_MODEL_DIR",
                           "FlowRVS folder written by save_pretrained (instead of the three above)"),
}


# The release's current files in its repo (xmz111/FlowRVS), looked up when a flag names a folder,
# a cache entry or a repo id instead of the file itself.
RELEASE_FILES = {"dit": "FlowRVS_dit_mevis.pth", "vae": "tuned_vae.pth"}


class FlowRVSNotConfigured(EngineNotConfigured):
    """The FlowRVS engine was asked for without the model files it needs."""


class FlowRVSSegmenter:
    """segment_video / segment_image over a FlowRVSPipeline (the contract in engine.registry)."""

    def __init__(self, pipeline, num_steps: int = 1, schedule: str = "official",
                 window: Optional[int] = None):
        self.pipeline = pipeline
        self.num_steps = num_steps
        self.schedule = schedule
        self.window = window

    def segment_video(self, frames: np.ndarray, expression: str, progress=None) -> np.ndarray:
        return self.pipeline(frames, expression, num_steps=self.num_steps,
                             schedule=self.schedule, progress=progress, window=self.window)

    def segment_image(self, image: np.ndarray, expression: str) -> np.ndarray:
        if not isinstance(image, np.ndarray) or image.ndim != 3:
            raise ValueError(f"image must be a numpy array of shape [H,W,3] (RGB); got "
                             f"{type(image).__name__} of shape {getattr(image, 'shape', None)}")
        return self.pipeline(image[None], expression, num_steps=self.num_steps,
                             schedule=self.schedule)[0]


def _setting(name: str, value):
    return ENV_VARS[name].value(value)


def _is_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~"))


def _found(name: str, resolve) -> Path:
    try:
        return resolve()
    except FileNotFoundError as e:
        raise FileNotFoundError(f"FlowRVS {name}: {e}; fix {_where(name)}") from None


def _where(name: str) -> str:
    return ENV_VARS[name].where()


def load(device=None, wan_dir=None, dit_checkpoint=None, vae_checkpoint=None, model_dir=None,
         *, num_steps: int = 1, schedule: str = "official", window: Optional[int] = None,
         dtype=None) -> FlowRVSSegmenter:
    """Factory for engine.register_engine: a FlowRVSSegmenter on `device`.

    Either model_dir (a FlowRVSPipeline.save_pretrained folder) or wan_dir + dit_checkpoint
    (+ vae_checkpoint, strongly recommended: the release decodes with it). Unset arguments
    fall back to the environment variables in ENV_VARS.
    """
    model_dir = _setting("model_dir", model_dir)
    wan_dir = _setting("wan_dir", wan_dir)
    dit_checkpoint = _setting("dit_checkpoint", dit_checkpoint)
    vae_checkpoint = _setting("vae_checkpoint", vae_checkpoint)

    if model_dir is None and (wan_dir is None or dit_checkpoint is None):
        missing = [n for n, v in (("wan_dir", wan_dir), ("dit_checkpoint", dit_checkpoint))
                   if v is None]
        raise FlowRVSNotConfigured(
            "the FlowRVS engine needs the official weights; missing "
            + ", ".join(f"{n} ({_where(n)})" for n in missing)
            + ". Give the Wan2.1-T2V-1.3B-Diffusers folder with "
            f"{_where('wan_dir')}, the DiT checkpoint (e.g. FlowRVS_dit_mevis.pth) with "
            f"{_where('dit_checkpoint')} and the tuned VAE (tuned_vae.pth) with "
            f"{_where('vae_checkpoint')}; or a save_pretrained folder with "
            f"{_where('model_dir')}")
    # Each may be a local path, a Hugging Face cache entry or a repo id already in the cache.
    if model_dir is not None:
        model_dir = _found("model_dir", lambda: hub.resolve(model_dir, "FlowRVS save_pretrained",
                                                            lambda p: (p / "flowrvs_config.json").is_file(),
                                                            "flowrvs_config.json"))
    else:
        if not Path(wan_dir).expanduser().exists() and not _is_repo_id(str(wan_dir)):
            raise FileNotFoundError(f"FlowRVS wan_dir {wan_dir} does not exist; fix {_where('wan_dir')}")
        dit_checkpoint = _found("dit_checkpoint", lambda: hub.resolve_file(dit_checkpoint, RELEASE_FILES["dit"],
                                                                           "FlowRVS DiT"))
        if vae_checkpoint is not None:
            vae_checkpoint = _found("vae_checkpoint", lambda: hub.resolve_file(
                vae_checkpoint, RELEASE_FILES["vae"], "FlowRVS tuned VAE"))

    from .pipeline import FlowRVSPipeline
    if model_dir is not None:
        pipe = FlowRVSPipeline.from_pretrained(Path(model_dir).expanduser(), device=device,
                                               dtype=dtype)
    else:
        pipe = FlowRVSPipeline.from_official(
            str(Path(wan_dir).expanduser()) if Path(wan_dir).expanduser().exists() else wan_dir,
            Path(dit_checkpoint).expanduser(),
            Path(vae_checkpoint).expanduser() if vae_checkpoint else None,
            device=device, dtype=dtype)
    return FlowRVSSegmenter(pipe, num_steps=num_steps, schedule=schedule, window=window)
