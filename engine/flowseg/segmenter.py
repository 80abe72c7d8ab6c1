"""The FlowSeg engine behind the segmenter contract (engine/registry.py).

Register it with the factory `load` for images. The model folder (a
FlowSegPipeline.save_pretrained folder) comes from a keyword argument (the launch flag) or an
environment variable:

    --flowseg-dir DIR      FLOWLABEL_FLOWSEG_DIR

No torch at import time: the pipeline is imported inside `load`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from engine import hub
from engine.registry import EngineNotConfigured, ModelPath

ENV_VARS = {"model_dir": ModelPath("--flowseg-dir", "FLOWLABEL_FLOWSEG_DIR", "FlowSeg save_pretrained folder")}


class FlowSegNotConfigured(EngineNotConfigured):
    """The FlowSeg engine was asked for without its model folder."""


class FlowSegSegmenter:
    """segment_image over a FlowSegPipeline, plus `candidates` for one-click replacement."""

    def __init__(self, pipeline, k: int = 5):
        self.pipeline = pipeline
        self.k = k

    def segment_image(self, image: np.ndarray, expression: str) -> np.ndarray:
        return self.pipeline(image, expression)

    def candidates(self, image: np.ndarray, expression: str, k: Optional[int] = None):
        """FlowSegCandidates: masks bool [k, H, W] and scores, best (the selected mask) first."""
        return self.pipeline.candidates(image, expression, k=k or self.k)


def _where(name: str) -> str:
    return ENV_VARS[name].where()


def load(device=None, model_dir=None, *, dtype=None, k: int = 5) -> FlowSegSegmenter:
    """Factory for engine.register_engine: a FlowSegSegmenter on `device` from a
    save_pretrained folder (model_dir, else $FLOWLABEL_FLOWSEG_DIR)."""
    model_dir = ENV_VARS["model_dir"].value(model_dir)
    if model_dir is None:
        raise FlowSegNotConfigured(
            f"the FlowSeg engine needs a model folder; set {_where('model_dir')} to a folder "
            "written by FlowSegPipeline.save_pretrained (flowseg_config.json, "
            "model.safetensors, tokenizer/)")
    try:  # a local folder, a Hugging Face cache entry or a repo id already in the cache
        path = hub.resolve(model_dir, "FlowSeg save_pretrained", lambda p: (p / "flowseg_config.json").is_file(),
                           "flowseg_config.json, model.safetensors, tokenizer/")
    except FileNotFoundError as e:
        raise FileNotFoundError(f"FlowSeg model_dir: {e}; fix {_where('model_dir')}") from None
    from .pipeline import FlowSegPipeline
    return FlowSegSegmenter(FlowSegPipeline.from_pretrained(path, device=device, dtype=dtype), k=k)
