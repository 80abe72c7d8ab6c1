"""Limits on what a dataset file may make an import allocate.

Sizes, counts and coordinates in a dataset are untrusted: a polygon at 1e9 makes pycocotools'
rasteriser allocate without bound (and crash the process), an RLE or PNG declaring 30000 x
30000 pixels decodes to gigabytes, a frame_index of 1e9 asks for a billion frames. Every
importer checks them against these limits before decoding or allocating, and refuses the
dataset with a problem that names the limit and the environment variable that raises it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

# The one allowance that is not configurable: polygon points may lie this far outside the
# image (COCO outlines often run up to the border, sometimes a little past it).
POLYGON_MARGIN = 2.0


@dataclass(frozen=True)
class Limit:
    env: str
    default: int
    what: str  # "pixels per image or mask", ...

    @property
    def value(self) -> int:
        raw = os.environ.get(self.env)
        try:
            value = int(raw) if raw else self.default
        except ValueError:
            value = self.default
        return value if value > 0 else self.default

    def exceeded(self, amount: int) -> str | None:
        """A message naming the limit and how to raise it, or None when `amount` is within it."""
        if amount <= self.value:
            return None
        return (f"{amount:,} {self.what} is over the limit of {self.value:,}; if the dataset is right, "
                f"raise it with the environment variable {self.env}")


PIXELS = Limit("FLOWLABEL_MAX_IMAGE_PIXELS", 8192 * 8192, "pixels per image, frame or mask")
FRAMES = Limit("FLOWLABEL_MAX_VIDEO_FRAMES", 100_000, "frames in one video")
OBJECTS = Limit("FLOWLABEL_MAX_OBJECTS", 10_000, "objects in one image or video")
POLYGON_OUTLINE = Limit("FLOWLABEL_MAX_POLYGON_OUTLINE", 64,
                        "times the image's perimeter for one annotation's polygon outlines")


def size_problem(width: int, height: int) -> str | None:
    return PIXELS.exceeded(int(width) * int(height))
