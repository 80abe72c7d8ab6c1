"""Segmentation engines behind one small API: NumPy in, NumPy out.

Engines (FlowRVS for video, FlowSeg for images) register themselves with
`register_segmenter`; the app talks only to `EngineService`, which owns the accelerator.
Importing this package never imports torch.
"""
from .clip import Clip
from .registry import (
    Cancelled,
    EngineNotConfigured,
    ModelPath,
    Segmenter,
    SegmenterInfo,
    UnknownEngineError,
    available_segmenters,
    load_segmenter,
    model_path,
    model_path_options,
    pick_device,
    register_model_paths,
    register_segmenter,
    segmenter_info,
    unregister_segmenter,
)
from .service import EngineService, Proposal

__all__ = [
    "Cancelled", "Clip", "EngineNotConfigured", "EngineService", "ModelPath", "Proposal", "Segmenter", "SegmenterInfo", "UnknownEngineError",
    "available_segmenters", "load_segmenter", "model_path", "model_path_options", "pick_device",
    "register_model_paths", "register_segmenter",
    "segmenter_info", "unregister_segmenter",
]

# Built-in engines. Loading stays lazy: the factory imports torch and reads weights only when
# the engine is first used, from the paths given by flags or environment variables.
from . import flowrvs as _flowrvs  # noqa: E402

register_segmenter("flowrvs", _flowrvs.load, kinds=("video", "image"), paths=_flowrvs.ENV_VARS,
                   description="FlowRVS (Wan2.1 DiT, official weights): referring video segmentation")
from . import flowseg as _flowseg  # noqa: E402

register_segmenter("flowseg", _flowseg.load, kinds=("image",), paths=_flowseg.ENV_VARS,
                   description="FlowSeg (SigLIP + SAM + Qwen3, Bidirectional Semantic Flow, BAR): "
                               "referring image segmentation with top-k candidates")

from . import sam2 as _sam2  # noqa: E402
from . import sam3 as _sam3  # noqa: E402

# SAM 2 corrects masks (clicks, boxes, tracking); it segments no expression, so it is no segmenter.
register_model_paths("sam2", _sam2.ENV_VARS)

register_segmenter("sam3", _sam3.load, kinds=("image", "video"), paths=_sam3.ENV_VARS,
                   description="SAM 3 (concept prompts): every instance of the expression's concept, best first; "
                               "the candidates let you pick the one meant; on a video, the best instance "
                               "tracked from the first frame where it is found")


def _demo_factory(package: str):
    """The demo engines' load_demo, imported on first use (so `python -m engine.<x>.demo`
    does not find its module already imported)."""
    def load_demo(device=None, **kwargs):
        import importlib
        return importlib.import_module(f"engine.{package}.demo").load_demo(device=device, **kwargs)
    return load_demo


register_segmenter("flowrvs-demo", _demo_factory("flowrvs"), kinds=("video", "image"),
                   description="FlowRVS demo: tiny model trained on CPU on the synthetic shapes world "
                               "(a demonstration of the pipeline, not a useful segmenter; "
                               "held-out scores: python -m engine.flowrvs.demo evaluate)")
register_segmenter("flowseg-demo", _demo_factory("flowseg"), kinds=("image",),
                   description="FlowSeg demo: tiny model trained on CPU on the synthetic shapes world "
                               "(a demonstration, not a useful segmenter; held-out scores: "
                               "python -m engine.flowseg.demo evaluate)")
