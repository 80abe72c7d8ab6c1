"""Project limits on sizes that come from files or callers, checked before anything is decoded
or allocated.

Each limit has a default and an environment variable to raise it; messages name both, so a
user with a genuine large file knows what to set. Limits are read at each check. The same table
bounds media the user adds and datasets imported (app/formats), which also check declared
counts and polygon outlines before they allocate anything.
"""
from __future__ import annotations

import operator
import os
from dataclasses import dataclass

from app.errors import UserError


class LimitError(UserError, ValueError):
    """A size over a project limit (or a nonsense size). str(e) names the limit and how to raise it."""


@dataclass(frozen=True)
class Limit:
    env: str
    default: int
    what: str  # "pixels per image, frame or mask", ...

    @property
    def value(self) -> int:
        """The environment variable's value when set, else the default; read at each check."""
        raw = os.environ.get(self.env, "").strip()
        if not raw:
            return self.default
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            value = 0
        if value < 1:
            raise LimitError(f"{self.env}={raw!r} is not a positive whole number; set it to one "
                             f"(default {self.default}) or unset it")
        return value

    def exceeded(self, amount: int) -> str | None:
        """A message naming the limit and how to raise it, or None when `amount` is within it."""
        if amount <= self.value:
            return None
        return (f"{amount:,} {self.what} is over the limit of {self.value:,}; if the data is right, "
                f"raise it with the environment variable {self.env}")


# The one table of size limits, for media the user adds and for datasets imported alike.
PIXELS = Limit("FLOWLABEL_MAX_PIXELS", 64_000_000, "pixels per image, frame or mask")  # 8K video, most photos
FRAMES = Limit("FLOWLABEL_MAX_FRAMES", 200_000, "frames in one video")  # 1.8 hours at 30 fps
OBJECTS = Limit("FLOWLABEL_MAX_OBJECTS", 10_000, "objects in one image or video")
EXPRESSION_CHARS = Limit("FLOWLABEL_MAX_EXPRESSION_CHARS", 2_000, "characters in one expression")  # ~350 words
POLYGON_OUTLINE = Limit("FLOWLABEL_MAX_POLYGON_OUTLINE", 64,
                        "times the image's perimeter for one annotation's polygon outlines")
# The one allowance that is not configurable: polygon points may lie this far outside the
# image (COCO outlines often run up to the border, sometimes a little past it).
POLYGON_MARGIN = 2.0


def max_pixels() -> int:
    return PIXELS.value


def max_frames() -> int:
    return FRAMES.value


def size_problem(width: int, height: int) -> str | None:
    return PIXELS.exceeded(int(width) * int(height))


def check_pixels(name: str, width, height, what: str = "an image") -> None:
    """Refuse a declared size before decoding: sides below 1, or more pixels than the limit."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise LimitError(f"{name} declares {what} of {width}x{height} pixels, which cannot be real; "
                    "the file is damaged; export it again")
    limit, pixels = max_pixels(), width * height
    if pixels > limit:
        raise LimitError(f"{name} declares {what} of {width}x{height} = {pixels:,} pixels, over the limit of "
                    f"{limit:,} pixels ({PIXELS.env}); nothing was decoded or imported. If the file is "
                    f"genuine, raise the limit, e.g. {PIXELS.env}={pixels} (a decoded frame of this "
                    f"size takes {pixels * 3 / 2**30:.1f} GiB)")


def check_frame_count(name: str, frames: int, decoded: bool = False) -> None:
    limit = max_frames()
    if frames > limit:
        what = f"decodes to more than {limit:,}" if decoded else f"declares {frames:,}"
        raise LimitError(f"{name} {what} frames, over the limit of {limit:,} frames ({FRAMES.env}); "
                    f"nothing was imported. Cut the video into parts, or raise the limit, e.g. "
                    f"{FRAMES.env}={max(frames, 2 * limit)}")


def frame_number(value, frames: int, name: str) -> int:
    """A frame index from a caller (page, API, script): a whole number in 0..frames-1, checked
    before anything is looked up or allocated for it. 3.0 and "3" pass; 1.5, 1e9, -1, True do not."""
    if isinstance(value, bool):
        raise LimitError(f"frame must be a whole number, not {value!r}")
    try:
        number = operator.index(value)  # int and NumPy integers
    except TypeError:
        number = _whole_float(value)
        if number is None:
            raise LimitError(f"frame must be a whole number, not {value!r}") from None
    if not 0 <= number < frames:
        raise LimitError(f"frame {number} is outside {name}, which has frames 0..{frames - 1}")
    return number


def _whole_float(value) -> int | None:
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return None
    return int(as_float) if as_float.is_integer() else None
