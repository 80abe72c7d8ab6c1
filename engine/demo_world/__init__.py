"""A synthetic referring world for the demo models: shapes, colours, sizes, motion, occlusion.

Scenes hold squares, circles, triangles and stars (hexagons on request) of a few colours
and two size classes on a textured background; in videos they move left, right, up or down,
or stand still, and pass over each other (masks are the visible part, by depth). Each scene
comes with expressions that refer to exactly their objects (see `language.py`):

    the red circle · the two circles moving right · the larger of the two circles ·
    the largest square · the leftmost red shape · the second green shape from the top ·
    the blue triangle left of the red circle

In memory (NumPy, no torch):

    from engine.demo_world import video_samples, image_samples, VOCABULARY
    for frames, expression, mask in video_samples(seed=0, count=100):   # uint8 [T,H,W,3], str, bool [T,H,W]
        ...
    for image, expression, mask in image_samples(seed=0, count=100):    # uint8 [H,W,3], str, bool [H,W]
        ...
    clip = generate_video_clip(np.random.default_rng(0))   # .frames .objects .visible .expressions .mask(e)

On disk (MeViS for videos, RefCOCO for images):

    python -m engine.demo_world video --seed 0 --count 100 --out data/demo_video [--frames 9] [--size 64]
    python -m engine.demo_world image --seed 0 --count 200 --out data/demo_image [--size 64]

Scene i of a seed is the same whatever the count (its generator is seeded by (seed, i)), so
held-out sets are simply other seeds.
"""
from engine.demo_world.datasets import write_image_dataset, write_video_dataset
from engine.demo_world.language import KINDS_IMAGE, KINDS_VIDEO, Expression, vocabulary
from engine.demo_world.scenes import (
                                      ImageSample,
                                      ImageScene,
                                      Scene,
                                      VideoClip,
                                      VideoSample,
                                      generate_image,
                                      generate_video_clip,
                                      image_samples,
                                      images,
                                      scene_rng,
                                      video_clips,
                                      video_samples,
)
from engine.demo_world.world import (
                                      COLOURS,
                                      IMAGE_CONFIG,
                                      MOTIONS,
                                      SHAPES,
                                      VIDEO_CONFIG,
                                      SceneObject,
                                      WorldConfig,
)

VOCABULARY = vocabulary()  # every word of the default worlds, sorted

__all__ = [
    "COLOURS", "Expression", "IMAGE_CONFIG", "ImageSample", "ImageScene", "KINDS_IMAGE", "KINDS_VIDEO", "MOTIONS",
    "SHAPES", "Scene", "SceneObject", "VIDEO_CONFIG", "VOCABULARY", "VideoClip", "VideoSample", "WorldConfig",
    "generate_image", "generate_video_clip", "image_samples", "images", "scene_rng", "video_clips",
    "video_samples", "vocabulary", "write_image_dataset", "write_video_dataset",
]
