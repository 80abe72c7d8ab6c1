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

import os

from engine.registry import EngineNotConfigured

ENV_VAR = "FLOWLABEL_SAM_MODEL"
FLAG = "--sam-model"
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
    model = model if model is not None and str(model).strip() else os.environ.get(ENV_VAR) or None
    if model is None:
        raise EngineNotConfigured(f"SAM 2 needs weights: pass {FLAG} or set {ENV_VAR} to a folder, a Hugging "
                                  "Face cache entry or a repo id (`python launch.py models download sam2.1-tiny`)")
    from .engine import Sam2Engine
    return Sam2Engine(model, device=device or "cpu", **options)
