"""Segmentation engines behind one small API: NumPy in, NumPy out.

Engines (FlowRVS for video, FlowSeg for images) register themselves with
`register_engine`; the app talks only to `EngineService`, which owns the accelerator.
Importing this package never imports torch.
"""
from .clip import Clip
from .registry import (
    Ability,
    Cancelled,
    EngineContractError,
    EngineInfo,
    EngineNotConfigured,
    ModelPath,
    Segmenter,
    UnknownEngineError,
    available_segmenters,
    engine_info,
    engines_with,
    load_segmenter,
    model_path,
    model_path_options,
    pick_device,
    register_engine,
    unregister_engine,
)
from .service import EngineService, Proposal

__all__ = [
    "Ability", "Cancelled", "Clip", "EngineContractError", "EngineNotConfigured", "EngineService", "ModelPath", "Proposal", "Segmenter", "EngineInfo", "UnknownEngineError",
    "available_segmenters", "load_segmenter", "model_path", "model_path_options", "pick_device",
    "engines_with", "register_engine",
    "engine_info", "unregister_engine",
]

# Built-in engines. Loading stays lazy: the factory imports torch and reads weights only when
# the engine is first used, from the paths given by flags or environment variables.
from . import flowrvs as _flowrvs  # noqa: E402

register_engine("flowrvs", _flowrvs.load, kinds=("video", "image"), paths=_flowrvs.ENV_VARS,
                   description="FlowRVS (Wan2.1 DiT, official weights): referring video segmentation")
from . import flowseg as _flowseg  # noqa: E402

register_engine("flowseg", _flowseg.load, kinds=("image",), abilities=[Ability.CANDIDATES], paths=_flowseg.ENV_VARS,
                   description="FlowSeg (SigLIP + SAM + Qwen3, Bidirectional Semantic Flow, BAR): "
                               "referring image segmentation with top-k candidates")

from . import sam2 as _sam2  # noqa: E402
from . import sam3 as _sam3  # noqa: E402

# SAM 2 corrects masks (clicks, boxes, tracking); it segments no expression.
register_engine("sam2", _sam2.load, kinds=(), abilities=[Ability.INTERACTIVE, Ability.TRACKING], paths=_sam2.ENV_VARS,
                description="SAM 2 family (SAM 2.1, EdgeTAM, the SAM 3 tracker): clicks and boxes on a frame, "
                            "tracking with memory")

register_engine("sam3", _sam3.load, kinds=("image", "video"), paths=_sam3.ENV_VARS,
                abilities=[Ability.CANDIDATES, Ability.VIDEO_CANDIDATES, Ability.STREAMS_FRAMES],
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


register_engine("flowrvs-demo", _demo_factory("flowrvs"), kinds=("video", "image"),
                   description="FlowRVS demo: tiny model trained on CPU on the synthetic shapes world "
                               "(a demonstration of the pipeline, not a useful segmenter; "
                               "held-out scores: python -m engine.flowrvs.demo evaluate)")
register_engine("flowseg-demo", _demo_factory("flowseg"), kinds=("image",), abilities=[Ability.CANDIDATES],
                   description="FlowSeg demo: tiny model trained on CPU on the synthetic shapes world "
                               "(a demonstration, not a useful segmenter; held-out scores: "
                               "python -m engine.flowseg.demo evaluate)")
