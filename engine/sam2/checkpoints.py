"""Loading SAM 2-family weights, strictly, from a folder, a cache entry or a cached repo id.

One weights folder serves both engines: the releases on the hub (facebook/sam2.1-hiera-*,
EdgeTAM, the SAM 3 tracker) are saved as video models; the image model of the same family
loads the subset it needs (transformers names the memory modules it may skip in
`_keys_to_ignore_on_load_unexpected`). Anything else missing, unexpected or misshapen fails
loudly, naming the keys.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from engine import hub
from engine.registry import EngineNotConfigured

# config.json model_type -> (image model class, video model class or None), in transformers.
FAMILIES = {
    "sam2_video": ("Sam2Model", "Sam2VideoModel"),
    "sam2": ("Sam2Model", None),
    "edgetam_video": ("EdgeTamModel", "EdgeTamVideoModel"),
    "edgetam": ("EdgeTamModel", None),
    "sam3_tracker_video": ("Sam3TrackerModel", "Sam3TrackerVideoModel"),
    "sam3_tracker": ("Sam3TrackerModel", None),
}
NEED = "config.json (a SAM 2, EdgeTAM or SAM 3 tracker config) and model.safetensors"
WEIGHT_FILES = ("config.json", "model.safetensors|model.safetensors.index.json")


class WeightsError(EngineNotConfigured):
    """The weights folder does not hold a model this engine can load; the message says why."""


def looks_like_sam(path: Path) -> bool:
    return (path / "config.json").is_file() and not hub.missing_files(path, WEIGHT_FILES)


def resolve_model_dir(spec) -> Path:
    return hub.resolve(spec, "SAM 2 weights", looks_like_sam, NEED)


def config_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text()).get("model_type")
    except (OSError, ValueError) as e:
        raise WeightsError(f"{folder / 'config.json'} cannot be read as JSON ({e}); download the model again") from e


def model_type(folder: Path) -> str:
    kind = config_type(folder)
    if kind not in FAMILIES:
        raise WeightsError(f"{folder} holds a {kind!r} model; the sam2 engine loads {', '.join(sorted(FAMILIES))}")
    return kind


def normalization(folder: Path) -> tuple[tuple, tuple]:
    """(mean, std) from the checkpoint's processor files (preprocessor_config.json, as the hub releases
    have it, or processor_config.json, as transformers 5 saves a processor), else the family's default
    (ImageNet for SAM 2 and EdgeTAM; 0.5 / 0.5 for the SAM 3 tracker)."""
    for name in ("preprocessor_config.json", "processor_config.json"):
        found = _mean_std(folder / name)
        if found is not None:
            return found
    return ((0.5,) * 3, (0.5,) * 3) if str(config_type(folder)).startswith("sam3") else \
        ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


def _mean_std(path: Path) -> tuple[tuple, tuple] | None:
    try:
        config = json.loads(path.read_text())
        config = config.get("image_processor", config)
        mean, std = tuple(map(float, config["image_mean"])), tuple(map(float, config["image_std"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return (mean, std) if len(mean) == 3 and len(std) == 3 else None


def load_model(spec, video: bool, device: str = "cpu", dtype=torch.float32):
    """The image (video=False) or video model of the family in `spec`, in eval mode on `device`."""
    folder = resolve_model_dir(spec)
    kind = model_type(folder)
    image_cls, video_cls = FAMILIES[kind]
    if kind.startswith("edgetam"):
        require_timm(folder)
    name = video_cls if video else image_cls
    if name is None:
        raise WeightsError(f"{folder} holds an image-only {kind!r} model, which cannot track through a video; "
                           f"use a video checkpoint (e.g. facebook/sam2.1-hiera-tiny) for propagation")
    return load_strict(folder, name, device, dtype)


def require_timm(folder: Path) -> None:
    """EdgeTAM's RepViT backbone is built by timm, which needs a torchvision matching torch: say so
    before transformers fails deep inside from_pretrained."""
    try:
        import timm  # noqa: F401
    except Exception as e:  # ImportError, or torchvision's RuntimeError when it does not match torch
        raise WeightsError(f"{folder} is an EdgeTAM model, whose RepViT backbone comes from timm, and timm does not "
                           f"import here ({type(e).__name__}: {e}); install the project's pinned requirements "
                           "(`pip install -r requirements.txt`: timm, and the torchvision built for this torch), "
                           "or use a SAM 2.1 model") from e


def load_strict(folder: Path, class_name: str, device: str = "cpu", dtype=torch.float32):
    """transformers' `class_name`.from_pretrained, failing on any missing, unexpected (beyond what the
    class itself declares skippable) or misshapen key, naming them."""
    import transformers
    # Mismatched shapes are reported below (naming the keys) rather than by transformers' generic error.
    model, info = getattr(transformers, class_name).from_pretrained(
        str(folder), output_loading_info=True, dtype=dtype, ignore_mismatched_sizes=True)
    problems = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if problems or info.get("error_msgs"):
        detail = "; ".join(f"{k.replace('_', ' ')}: {', '.join(map(str, v[:5]))}{' ...' if len(v) > 5 else ''}"
                           for k, v in problems.items())
        raise WeightsError(f"{folder} does not match {class_name} ({detail or info['error_msgs']}); the weights "
                           "are incomplete or of another model: download them again")
    return model.to(device).eval()
