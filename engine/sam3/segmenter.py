"""Sam3ConceptSegmenter: Sam3Model on one image and one text prompt, NumPy in and out.

Steps, as Sam3Processor + Sam3Model + post_process_instance_segmentation do them, without a
processor call per image (tests/engine/test_sam_processors.py pins the equivalence and its bounds):
1. the image resized (bilinear, antialiased, in float: within one grey level of the processor's
   uint8 resize) to the model's square, /255, normalised (0.5/0.5, or the checkpoint's
   preprocessor_config.json);
2. the text tokenised, padded to 32 tokens (truncated beyond, where the processor would pass a
   longer sequence on to a 32-position text encoder);
3. one forward pass: per query, a logit, a box and a low-resolution mask; a presence logit;
4. score = sigmoid(logit) * sigmoid(presence); masks upscaled to the image, logit > 0 (`postprocess`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from engine import hub
from engine.checks import check_expression, check_image
from engine.registry import EngineNotConfigured
from engine.sam2.checkpoints import WeightsError, load_strict
from engine.sam2.predictor import preprocess
from engine.torch_utils import as_dtype

NEED = "config.json (a SAM 3 config), model.safetensors and the tokenizer files (tokenizer.json)"
WEIGHT_FILES = ("config.json", "model.safetensors|model.safetensors.index.json", "tokenizer.json|vocab.json")
TRACKER_MISSING = ("SAM 3 on a video needs tracker weights: use the full SAM 3 checkpoint (facebook/sam3, whose "
                   "config is sam3_video: detector and tracker in one), or pass --sam3-tracker-model / set "
                   "FLOWLABEL_SAM3_TRACKER_MODEL to a SAM 3 tracker (or SAM 2.1) video checkpoint")
TEXT_TOKENS = 32
MASK_THRESHOLD = 0.5


@dataclass
class Instances:
    masks: np.ndarray    # bool [N, H, W], best first
    scores: np.ndarray   # float32 [N]
    boxes: np.ndarray    # float32 [N, 4], xyxy in pixels


def looks_like_sam3(path: Path) -> bool:
    return not hub.missing_files(path, WEIGHT_FILES)


def postprocess(out, height: int, width: int) -> Instances:
    """Sam3Model's output for one image -> every query's instance at the image's size, best first.

    Masks: the low-resolution logits upscaled (bilinear), then > 0, as facebookresearch/sam3 does
    (sigmoid > 0.5 is the same test). Sam3Processor.post_process_instance_segmentation takes the
    sigmoid before upscaling; the two can disagree only where a pixel's bilinear neighbours have
    logits of both signs, i.e. on the mask's edge (tests/engine/test_sam_processors.py bounds it)."""
    scores = out.pred_logits[0].float().sigmoid()
    if out.presence_logits is not None:
        scores = scores * out.presence_logits[0].float().sigmoid()
    order = torch.argsort(scores, descending=True, stable=True)
    logits = F.interpolate(out.pred_masks[0][order][None].float(), size=(height, width), mode="bilinear",
                           align_corners=False)[0]
    boxes = out.pred_boxes[0][order].float() * torch.tensor([width, height, width, height], device=logits.device)
    return Instances((logits.sigmoid() > MASK_THRESHOLD).cpu().numpy(), scores[order].cpu().numpy().astype(np.float32),
                     boxes.cpu().numpy().astype(np.float32))


class Sam3ConceptSegmenter:
    def __init__(self, model, device: str = "cpu", dtype=None, threshold: float = 0.3, k: int = 5, tracker=None,
                 video_k: int = 3):
        from transformers import AutoTokenizer

        from engine.sam2.checkpoints import normalization
        self.folder = hub.resolve(model, "SAM 3 weights", looks_like_sam3, NEED)
        self.model = load_strict(self.folder, "Sam3Model", device, as_dtype(dtype or "float32", device))
        if self.model.config.model_type != "sam3":
            raise WeightsError(f"{self.folder} holds a {self.model.config.model_type!r} model, not SAM 3")
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.folder))
        self.size = int(self.model.config.vision_config.backbone_config.image_size)
        self.normalization = normalization(self.folder)
        if int(k) < 1 or int(video_k) < 1:
            raise ValueError(f"k and video_k count instances: whole numbers >= 1, not {k!r} and {video_k!r}")
        self.device, self.threshold, self.k, self.video_k = device, float(threshold), int(k), int(video_k)
        self.dtype = as_dtype(dtype or "float32", device)
        self.tracker, self._tracker_model = tracker, None

    def instances(self, image: np.ndarray, text: str) -> Instances:
        """Every query's instance, best first (no threshold: callers choose)."""
        check_image(image)
        check_expression(text)
        height, width = image.shape[:2]
        param = next(self.model.parameters())
        pixels = preprocess(image, self.size, param.device, param.dtype, *self.normalization)
        tokens = self.tokenizer([text], padding="max_length", max_length=TEXT_TOKENS, truncation=True,
                                return_tensors="pt").to(param.device)
        with torch.inference_mode():
            out = self.model(pixel_values=pixels, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
            return postprocess(out, height, width)

    def segment_image(self, image: np.ndarray, expression: str) -> np.ndarray:
        """The best instance, if it scores above the threshold; else an empty mask."""
        found = self.instances(image, expression)
        if not len(found.scores) or found.scores[0] <= self.threshold:
            return np.zeros(image.shape[:2], bool)
        return found.masks[0]

    def candidates(self, image: np.ndarray, expression: str, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The top-k instances (masks, scores), best first: the annotator picks the one meant."""
        found = self.instances(image, expression)
        k = self.k if k is None else int(k)
        return found.masks[:k], found.scores[:k]

    def video_candidates(self, frames: np.ndarray, expression: str, progress=None,
                         k: int | None = None) -> list:
        """Up to k instances (engine.track_masks.TrackCandidate), each tracked through the clip with
        re-detection, best first: the first is the proposal, the others the annotator's candidates."""
        from engine.sam2.checkpoints import normalization

        from .video import video_instances
        check_expression(expression)
        tracker = self._tracker()
        return video_instances(self, tracker, normalization(self._tracker_folder), frames, expression, progress,
                               k=self.video_k if k is None else int(k))

    def segment_video(self, frames: np.ndarray, expression: str, progress=None) -> np.ndarray:
        """The best instance, found by the detector and carried through the clip by the tracker."""
        found = self.video_candidates(frames, expression, progress)
        return found[0].track.array() if found else np.zeros(frames.shape[:3], bool)

    def _tracker(self):
        from engine.sam2.checkpoints import config_type, load_model, resolve_model_dir
        if self._tracker_model is None:
            if self.tracker is not None:
                self._tracker_folder = resolve_model_dir(self.tracker)
                self._tracker_model = load_model(self._tracker_folder, video=True, device=self.device,
                                                 dtype=self.dtype)
            elif config_type(self.folder) == "sam3_video":  # facebook/sam3: detector and tracker in one
                self._tracker_folder = self.folder
                self._tracker_model = load_strict(self.folder, "Sam3TrackerVideoModel", self.device, self.dtype)
            else:
                raise EngineNotConfigured(TRACKER_MISSING)
        return self._tracker_model
