"""SAM 3 concept engine: a text prompt -> every instance of the concept, as masks with scores.

Registered as the `sam3` segmenter for images and videos: `segment_image` gives the best-scoring
instance and `candidates` the top instances, so the page's candidate strip lets the annotator pick
which instance the referring expression means; on a video, `video_candidates` follows up to three
instances from the first frame where the concept is found, re-detecting lost ones, and
`segment_video` gives the best one's track (engine/sam3/video.py). Importing this package is cheap
(no torch); weights load strictly from --sam3-model / FLOWLABEL_SAM3_MODEL (a folder, a cache entry
or a cached repo id, e.g. facebook/sam3, which is gated on the hub). Nothing downloads implicitly.
"""
from __future__ import annotations

from engine.registry import EngineNotConfigured, ModelPath

ENV_VARS = {"model": ModelPath(
    "--sam3-model", "FLOWLABEL_SAM3_MODEL",
    "SAM 3 weights for the sam3 concept engine (images: every instance of the expression's concept, "
    "as candidates): a folder, a cache entry or a cached repo id (facebook/sam3)"),
    "tracker": ModelPath(
        "--sam3-tracker-model", "FLOWLABEL_SAM3_TRACKER_MODEL",
        "video tracker for the sam3 engine (carries the detected instance through the clip): a SAM 3 tracker "
        "or SAM 2.1 video checkpoint, as a folder, a cache entry or a cached repo id")}
FLAG, ENV_VAR = ENV_VARS["model"].flag, ENV_VARS["model"].env


def load(device=None, model=None, tracker=None, **options):
    model = ENV_VARS["model"].value(model)
    if model is None:
        raise EngineNotConfigured(f"SAM 3 needs weights: pass {FLAG} or set {ENV_VAR} to a folder, a Hugging Face "
                                  "cache entry or a repo id (`python launch.py models download sam3`; facebook/sam3 "
                                  "is gated: accept its licence on the hub first)")
    from .segmenter import Sam3ConceptSegmenter
    return Sam3ConceptSegmenter(model, device=device or "cpu", tracker=ENV_VARS["tracker"].value(tracker), **options)
