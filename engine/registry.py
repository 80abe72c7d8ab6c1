"""The segmenter contract, the registry of engines, and device choice.

NumPy in, NumPy out: nothing here imports torch at module level, so `import engine` stays
cheap for the UI. Engines register a factory; loading and caching belong to EngineService.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterable, NamedTuple, Optional, Protocol

import numpy as np

ProgressFn = Callable[[float, str], None]
KINDS = ("video", "image")


class Cancelled(Exception):
    """Raised out of a segmentation call after EngineService.cancel()."""


class EngineNotConfigured(RuntimeError):
    """An engine is installed but lacks what it needs (weights, paths); the message says which."""


class UnknownEngineError(ValueError):
    """No segmenter is registered under the requested name."""


class Ability(str, Enum):
    """What an engine can do, declared when it registers (the page and `models list` read it
    before anything loads); each ability names the methods its engine object must have."""
    SEGMENT_IMAGE = "segment-image"        # segment_image(image, text)
    SEGMENT_VIDEO = "segment-video"        # segment_video(frames, text, progress)
    CANDIDATES = "candidates"              # candidates(image, text, k) -> (masks, scores)
    VIDEO_CANDIDATES = "video-candidates"  # video_candidates(clip, text, progress) -> [TrackCandidate]
    STREAMS_FRAMES = "streams-frames"      # segment_video/video_candidates read an engine.Clip frame by frame
    INTERACTIVE = "interactive"            # prepare/click/box/choose on a frame (SAM 2 family)
    TRACKING = "tracking"                  # track(get_frame, num_frames, start, ...) with memory

    @property
    def methods(self) -> tuple[str, ...]:
        return _METHODS[self]

    @property
    def label(self) -> str:
        return self.value.replace("-", " ")


_METHODS = {
    Ability.SEGMENT_IMAGE: ("segment_image",), Ability.SEGMENT_VIDEO: ("segment_video",),
    Ability.CANDIDATES: ("candidates",), Ability.VIDEO_CANDIDATES: ("video_candidates",),
    Ability.STREAMS_FRAMES: (), Ability.INTERACTIVE: ("prepare", "click", "box", "choose"),
    Ability.TRACKING: ("track",),
}
_KIND_ABILITY = {"image": Ability.SEGMENT_IMAGE, "video": Ability.SEGMENT_VIDEO}


class EngineContractError(RuntimeError):
    """An engine object lacks a method its declared abilities need, or answered out of shape."""


class Segmenter(Protocol):
    """What a text-segmentation factory returns. An engine implements the methods of the
    abilities it registered (Ability.methods); the two below are the kinds'.

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
class EngineInfo:
    name: str
    factory: Callable[..., Segmenter]
    abilities: frozenset[Ability]
    description: str = ""
    paths: dict = field(default_factory=dict)   # factory keyword -> ModelPath

    @property
    def kinds(self) -> tuple[str, ...]:
        """The media kinds it segments from a text ("video", "image"), in KINDS order."""
        return tuple(k for k in KINDS if _KIND_ABILITY[k] in self.abilities)

    def can(self, ability: Ability) -> bool:
        return ability in self.abilities

    def check(self, obj) -> None:
        """Raise EngineContractError when the loaded object lacks a declared ability's method."""
        missing = sorted({m for a in self.abilities for m in a.methods if not callable(getattr(obj, m, None))})
        if missing:
            raise EngineContractError(
                f"engine {self.name!r} declares {', '.join(sorted(a.value for a in self.abilities))} but its "
                f"{type(obj).__name__} has no {', '.join(missing)}(): implement them or drop the ability")


_REGISTRY: dict[str, EngineInfo] = {}


def register_engine(name: str, factory: Callable[..., Segmenter], *, kinds: Iterable[str] = KINDS,
                    abilities: Iterable[Ability] = (), description: str = "",
                    paths: Optional[dict] = None) -> None:
    """Register `factory(device=None, **paths) -> engine object` under `name`. `kinds` are the
    media it segments from a text; `abilities` what else it offers (Ability); `paths` maps the
    factory's path keywords to their ModelPath (flag and environment variable)."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"engine name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for engine {name!r} must be callable, got {factory!r}")
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ValueError(f"kinds for engine {name!r} must be a subset of {KINDS}, got {kinds}")
    try:
        declared = frozenset({_KIND_ABILITY[k] for k in kinds} | {Ability(a) for a in abilities})
    except ValueError as e:
        raise ValueError(f"abilities for engine {name!r} must be among "
                         f"{[a.value for a in Ability]}: {e}") from None
    if not declared - {Ability.STREAMS_FRAMES}:
        raise ValueError(f"engine {name!r} must segment a kind of media {KINDS} or declare an ability")
    if name in _REGISTRY:
        raise ValueError(f"engine {name!r} is already registered; "
                         f"call unregister_engine({name!r}) first to replace it")
    _REGISTRY[name] = EngineInfo(name, factory, declared, description, dict(paths or {}))


def unregister_engine(name: str) -> None:
    """Remove an engine (for tests); unknown names are ignored."""
    _REGISTRY.pop(name, None)


def available_segmenters(kind: Optional[str] = None) -> list[str]:
    """Sorted names of the engines that segment a text on `kind` (on any kind when None)."""
    return sorted(n for n, info in _REGISTRY.items() if info.kinds and (kind is None or kind in info.kinds))


def engines_with(ability: Ability) -> list[str]:
    """Sorted names of the engines that declared `ability`."""
    return sorted(n for n, info in _REGISTRY.items() if info.can(ability))


def model_path_options() -> list[tuple[str, str, ModelPath]]:
    """(engine, keyword, ModelPath) of every engine that declared its paths, in order."""
    return [(name, key, mp) for name, info in _REGISTRY.items() for key, mp in info.paths.items()]


def model_path(name: str, key: str) -> ModelPath:
    return engine_info(name).paths[key]


def engine_info(name: str) -> EngineInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownEngineError(_unknown_message(name)) from None


def load_segmenter(name: str, device: Optional[str] = None, **paths) -> Segmenter:
    """Build a fresh segmenter on `pick_device(device)`. Not cached; EngineService caches."""
    info = engine_info(name)
    obj = info.factory(device=pick_device(device), **paths)
    info.check(obj)
    return obj


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
                "engine.register_engine(...)")
    return (f"unknown segmentation engine {name!r}; registered engines: {', '.join(names)} "
            "(load a plugin's engines with --engine-module)")
