"""Project limits on sizes that come from files or callers, checked before anything is decoded
or allocated.

Each limit has a default and an environment variable to raise it; messages name both, so a
user with a genuine large file knows what to set. Limits are read at each check. Callers pass
their own error class (MediaError, the store's errors), so each layer keeps its error types.
"""
from __future__ import annotations

import operator
import os

MAX_PIXELS_VAR, DEFAULT_MAX_PIXELS = "FLOWLABEL_MAX_PIXELS", 64_000_000  # 8K video, most photos
MAX_FRAMES_VAR, DEFAULT_MAX_FRAMES = "FLOWLABEL_MAX_FRAMES", 200_000  # 1.8 hours at 30 fps


class LimitError(ValueError):
    """A size over a project limit (or a nonsense size). str(e) names the limit and how to raise it."""


def _limit(var: str, default: int) -> int:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise LimitError(f"{var}={raw!r} is not a positive whole number; set it to one (default {default}) "
                         "or unset it")
    return value


def max_pixels() -> int:
    return _limit(MAX_PIXELS_VAR, DEFAULT_MAX_PIXELS)


def max_frames() -> int:
    return _limit(MAX_FRAMES_VAR, DEFAULT_MAX_FRAMES)


def check_pixels(name: str, width, height, what: str = "an image", error=LimitError) -> None:
    """Refuse a declared size before decoding: sides below 1, or more pixels than the limit."""
    width, height = int(width), int(height)
    if width < 1 or height < 1:
        raise error(f"{name} declares {what} of {width}x{height} pixels, which cannot be real; "
                    "the file is damaged; export it again")
    limit, pixels = max_pixels(), width * height
    if pixels > limit:
        raise error(f"{name} declares {what} of {width}x{height} = {pixels:,} pixels, over the limit of "
                    f"{limit:,} pixels ({MAX_PIXELS_VAR}); nothing was decoded or imported. If the file is "
                    f"genuine, raise the limit, e.g. {MAX_PIXELS_VAR}={pixels} (a decoded frame of this "
                    f"size takes {pixels * 3 / 2**30:.1f} GiB)")


def check_frame_count(name: str, frames: int, decoded: bool = False, error=LimitError) -> None:
    limit = max_frames()
    if frames > limit:
        what = f"decodes to more than {limit:,}" if decoded else f"declares {frames:,}"
        raise error(f"{name} {what} frames, over the limit of {limit:,} frames ({MAX_FRAMES_VAR}); "
                    f"nothing was imported. Cut the video into parts, or raise the limit, e.g. "
                    f"{MAX_FRAMES_VAR}={max(frames, 2 * limit)}")


def frame_number(value, frames: int, name: str, error=LimitError) -> int:
    """A frame index from a caller (page, API, script): a whole number in 0..frames-1, checked
    before anything is looked up or allocated for it. 3.0 and "3" pass; 1.5, 1e9, -1, True do not."""
    if isinstance(value, bool):
        raise error(f"frame must be a whole number, not {value!r}")
    try:
        number = operator.index(value)  # int and NumPy integers
    except TypeError:
        number = _whole_float(value)
        if number is None:
            raise error(f"frame must be a whole number, not {value!r}") from None
    if not 0 <= number < frames:
        raise error(f"frame {number} is outside {name}, which has frames 0..{frames - 1}")
    return number


def _whole_float(value) -> int | None:
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return None
    return int(as_float) if as_float.is_integer() else None
