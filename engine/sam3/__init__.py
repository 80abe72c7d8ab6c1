"""SAM 3 concept engine: a text prompt -> every instance of the concept, as masks with scores.

Registered as the `sam3` image segmenter: `segment_image` gives the best-scoring instance and
`candidates` the top instances, so the page's candidate strip lets the annotator pick which
instance the referring expression means. Importing this package is cheap (no torch); weights
load strictly from --sam3-model / FLOWLABEL_SAM3_MODEL (a folder, a cache entry or a cached repo
id, e.g. facebook/sam3, which is gated on the hub). Nothing downloads implicitly.
"""
from __future__ import annotations

import os

from engine.registry import EngineNotConfigured

ENV_VAR = "FLOWLABEL_SAM3_MODEL"
FLAG = "--sam3-model"


def load(device=None, model=None, **options):
    model = model if model is not None and str(model).strip() else os.environ.get(ENV_VAR) or None
    if model is None:
        raise EngineNotConfigured(f"SAM 3 needs weights: pass {FLAG} or set {ENV_VAR} to a folder, a Hugging Face "
                                  "cache entry or a repo id (`python launch.py models download sam3`; facebook/sam3 "
                                  "is gated: accept its licence on the hub first)")
    from .concept import Sam3ConceptSegmenter
    return Sam3ConceptSegmenter(model, device=device or "cpu", **options)
