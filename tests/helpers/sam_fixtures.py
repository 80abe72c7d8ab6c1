"""Tiny seeded SAM 2-family weights for the tests: a Sam2VideoModel (and an EdgeTamVideoModel, a
Sam3TrackerVideoModel) saved with save_pretrained (the hub layout of facebook/sam2.1-hiera-* and
yonigozlan/EdgeTAM-hf), those folders as Hugging Face cache entries, and a step-by-step reference
written directly against transformers' own API.

Built once per test session in a temporary folder; nothing is downloaded.
"""
from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.sam2.presets import EDGETAM_TINY, SAM3_TRACKER_TINY, TINY, write_model_dir
from tests.helpers.hf_cache import write_hf_cache_entry

REPO = "facebook/sam2.1-hiera-tiny"
# Fixture name -> the hub repo whose layout it copies (its cache entry; None: no entry) and
# transformers' image and video classes (for the reference).
FAMILIES = {"tiny": (REPO, "Sam2Model", "Sam2VideoModel"),
            "edgetam": ("yonigozlan/EdgeTAM-hf", "EdgeTamModel", "EdgeTamVideoModel"),
            "sam3": (None, "Sam3TrackerModel", "Sam3TrackerVideoModel")}
SNAPSHOT = "89abcdef0123456789abcdef0123456789abcdef"
SIZE = 128  # TINY's input square
# A window of 2 frames: the tracker's forgetting shows within a few frames.
SHORT_MEMORY = {**TINY, "num_maskmem": 2, "max_object_pointers_in_encoder": 2}


@pytest.fixture
def one_thread():
    """SAM tests run torch on one thread: on a shared 2-core machine, two threads wait on each other
    (an 8-frame track: 18 s with two, 1 s with one, measured under load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=None)
def root() -> Path:
    path = Path(tempfile.mkdtemp(prefix="sam-test-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


@functools.lru_cache(maxsize=None)
def model_dir(name: str = "tiny") -> Path:
    if name == "absent":  # on some frames SAM 2 says the object is not there
        return _object_score_dir(name, TINY, scale=3000.0, bias=ABSENT_BIAS)
    if name == "edgetam":  # random weights score objects near 0, so the object would blink in and out
        return save_processor(_object_score_dir(name, EDGETAM_TINY, scale=1.0, bias=EDGETAM_PRESENT_BIAS), SIZE)
    presets = {"tiny": TINY, "short": SHORT_MEMORY, "sam3": SAM3_TRACKER_TINY}
    folder = write_model_dir(root() / name, presets[name], seed=0)
    return save_processor(folder, SIZE) if name == "tiny" else folder


def save_processor(folder: Path, size: int, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)) -> Path:
    """The processor files the hub releases ship beside the weights (Sam2VideoProcessor.save_pretrained)."""
    from transformers import Sam2ImageProcessor, Sam2VideoProcessor, Sam2VideoVideoProcessor
    square, norm = {"height": size, "width": size}, dict(image_mean=list(mean), image_std=list(std))
    Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size=square, mask_size={"height": size // 4, "width": size // 4},
                                                          **norm),
                       video_processor=Sam2VideoVideoProcessor(size=square, **norm)).save_pretrained(folder)
    return folder


def _object_score_dir(name: str, preset: dict, scale: float, bias: float) -> Path:
    """The preset with its object-score head scaled and its bias set: presence made loud or sure."""
    from engine.sam2.presets import make_video_model
    model = make_video_model(preset, seed=0)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.weight.mul_(scale)
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(bias)
    model.save_pretrained(root() / name)
    return root() / name


ABSENT_BIAS = -6.2  # measured: scores come out near 6.1-6.3 on fx.clip, so some frames go absent
EDGETAM_PRESENT_BIAS = 2.0


@functools.lru_cache(maxsize=None)
def hf_cache() -> Path:
    """One cache holding each family's folder under its repo id."""
    cache = root() / "hub"
    for name, (repo, _, _) in FAMILIES.items():
        if repo is not None:
            write_hf_cache_entry(cache, repo, model_dir(name), SNAPSHOT)
    return cache


def cache_entry(name: str = "tiny") -> Path:
    return hf_cache() / ("models--" + FAMILIES[name][0].replace("/", "--"))


@functools.lru_cache(maxsize=None)
def models(name: str = "tiny"):
    """(image model, video model), loaded with transformers' own from_pretrained (shared: don't change them)."""
    import transformers
    _, image_cls, video_cls = FAMILIES["tiny" if name in ("short", "absent") else name]
    return tuple(getattr(transformers, cls).from_pretrained(model_dir(name)).eval() for cls in (image_cls, video_cls))


def image(height: int = 60, width: int = 80, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def clip(frames: int, height: int = 36, width: int = 48, seed: int = 0) -> np.ndarray:
    """A bright square moving over a textured background."""
    rng = np.random.default_rng(seed)
    out = np.repeat(rng.integers(0, 120, (height, width, 3), dtype=np.uint8)[None], frames, axis=0)
    for t in range(frames):
        out[t, 8:20, 2 * t % (width - 12):2 * t % (width - 12) + 12] = (230, 40, 40)
    return out


# -- the reference: transformers' calls, one step at a time, written apart from engine.sam2 ----
def reference_pixels(img: np.ndarray) -> torch.Tensor:
    """What Sam2ImageProcessor does: resize to SIZE x SIZE (bilinear), /255, ImageNet mean/std."""
    x = torch.tensor(img).permute(2, 0, 1).float()[None]
    x = F.interpolate(x, size=(SIZE, SIZE), mode="bilinear", antialias=True, align_corners=False) / 255
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return (x - mean[:, None, None]) / std[:, None, None]


def reference_coords(xy, height: int, width: int) -> list:
    """Sam2Processor._normalize_coordinates: x * SIZE / W, y * SIZE / H."""
    return [[float(x) * SIZE / width, float(y) * SIZE / height] for x, y in xy]


def reference_masks(logits: torch.Tensor, height: int, width: int) -> np.ndarray:
    """Sam2Processor.post_process_masks (a bilinear upscale of the low-res logits, > 0), for [K, h, w]
    or [h, w] logits."""
    masks = _post_processor().post_process_masks([logits.reshape(1, -1, *logits.shape[-2:])], [(height, width)])
    return masks[0][0].numpy()


@functools.lru_cache(maxsize=1)
def _post_processor():
    from transformers import Sam2ImageProcessor
    return Sam2ImageProcessor()
