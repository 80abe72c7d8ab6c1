"""The segmenter contract, the registry of engines, and device choice.

NumPy in, NumPy out: nothing here imports torch at module level, so `import engine` stays
cheap for the UI. Engines register a factory; loading and caching belong to EngineService.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional, Protocol

import numpy as np

ProgressFn = Callable[[float, str], None]
KINDS = ("video", "image")


class Cancelled(Exception):
    """Raised out of a segmentation call after EngineService.cancel()."""


class EngineNotConfigured(RuntimeError):
    """An engine is installed but lacks what it needs (weights, paths); the message says which."""


class UnknownEngineError(ValueError):
    """No segmenter is registered under the requested name."""


class Segmenter(Protocol):
    """What a factory returns. An engine implements the methods for the kinds it registered.

    segment_video: frames uint8 [T,H,W,3] RGB -> bool [T,H,W].
    segment_image: image uint8 [H,W,3] RGB -> bool [H,W].

    `progress(fraction, message)` is optional; call it now and then (e.g. once per ODE
    step or per window). The progress callable EngineService passes down raises Cancelled
    once cancel() was requested, so a segmenter that reports progress is cancellable for
    free; let that exception propagate (clean up with try/finally, don't swallow it).
    """

    def segment_video(self, frames: np.ndarray, expression: str,
                      progress: Optional[ProgressFn] = None) -> np.ndarray: ...

    def segment_image(self, image: np.ndarray, expression: str) -> np.ndarray: ...


class ModelPath(NamedTuple):
    """Where one of an engine's model files comes from: a launch flag, else an environment
    variable. Each engine keeps one table of these; the CLI builds its flags from it."""
    flag: str
    env: str
    help: str

    def where(self) -> str:
        return f"{self.flag} / {self.env}"

    def value(self, given=None) -> Optional[str]:
        """The given value if set, else the environment variable's, else None."""
        if given is not None and str(given).strip():
            return str(given)
        return os.environ.get(self.env) or None


@dataclass(frozen=True)
class SegmenterInfo:
    name: str
    factory: Callable[..., Segmenter]
    kinds: tuple[str, ...]
    description: str = ""
    paths: dict = field(default_factory=dict)   # factory keyword -> ModelPath


_REGISTRY: dict[str, SegmenterInfo] = {}
_MODEL_PATHS: dict[str, dict[str, ModelPath]] = {}   # engine -> keyword -> where its weights come from


def register_model_paths(name: str, paths: dict) -> None:
    """Declare an engine's model locations (segmenters do it through register_segmenter; the
    correction engine, which segments no expression, directly)."""
    _MODEL_PATHS[name] = dict(paths)


def register_segmenter(name: str, factory: Callable[..., Segmenter], *,
                       kinds=KINDS, description: str = "", paths: Optional[dict] = None) -> None:
    """Register `factory(device=None, **paths) -> Segmenter` under `name`. `paths` maps the
    factory's path keywords to their ModelPath (flag and environment variable)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"engine name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for engine {name!r} must be callable, got {factory!r}")
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if not kinds or bad:
        raise ValueError(f"kinds for engine {name!r} must be a non-empty subset of {KINDS}, "
                         f"got {kinds}")
    if name in _REGISTRY:
        raise ValueError(f"engine {name!r} is already registered; "
                         f"call unregister_segmenter({name!r}) first to replace it")
    _REGISTRY[name] = SegmenterInfo(name, factory, kinds, description, dict(paths or {}))
    if paths:
        register_model_paths(name, paths)


def unregister_segmenter(name: str) -> None:
    """Remove an engine (for tests); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def available_segmenters(kind: Optional[str] = None) -> list[str]:
    """Sorted registered names, optionally only those supporting `kind`."""
    return sorted(n for n, info in _REGISTRY.items() if kind is None or kind in info.kinds)


def model_path_options() -> list[tuple[str, str, ModelPath]]:
    """(engine, keyword, ModelPath) of every engine that declared its paths, in order."""
    return [(name, key, mp) for name, paths in _MODEL_PATHS.items() for key, mp in paths.items()]


def model_path(name: str, key: str) -> ModelPath:
    return _MODEL_PATHS[name][key]


def segmenter_info(name: str) -> SegmenterInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEngineError(_unknown_message(name)) from None


def load_segmenter(name: str, device: Optional[str] = None, **paths) -> Segmenter:
    """Build a fresh segmenter on `pick_device(device)`. Not cached; EngineService caches."""
    info = segmenter_info(name)
    return info.factory(device=pick_device(device), **paths)


def pick_device(device: Optional[str] = None) -> str:
    """Explicit device wins; else "cuda" when torch sees a GPU; else "cpu"."""
    if device:
        return str(device)
    try:
        import torch  # lazy: keeps `import engine` cheap and torch-free
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def _unknown_message(name: str) -> str:
    names = available_segmenters()
    if not names:
        return (f"no segmentation engine is installed yet; cannot load {name!r}. "
                "Engines become available once their module calls "
                "engine.register_segmenter(...)")
    return f"unknown segmentation engine {name!r}; registered engines: {', '.join(names)}"
