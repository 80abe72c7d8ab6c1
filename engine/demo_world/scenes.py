"""Scenes in memory: generation from a random generator, and sample streams for training."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np

from engine.demo_world.language import Expression, candidates, choose
from engine.demo_world.world import (
    IMAGE_CONFIG,
    VIDEO_CONFIG,
    SceneObject,
    WorldConfig,
    paint,
    sample_scene,
)

_VIDEO_STREAM, _IMAGE_STREAM = 1, 2  # keep the video and image worlds of one seed apart


@dataclass
class Scene:
    objects: list[SceneObject]
    frames: np.ndarray  # uint8 [T, H, W, 3] RGB
    full: np.ndarray  # bool [N, T, H, W]: each object's whole shape
    visible: np.ndarray  # bool [N, T, H, W]: what is left of it under the objects above
    expressions: list[Expression]

    @property
    def size(self) -> int:
        return self.frames.shape[1]

    def target_mask(self, expression: Expression) -> np.ndarray:
        """bool [T, H, W]: the union of the visible masks of the expression's objects."""
        return self.visible[list(expression.targets)].any(0)

    def describe(self) -> dict:
        """The scene as JSON: objects and their tracks, expressions with their kinds."""
        return {"objects": [o.to_json() for o in self.objects],
                "expressions": [{"exp": e.text, "obj_id": list(e.targets), "kind": e.kind}
                                for e in self.expressions]}


class VideoClip(Scene):
    def mask(self, expression: Expression) -> np.ndarray:
        return self.target_mask(expression)


class ImageScene(Scene):
    @property
    def image(self) -> np.ndarray:
        return self.frames[0]

    def mask(self, expression: Expression) -> np.ndarray:
        """bool [H, W]."""
        return self.target_mask(expression)[0]


def _check(size: int, frames: int | None = None) -> None:
    if not isinstance(size, (int, np.integer)) or size < 32:
        raise ValueError(f"size must be an integer of at least 32 pixels (shapes need room), not {size!r}")
    if frames is not None and (not isinstance(frames, (int, np.integer)) or frames < 2):
        raise ValueError(f"frames must be an integer of at least 2 (motion needs two frames), not {frames!r}; "
                         "FlowRVS likes 4k+1 frames: 5, 9, 13, ...")


def _scene_with_expressions(rng, config: WorldConfig, size: int, frames: int, video: bool, tries: int = 100):
    """A scene that has at least one expression of config.kinds."""
    for _ in range(tries):
        objects, full, visible = sample_scene(rng, config, size, frames, config.motions if video else ("still",))
        pools = candidates(objects, size, config, video=video)
        expressions = choose(rng, pools, config.max_expressions, config.kinds)
        if expressions:
            return objects, full, visible, expressions
    raise RuntimeError(f"no scene in {tries} tries had an expression of kinds {config.kinds}; allow more kinds, "
                       "colours or shapes")


def generate_video_clip(rng: np.random.Generator, frames: int = 9, size: int = 64,
                        config: WorldConfig | None = None) -> VideoClip:
    """One clip: moving shapes and up to config.max_expressions expressions (MeViS style:
    an expression may refer to two or three objects)."""
    _check(size, frames)
    config = config or VIDEO_CONFIG
    objects, full, visible, expressions = _scene_with_expressions(rng, config, size, frames, True)
    return VideoClip(objects, paint(rng, objects, full, size), full, visible, expressions)


def generate_image(rng: np.random.Generator, size: int = 64, config: WorldConfig | None = None) -> ImageScene:
    """One image: still shapes and up to config.max_expressions expressions, each naming one object."""
    _check(size)
    config = config or IMAGE_CONFIG
    objects, full, visible, expressions = _scene_with_expressions(rng, config, size, 1, False)
    return ImageScene(objects, paint(rng, objects, full, size), full, visible, expressions)


def scene_rng(seed: int, index: int, video: bool) -> np.random.Generator:
    """The generator of scene `index` of a seed's world: scene i is the same whatever the count."""
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, not {seed!r}")
    return np.random.default_rng([int(seed), _VIDEO_STREAM if video else _IMAGE_STREAM, int(index)])


def video_clips(seed: int, count: int | None = None, frames: int = 9, size: int = 64,
                config: WorldConfig | None = None, start: int = 0) -> Iterator[VideoClip]:
    """Clips start, start+1, ... of the seed's video world (endless when count is None)."""
    i = start
    while count is None or i < start + count:
        yield generate_video_clip(scene_rng(seed, i, True), frames, size, config)
        i += 1


def images(seed: int, count: int | None = None, size: int = 64, config: WorldConfig | None = None,
           start: int = 0) -> Iterator[ImageScene]:
    i = start
    while count is None or i < start + count:
        yield generate_image(scene_rng(seed, i, False), size, config)
        i += 1


class VideoSample(NamedTuple):
    frames: np.ndarray  # uint8 [T, H, W, 3]
    expression: str
    mask: np.ndarray  # bool [T, H, W]


class ImageSample(NamedTuple):
    image: np.ndarray  # uint8 [H, W, 3]
    expression: str
    mask: np.ndarray  # bool [H, W]


def video_samples(seed: int, count: int | None = None, frames: int = 9, size: int = 64,
                  config: WorldConfig | None = None, start: int = 0) -> Iterator[VideoSample]:
    """(frames, expression, mask) for every expression of clips start .. start+count-1."""
    for clip in video_clips(seed, count, frames, size, config, start):
        for e in clip.expressions:
            yield VideoSample(clip.frames, e.text, clip.mask(e))


def image_samples(seed: int, count: int | None = None, size: int = 64, config: WorldConfig | None = None,
                  start: int = 0) -> Iterator[ImageSample]:
    """(image, expression, mask) for every expression of images start .. start+count-1."""
    for scene in images(seed, count, size, config, start):
        for e in scene.expressions:
            yield ImageSample(scene.image, e.text, scene.mask(e))
