"""Input checks shared by the engine service and the engines: messages that teach the fix."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from engine.clip import Clip


def describe(a) -> str:
    if isinstance(a, np.ndarray):
        return f"{a.dtype} array of shape {list(a.shape)}"
    return type(a).__name__


def check_frames(frames) -> None:
    if isinstance(frames, Clip):  # checked as it is read, frame by frame
        return
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError("frames must be a numpy array of shape [T,H,W,3] (RGB); got "
                         f"{describe(frames)}. Stack frames with np.stack(list_of_frames); for one "
                         "image use image[None]; convert BGR/gray with cv2.cvtColor")
    if frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (0-255), got {frames.dtype}; for floats in "
                         "[0,1] use (frames * 255).round().astype(np.uint8)")
    if min(frames.shape[:3]) == 0:
        raise ValueError(f"frames must hold at least one non-empty frame, got shape "
                         f"{list(frames.shape)}")


def check_image(image) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError("image must be a numpy array of shape [H,W,3] (RGB); got "
                         f"{describe(image)}. Drop alpha with image[..., :3]; convert "
                         "gray with cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)")
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (0-255), got {image.dtype}; for floats in "
                         "[0,1] use (image * 255).round().astype(np.uint8)")
    if min(image.shape[:2]) == 0:
        raise ValueError(f"image must not be empty, got shape {list(image.shape)}")


def check_expression(expression) -> None:
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError("expression must be a non-empty string describing the object, "
                         f"e.g. 'the dog on the left'; got {expression!r}")


def known_fields(cls, d: dict, source, hint: str = "") -> dict:
    """`d` unchanged when every key is a field of the dataclass `cls`; otherwise a ValueError
    naming the unknown keys and `source` (the file or checkpoint they came from)."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ValueError(f"{source} has unknown fields {unknown} for {cls.__name__}{hint}")
    return d


class JsonConfig:
    """save/load of a config dataclass as `CONFIG_NAME` in a folder (FlowRVS, FlowSeg); a folder
    without it is refused with `MISSING_HINT` (how such a folder is made)."""
    CONFIG_NAME: str
    MISSING_HINT: str

    def save(self, directory) -> Path:
        path = Path(directory) / self.CONFIG_NAME
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        return path

    @classmethod
    def load(cls, directory):
        path = Path(directory) / cls.CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {directory} {cls.MISSING_HINT}")
        return cls.from_dict(json.loads(path.read_text()), path)

