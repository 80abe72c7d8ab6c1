"""The world: coloured shapes on a textured background, moving or still, drawn in depth order.

A scene is a list of `SceneObject`s (shape, colour, size class and radius, motion, depth,
centre per frame) and what they look like: the full mask of each object per frame, the
visible mask (the full mask minus every object drawn above it) and the RGB frames. Images
are one-frame scenes whose objects stand still.

Geometry is exact: masks are drawn without anti-aliasing and the frames are painted from
those masks, so a mask is exactly the pixels of its object's colour (before JPEG).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

COLOURS = {  # RGB
    "red": (215, 40, 40), "green": (50, 170, 70), "blue": (45, 90, 220), "yellow": (235, 205, 35),
    "purple": (145, 60, 185), "orange": (245, 135, 30), "white": (245, 245, 245),
}
SHAPES = ("square", "circle", "triangle", "star", "hexagon")
MOTIONS = ("left", "right", "up", "down", "still")
SIZES = ("small", "big")
# Expression constructions (see language.py); images use those without motion or plurals.
KINDS = ("attribute", "attribute_plural", "motion", "motion_plural", "size_superlative", "size_comparative",
         "position_superlative", "ordinal", "relation")
# How far each shape reaches from its centre, in radii (the frame keeps every shape whole).
EXTENT = 1.3
_SHIFT = 4  # cv2 sub-pixel bits for polygon vertices


@dataclass(frozen=True)
class WorldConfig:
    """What a world may hold. Lengths are fractions of the frame side, so they scale with --size."""
    colours: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple")
    shapes: tuple[str, ...] = ("square", "circle", "triangle", "star")
    motions: tuple[str, ...] = MOTIONS
    objects: tuple[int, int] = (3, 5)  # objects per scene, inclusive
    colours_per_scene: tuple[int, int] = (2, 3)  # few colours and shapes per scene, so that
    shapes_per_scene: tuple[int, int] = (2, 3)  # attributes repeat and relations are needed
    small_radius: tuple[float, float] = (0.075, 0.10)
    big_radius: tuple[float, float] = (0.14, 0.17)
    travel: tuple[float, float] = (0.22, 0.38)  # distance a moving object covers over the clip
    min_visible: float = 0.35  # every object keeps this share of its pixels visible in every frame
    same_colour_overlap: bool = False  # two shapes of one colour never overlap: their border would not show
    position_margin: float = 0.08  # "left of", "leftmost", "second from the top" need this gap
    size_ratio: float = 1.3  # "largest", "larger" need this ratio of radii
    max_expressions: int = 8  # per scene
    kinds: tuple[str, ...] = KINDS  # constructions to use (e.g. leave out "relation" and "ordinal" to start easy)

    def __post_init__(self):
        def check(ok, why):
            if not ok:
                raise ValueError(f"WorldConfig: {why}")
        check(self.colours and all(c in COLOURS for c in self.colours),
              f"colours must be a non-empty subset of {sorted(COLOURS)}, not {self.colours}")
        check(self.shapes and all(s in SHAPES for s in self.shapes),
              f"shapes must be a non-empty subset of {SHAPES}, not {self.shapes}")
        check(self.motions and all(m in MOTIONS for m in self.motions),
              f"motions must be a non-empty subset of {MOTIONS}, not {self.motions}")
        check(1 <= self.objects[0] <= self.objects[1] <= 8, f"objects must be (min, max) within 1..8, not {self.objects}")
        check(1 <= self.colours_per_scene[0] <= self.colours_per_scene[1],
              f"colours_per_scene must be (min, max) with 1 <= min <= max, not {self.colours_per_scene}")
        check(1 <= self.shapes_per_scene[0] <= self.shapes_per_scene[1],
              f"shapes_per_scene must be (min, max) with 1 <= min <= max, not {self.shapes_per_scene}")
        check(self.small_radius[1] * self.size_ratio <= self.big_radius[0],
              "big_radius must start at least size_ratio times above small_radius, so that "
              "'big' and 'small' are never in doubt")
        check(0 < self.min_visible <= 1, "min_visible is a share of an object's pixels, in (0, 1]")
        check(self.max_expressions >= 1, "max_expressions must be at least 1")
        check(self.kinds and all(k in KINDS for k in self.kinds),
              f"kinds must be a non-empty subset of {KINDS}, not {self.kinds}")


VIDEO_CONFIG = WorldConfig()
IMAGE_CONFIG = WorldConfig(objects=(3, 6), max_expressions=6)


@dataclass
class SceneObject:
    index: int  # position in the scene (MeViS obj_id)
    shape: str
    colour: str
    size: str  # "small" or "big"
    radius: float  # pixels
    motion: str  # one of MOTIONS; "still" in images
    depth: int  # 0 is drawn first (at the bottom)
    centres: np.ndarray = field(repr=False)  # float [T, 2]: (x, y) per frame

    def to_json(self) -> dict:
        return {"obj_id": self.index, "shape": self.shape, "colour": self.colour, "size": self.size,
                "radius": round(float(self.radius), 3), "motion": self.motion, "depth": self.depth,
                "centres": [[round(float(x), 3), round(float(y), 3)] for x, y in self.centres]}


@functools.lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(size, dtype=np.float64), np.arange(size, dtype=np.float64))


def _polygon(points: np.ndarray, size: int) -> np.ndarray:
    canvas = np.zeros((size, size), np.uint8)
    pts = np.round(points * (1 << _SHIFT)).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], 1, lineType=cv2.LINE_8, shift=_SHIFT)
    return canvas.astype(bool)


def _star(cx: float, cy: float, outer: float, inner: float) -> np.ndarray:
    angles = -np.pi / 2 + np.arange(10) * np.pi / 5
    radii = np.where(np.arange(10) % 2 == 0, outer, inner)
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)


def shape_mask(shape: str, cx: float, cy: float, radius: float, size: int) -> np.ndarray:
    """bool [size, size]: the pixels (centres at integer coordinates) the shape covers.

    Shapes are scaled to cover roughly the area of a circle of `radius`, and all fit within
    EXTENT * radius of the centre.
    """
    r = float(radius)
    if shape == "circle":
        xx, yy = _grid(size)
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if shape == "square":
        xx, yy = _grid(size)
        half = 0.88 * r
        return (np.abs(xx - cx) <= half) & (np.abs(yy - cy) <= half)
    if shape == "triangle":  # pointing up, its bounding box centred on (cx, cy)
        big = 1.3 * r
        angles = np.deg2rad([-90.0, 30.0, 150.0])
        pts = np.stack([cx + big * np.cos(angles), cy + big / 4 + big * np.sin(angles)], 1)
        return _polygon(pts, size)
    if shape == "star":
        return _polygon(_star(cx, cy, 1.3 * r, 0.55 * r), size)
    if shape == "hexagon":
        angles = np.arange(6) * np.pi / 3
        pts = np.stack([cx + 1.05 * r * np.cos(angles), cy + 1.05 * r * np.sin(angles)], 1)
        return _polygon(pts, size)
    raise ValueError(f"unknown shape {shape!r}; shapes are {SHAPES}")


def _pick(rng: np.random.Generator, values, bounds: tuple[int, int]) -> list:
    k = int(rng.integers(min(bounds[0], len(values)), min(bounds[1], len(values)) + 1))
    return [values[i] for i in sorted(rng.choice(len(values), k, replace=False))]


def _sample_objects(rng: np.random.Generator, config: WorldConfig, size: int, frames: int,
                    motions: tuple[str, ...]) -> list[SceneObject]:
    n = int(rng.integers(config.objects[0], config.objects[1] + 1))
    colours = _pick(rng, config.colours, config.colours_per_scene)
    shapes = _pick(rng, config.shapes, config.shapes_per_scene)
    depths = rng.permutation(n)
    objects = []
    t = np.linspace(0.0, 1.0, frames)[:, None] if frames > 1 else np.zeros((1, 1))
    for i in range(n):
        shape = shapes[int(rng.integers(len(shapes)))]
        colour = colours[int(rng.integers(len(colours)))]
        size_class = SIZES[int(rng.integers(2))]
        lo_hi = config.small_radius if size_class == "small" else config.big_radius
        radius = float(rng.uniform(*lo_hi)) * size
        motion = motions[int(rng.integers(len(motions)))]
        lo, hi = EXTENT * radius + 1.0, size - 2.0 - EXTENT * radius
        start = rng.uniform(lo, hi, 2)
        end = start.copy()
        if motion != "still":
            axis, sign = {"left": (0, -1), "right": (0, 1), "up": (1, -1), "down": (1, 1)}[motion]
            travel = min(float(rng.uniform(*config.travel)) * size, hi - lo)
            first = float(rng.uniform(lo, hi - travel))  # the lower end of the path on its axis
            start[axis], end[axis] = (first, first + travel) if sign > 0 else (first + travel, first)
        centres = start[None, :] + (end - start)[None, :] * t
        objects.append(SceneObject(i, shape, colour, size_class, radius, motion, int(depths[i]), centres))
    return objects


def draw_masks(objects: list[SceneObject], size: int) -> tuple[np.ndarray, np.ndarray]:
    """(full, visible), bool [N, T, H, W]; visible = full minus every object drawn above."""
    n, frames = len(objects), len(objects[0].centres)
    full = np.zeros((n, frames, size, size), bool)
    for o in objects:
        for f, (cx, cy) in enumerate(o.centres):
            full[o.index, f] = shape_mask(o.shape, cx, cy, o.radius, size)
    visible = full.copy()
    for o in objects:
        above = [p.index for p in objects if p.depth > o.depth]
        if above:
            visible[o.index] &= ~full[above].any(0)
    return full, visible


def background(rng: np.random.Generator, size: int) -> np.ndarray:
    """float [H, W, 3]: a muted, low-saturation texture (smooth blotches plus grain)."""
    base = rng.uniform(70.0, 150.0) + rng.uniform(-12.0, 12.0, 3)
    blotches = cv2.resize(rng.normal(0.0, 28.0, (5, 5)).astype(np.float32), (size, size),
                          interpolation=cv2.INTER_CUBIC)[..., None]
    tint = cv2.resize(rng.normal(0.0, 8.0, (4, 4, 3)).astype(np.float32), (size, size),
                      interpolation=cv2.INTER_CUBIC)
    grain = rng.normal(0.0, 7.0, (size, size, 3))
    return base + blotches + tint + grain


def paint(rng: np.random.Generator, objects: list[SceneObject], full: np.ndarray, size: int) -> np.ndarray:
    """uint8 [T, H, W, 3] RGB frames: background, then objects bottom to top."""
    frames = full.shape[1]
    bg = background(rng, size)
    colours = {o.index: np.array(COLOURS[o.colour], np.float64) + rng.integers(-15, 16, 3) for o in objects}
    out = np.empty((frames, size, size, 3), np.uint8)
    for f in range(frames):
        img = bg.copy()
        for o in sorted(objects, key=lambda p: p.depth):
            m = full[o.index, f]
            img[m] = colours[o.index] + rng.normal(0.0, 5.0, (int(m.sum()), 3))
        img += rng.normal(0.0, 3.0, img.shape)
        out[f] = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return out


def _same_colour_overlap(objects: list[SceneObject], full: np.ndarray) -> bool:
    for a in objects:
        for b in objects[a.index + 1:]:
            if a.colour == b.colour and (full[a.index] & full[b.index]).any():
                return True
    return False


def sample_scene(rng: np.random.Generator, config: WorldConfig, size: int, frames: int, motions: tuple[str, ...],
                 tries: int = 200):
    """Objects, full and visible masks of a scene where every object stays visible enough."""
    for _ in range(tries):
        objects = _sample_objects(rng, config, size, frames, motions)
        full, visible = draw_masks(objects, size)
        area = full.sum((2, 3))
        if area.min() == 0 or (visible.sum((2, 3)) / area).min() < config.min_visible:
            continue
        if not config.same_colour_overlap and _same_colour_overlap(objects, full):
            continue
        return objects, full, visible
    raise RuntimeError(f"no scene in {tries} tries kept every object {config.min_visible:.0%} visible "
                       "(and shapes of one colour apart); lower min_visible or the number of objects, "
                       "allow same_colour_overlap, or use a larger --size")
