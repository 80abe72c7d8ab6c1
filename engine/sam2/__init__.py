"""SAM 2 family (SAM 2.1 tiny..large, EdgeTAM, the SAM 3 tracker) as the studio's correction engine:
clicks, boxes and masks on a frame, and tracking through a video with SAM 2's memory.

Importing this package is cheap (no torch); `load` builds a Sam2Engine, whose models load on
first use, strictly, from a local folder, a Hugging Face cache entry or a repo id already in the
cache (FLOWLABEL_SAM_MODEL or --sam-model). Nothing is downloaded implicitly.

    from engine.sam2 import load
    sam = load(model="facebook/sam2.1-hiera-tiny")
    sam.prepare(("clip", 0), frame)
    result = sam.click(("clip", 0), frame, "object-1", x, y, positive=True)
"""
from __future__ import annotations

from engine.registry import EngineNotConfigured, ModelPath

ENV_VARS = {"model": ModelPath(
    "--sam-model", "FLOWLABEL_SAM_MODEL",
    "SAM 2 weights for the box/click tools and propagation: a folder, a Hugging Face cache entry or a "
    "repo id already downloaded (e.g. facebook/sam2.1-hiera-tiny); unset: GrabCut and DIS")}
FLAG, ENV_VAR = ENV_VARS["model"].flag, ENV_VARS["model"].env
# The studio's known names for `launch.py models` -> hub repo ids.
KNOWN = {
    "sam2.1-tiny": "facebook/sam2.1-hiera-tiny",
    "sam2.1-small": "facebook/sam2.1-hiera-small",
    "sam2.1-base-plus": "facebook/sam2.1-hiera-base-plus",
    "sam2.1-large": "facebook/sam2.1-hiera-large",
    "edgetam": "yonigozlan/EdgeTAM-hf",
}


def load(device=None, model=None, **options):
    """A Sam2Engine on `device` for the weights in `model` (else $FLOWLABEL_SAM_MODEL)."""
    model = ENV_VARS["model"].value(model)
    if model is None:
        raise EngineNotConfigured(f"SAM 2 needs weights: pass {FLAG} or set {ENV_VAR} to a folder, a Hugging "
                                  "Face cache entry or a repo id (`python launch.py models download sam2.1-tiny`)")
    from .segmenter import Sam2Engine
    return Sam2Engine(model, device=device or "cpu", **options)
