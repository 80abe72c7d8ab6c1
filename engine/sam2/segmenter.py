"""Sam2Engine: one weights folder, two models loaded on first use (the image model answers
clicks; the video model tracks), the predictor's embedding cache, NumPy in and out."""
from __future__ import annotations

from typing import Callable, Hashable, Iterator, Mapping, Sequence

import numpy as np

from engine.bounds import BOUNDS
from engine.sam2.checkpoints import load_model, normalization, resolve_model_dir
from engine.sam2.predictor import Prediction, SamPredictor
from engine.sam2.tracker import TrackStep, track
from engine.torch_utils import as_dtype


class Sam2Engine:
    def __init__(self, model, device: str = "cpu", dtype=None, max_cached: int = BOUNDS.embeddings):
        self.folder = resolve_model_dir(model)  # fails now, before any frame is decoded
        self.device = str(device)
        # fp32 unless asked: SAM 2's masks are thresholded logits, bf16 flips edge pixels
        self.dtype = as_dtype(dtype or "float32", device)
        self.max_cached = max_cached
        self._predictor: SamPredictor | None = None
        self._video_model = None

    @property
    def predictor(self) -> SamPredictor:
        if self._predictor is None:
            model = load_model(self.folder, video=False, device=self.device, dtype=self.dtype)
            self._predictor = SamPredictor(model, max_cached=self.max_cached,
                                           normalization=normalization(self.folder))
        return self._predictor

    @property
    def video_model(self):
        if self._video_model is None:
            self._video_model = load_model(self.folder, video=True, device=self.device, dtype=self.dtype)
        return self._video_model

    def prepare(self, key: Hashable, image: np.ndarray) -> None:
        self.predictor.prepare(key, image)

    def click(self, key, image, obj, x: float, y: float, positive: bool, current=None) -> Prediction:
        return self.predictor.click(key, image, obj, x, y, positive, current=current)

    def box(self, key, image, obj, box) -> Prediction:
        return self.predictor.box(key, image, obj, box)

    def choose(self, obj, prediction: Prediction, index: int) -> None:
        self.predictor.choose(obj, prediction, index)

    def track(self, get_frame: Callable[[int], np.ndarray], num_frames: int, start: int, *,
              seed_mask: np.ndarray | None = None, points: Sequence = (), box=None, direction: str = "forward",
              count: int | None = None, anchors: Mapping[int, np.ndarray] = {},
              progress=None) -> Iterator[TrackStep]:
        return track(self.video_model, get_frame, num_frames, start, seed_mask=seed_mask, points=points, box=box,
                     direction=direction, count=count, anchors=anchors, progress=progress,
                     normalization=normalization(self.folder))
