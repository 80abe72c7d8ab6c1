"""FlowSeg: LLM-conditioned image segmentation with Bidirectional Semantic Flow and
Boundary-Aware Refinement, on the X-SAM scaffold (SigLIP + SAM + Qwen3 + Mask2Former).

Importing this package is cheap (no torch): `load` builds a segmenter for the engine
registry; FlowSegPipeline, FlowSegConfig and FlowSegModel are imported on first use.

    from engine.flowseg import FlowSegPipeline
    pipe = FlowSegPipeline.from_pretrained("flowseg-model")
    mask = pipe(image, "the blue triangle left of the red circle")
    cands = pipe.candidates(image, "the blue triangle left of the red circle", k=5)
"""
from .segmenter import ENV_VARS, FlowSegNotConfigured, load

__all__ = ["ENV_VARS", "FlowSegCandidates", "FlowSegConfig", "FlowSegModel",
           "FlowSegNotConfigured", "FlowSegPipeline", "FlowSegSegmenter", "load"]

_LAZY = {
    "FlowSegPipeline": ("pipeline", "FlowSegPipeline"),
    "FlowSegCandidates": ("pipeline", "FlowSegCandidates"),
    "FlowSegConfig": ("config", "FlowSegConfig"),
    "FlowSegModel": ("model", "FlowSegModel"),
    "FlowSegSegmenter": ("segmenter", "FlowSegSegmenter"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
