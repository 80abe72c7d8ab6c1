"""Interactive SAM 2 on images and frames: NumPy in, NumPy out.

    predictor = SamPredictor(model)                  # engine.sam2.checkpoints.load_model(..., video=False)
    predictor.prepare(("clip", 12), frame)           # embed now, so the next click answers fast
    result = predictor.click(("clip", 12), frame, obj, x, y, positive=True, current=mask)
    result.masks[0], result.masks[1:]                # the mask, then the multimask alternatives

Prompts: positive/negative points, a box, an existing mask. Clicks refine the current object
(its points accumulate and its last mask goes back in as the mask prompt); a new box restarts it.
An object whose stored mask no longer matches what SAM last gave (painted since, or another
engine's) restarts from that mask.

Embeddings are kept in a bounded LRU cache keyed by the caller's (media, frame) key; a cheap
fingerprint of the image guards against a key reused for other pixels.
"""
from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engine.bounds import BOUNDS
from engine.checks import check_image

MEAN = (0.485, 0.456, 0.406)  # ImageNet, as Sam2ImageProcessor normalises (weights.normalization reads
STD = (0.229, 0.224, 0.225)    # a checkpoint's own preprocessor_config.json when it has one)
MASK_LOGIT = 10.0  # an annotator's mask as a prompt: logits of +-10 (sigmoid 0.99995)


@dataclass
class Prediction:
    masks: np.ndarray    # bool [K, H, W], best first
    scores: np.ndarray   # float32 [K], predicted IoU
    logits: np.ndarray   # float32 [K, h, w], low-resolution logits (the next click's mask prompt)


@dataclass
class ObjectPrompt:
    """What SAM was told about one object on one frame, since its last box."""
    points: list = field(default_factory=list)   # [(x, y, label)], label 1 object / 0 background
    box: tuple | None = None                     # (x0, y0, x1, y1)
    logits: np.ndarray | None = None             # [h, w]: the mask prompt for the next click
    mask: np.ndarray | None = None               # bool [H, W]: what the object's mask is now


def preprocess(image: np.ndarray, size: int, device="cpu", dtype=torch.float32, mean=MEAN, std=STD) -> torch.Tensor:
    """uint8 [H,W,3] RGB -> [1,3,size,size]: bilinear (antialiased) resize, /255, (x - mean) / std."""
    x = torch.from_numpy(np.array(image, copy=True)).to(device).permute(2, 0, 1)[None].float()  # frames are read-only
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True) / 255.0
    mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(std, device=device).view(1, 3, 1, 1)
    return ((x - mean) / std).to(dtype)


def scale_points(xy: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """Pixel (x, y) on an H x W frame -> the model's size x size input square."""
    height, width = shape
    return np.asarray(xy, np.float32) * np.array([size / width, size / height], np.float32)


def mask_to_logits(mask: np.ndarray, size: int) -> np.ndarray:
    """A bool mask as the model's low-res mask prompt [size, size]: +-MASK_LOGIT."""
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return np.where(m[0, 0].numpy() >= 0.5, MASK_LOGIT, -MASK_LOGIT).astype(np.float32)


def upscale(logits: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Low-res logits [..., h, w] -> [..., H, W] (bilinear, as Sam2Processor.post_process_masks). The
    masks go in as channels of one image, as the processor lays them out: bitwise its result."""
    lead = logits.shape[:-2]
    out = F.interpolate(logits.reshape(1, -1, *logits.shape[-2:]).float(), size=shape, mode="bilinear",
                        align_corners=False)
    return out.reshape(*lead, *shape)


class SamPredictor:
    def __init__(self, model, max_cached: int = BOUNDS.embeddings, max_objects: int = BOUNDS.prompts,
                 normalization=(MEAN, STD)):
        self.model = model
        self.normalization = normalization
        # The image-wide positional embedding depends on the weights only, yet the model recomputes it
        # on every call (sin/cos over the 64x64 grid: ~50 ms of a CPU click); compute it once.
        if callable(getattr(model, "get_image_wide_positional_embeddings", None)):
            model.get_image_wide_positional_embeddings = functools.lru_cache(maxsize=1)(
                model.get_image_wide_positional_embeddings)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.size = int(model.config.prompt_encoder_config.image_size)
        self.mask_size = 4 * (self.size // int(model.config.prompt_encoder_config.patch_size))
        self.max_cached = int(max_cached)
        self.max_objects = int(max_objects)
        self._embeddings: OrderedDict = OrderedDict()  # key -> (fingerprint, embeddings)
        self._objects: OrderedDict = OrderedDict()     # object key -> ObjectPrompt

    # -- verbs -------------------------------------------------------------------------------
    def prepare(self, key: Hashable, image: np.ndarray) -> None:
        """Embed `image` under `key` now (a no-op when it is cached): call as a frame is shown."""
        self._embedding(key, image)

    def is_prepared(self, key: Hashable, image: np.ndarray) -> bool:
        found = self._embeddings.get(key)
        return found is not None and found[0] == _fingerprint(image)

    def predict(self, key: Hashable, image: np.ndarray, points: Sequence = (), box=None,
                mask_logits: np.ndarray | None = None, multimask: bool = True) -> Prediction:
        """One model call. points: [(x, y, label)] in pixels (label 1 object, 0 background);
        box: (x0, y0, x1, y1) in pixels; mask_logits: a low-res mask prompt [h, w]."""
        check_image(image)
        shape = image.shape[:2]
        pts, labels = _check_points(points, shape)
        if box is not None:
            box = _check_box(box, shape)
        if not len(pts) and box is None and mask_logits is None:
            raise ValueError("give SAM a prompt: a click, a box or a mask")
        embeddings = self._embedding(key, image)
        kwargs = {}
        if len(pts):
            kwargs["input_points"] = torch.from_numpy(scale_points(pts, shape, self.size))[None, None].to(self.device)
            kwargs["input_labels"] = torch.from_numpy(labels)[None, None].to(self.device)
        if box is not None:
            corners = scale_points(np.asarray(box, np.float32).reshape(2, 2), shape, self.size).reshape(4)
            kwargs["input_boxes"] = torch.from_numpy(corners)[None, None].to(self.device)
        if mask_logits is not None:
            kwargs["input_masks"] = torch.from_numpy(np.asarray(mask_logits, np.float32))[None, None].to(
                self.device, self.dtype)
        with torch.inference_mode():
            out = self.model(image_embeddings=embeddings, multimask_output=multimask, **kwargs)
            logits = out.pred_masks[0, 0].float()        # [K, h, w]
            scores = out.iou_scores[0, 0].float()
            order = torch.argsort(scores, descending=True, stable=True)
            logits, scores = logits[order], scores[order]
            masks = upscale(logits, shape) > 0
        return Prediction(masks.cpu().numpy(), scores.cpu().numpy().astype(np.float32),
                          logits.cpu().numpy().astype(np.float32))

    def box(self, key: Hashable, image: np.ndarray, obj: Hashable, box) -> Prediction:
        """A new box restarts the object: its clicks and mask are forgotten."""
        prompt = ObjectPrompt(box=tuple(float(v) for v in box))
        return self._answer(key, image, obj, prompt, multimask=True)

    def click(self, key: Hashable, image: np.ndarray, obj: Hashable, x: float, y: float, positive: bool,
              current: np.ndarray | None = None) -> Prediction:
        """Refine the object with one click. `current`: the object's mask as it is now; when it is
        not what SAM last gave, the object restarts from it (as a mask prompt)."""
        prompt = self._objects.get(obj)
        if prompt is None or (current is not None and not _same(prompt.mask, current)):
            prompt = ObjectPrompt()
            if current is not None and current.any():
                prompt.logits, prompt.mask = mask_to_logits(current, self.mask_size), current.copy()
        prompt = ObjectPrompt(points=[*prompt.points, (float(x), float(y), 1 if positive else 0)], box=prompt.box,
                              logits=prompt.logits, mask=prompt.mask)
        # One click alone is ambiguous (part or whole?): offer alternatives. More clicks decide.
        single = len(prompt.points) == 1 and prompt.box is None and prompt.logits is None
        return self._answer(key, image, obj, prompt, multimask=single)

    def choose(self, obj: Hashable, prediction: Prediction, index: int) -> None:
        """The annotator picked alternative `index`: the next click refines that one."""
        prompt = self._objects.get(obj)
        if prompt is not None:
            prompt.logits, prompt.mask = prediction.logits[index], prediction.masks[index].copy()

    def forget(self, obj: Hashable | None = None) -> None:
        """Drop one object's prompts (or all); the next click starts from its mask."""
        if obj is None:
            self._objects.clear()
        else:
            self._objects.pop(obj, None)

    def clear_cache(self) -> None:
        self._embeddings.clear()

    # -- internals ---------------------------------------------------------------------------
    def _answer(self, key, image, obj, prompt: ObjectPrompt, multimask: bool) -> Prediction:
        result = self.predict(key, image, prompt.points, prompt.box, prompt.logits, multimask=multimask)
        prompt.logits, prompt.mask = result.logits[0], result.masks[0].copy()
        self._objects[obj] = prompt
        self._objects.move_to_end(obj)
        while len(self._objects) > self.max_objects:
            self._objects.popitem(last=False)
        return result

    def _embedding(self, key, image):
        check_image(image)
        fingerprint = _fingerprint(image)
        found = self._embeddings.get(key)
        if found is not None and found[0] == fingerprint:
            self._embeddings.move_to_end(key)
            return found[1]
        with torch.inference_mode():
            embeddings = self.model.get_image_embeddings(preprocess(image, self.size, self.device, self.dtype,
                                                                      *self.normalization))
        self._embeddings[key] = (fingerprint, embeddings)
        while len(self._embeddings) > self.max_cached:
            self._embeddings.popitem(last=False)
        return embeddings


def _fingerprint(image: np.ndarray) -> tuple:
    step = max(1, min(image.shape[:2]) // 64)
    return image.shape, hashlib.blake2b(np.ascontiguousarray(image[::step, ::step]).tobytes(),
                                        digest_size=16).digest()


def _same(a: np.ndarray | None, b: np.ndarray) -> bool:
    if a is None:
        return not b.any()
    return a.shape == b.shape and np.array_equal(a, b)


def _check_points(points, shape) -> tuple[np.ndarray, np.ndarray]:
    height, width = shape
    rows = [tuple(p) for p in points]
    if any(len(p) != 3 for p in rows):
        raise ValueError(f"points must be (x, y, label) triples, got {rows[:3]}")
    pts = np.asarray([p[:2] for p in rows], np.float32).reshape(-1, 2)
    labels = np.asarray([1 if p[2] > 0 else 0 for p in rows], np.int64)
    if not np.isfinite(pts).all():
        raise ValueError("points must be finite numbers")
    bad = (pts[:, 0] < 0) | (pts[:, 0] > width - 1) | (pts[:, 1] < 0) | (pts[:, 1] > height - 1)
    if bad.any():
        x, y = pts[np.argmax(bad)]
        raise ValueError(f"the click ({x:g}, {y:g}) is outside the {width}x{height} frame")
    return pts, labels


def _check_box(box, shape) -> tuple[float, float, float, float]:
    height, width = shape
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError(f"box must be (x0, y0, x1, y1), got {box!r}") from None
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    if not np.isfinite([x0, y0, x1, y1]).all() or x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise ValueError(f"box {tuple(box)} reaches outside the {width}x{height} frame")
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"box {tuple(box)} is smaller than 2x2 px; drag a box around the object")
    return x0, y0, x1, y1
