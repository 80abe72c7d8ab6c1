"""Segmentation engines behind one small API: NumPy in, NumPy out.

Engines (FlowRVS for video, FlowSeg for images) register themselves with
`register_segmenter`; the app talks only to `EngineService`, which owns the accelerator.
Importing this package never imports torch.
"""
from .registry import (Cancelled, Segmenter, SegmenterInfo, UnknownEngineError,
                       available_segmenters, load_segmenter, pick_device,
                       register_segmenter, segmenter_info, unregister_segmenter)
from .service import EngineService

__all__ = [
    "Cancelled", "EngineService", "Segmenter", "SegmenterInfo", "UnknownEngineError",
    "available_segmenters", "load_segmenter", "pick_device", "register_segmenter",
    "segmenter_info", "unregister_segmenter",
]
