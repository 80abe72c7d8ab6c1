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


def _where(name: str) -> str:
    return ENV_VARS[name].where()


def load(device=None, wan_dir=None, dit_checkpoint=None, vae_checkpoint=None, model_dir=None,
         *, num_steps: int = 1, schedule: str = "official", window: Optional[int] = None,
         dtype=None) -> FlowRVSSegmenter:
    """Factory for engine.register_segmenter: a FlowRVSSegmenter on `device`.

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
    checks = [("model_dir", model_dir)] if model_dir is not None else \
        [("wan_dir", wan_dir), ("dit_checkpoint", dit_checkpoint), ("vae_checkpoint", vae_checkpoint)]
    for name, value in checks:
        if value is not None and not Path(value).expanduser().exists() and \
                not (name == "wan_dir" and _is_repo_id(str(value))):
            raise FileNotFoundError(f"FlowRVS {name} {value} does not exist; fix "
                                    f"{_where(name)}")

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
