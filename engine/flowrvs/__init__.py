"""FlowRVS: referring video segmentation as a text-guided flow from video to mask latents.

Importing this package is cheap (no torch): `load` builds a segmenter for the engine
registry, and FlowRVSPipeline / FlowRVSConfig are imported on first use.

    from engine.flowrvs import FlowRVSPipeline
    pipe = FlowRVSPipeline.from_official(wan_dir, "FlowRVS_dit_mevis.pth", "tuned_vae.pth")
    masks = pipe(frames, "the cat on the sofa")
"""
from .segmenter import ENV_VARS, FlowRVSNotConfigured, load

__all__ = ["ENV_VARS", "FlowRVSConfig", "FlowRVSNotConfigured", "FlowRVSPipeline",
           "FlowRVSSegmenter", "load"]


def __getattr__(name):
    if name == "FlowRVSPipeline":
        from .pipeline import FlowRVSPipeline
        return FlowRVSPipeline
    if name == "FlowRVSConfig":
        from .config import FlowRVSConfig
        return FlowRVSConfig
    if name == "FlowRVSSegmenter":
        from .segmenter import FlowRVSSegmenter
        return FlowRVSSegmenter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
