"""Overlay clips to share: frames with each object's mask in its own colour, a crisp boundary and
the expression as a caption; side by side for several mask sources; written as mp4, GIF, WebP or PNG.

Pure drawing plus streaming writers. A clip is drawn and written one frame at a time (never the
whole clip in memory); mp4 and WebP go through the ffmpeg binary of the imageio-ffmpeg wheel,
fed raw RGB frames through a pipe. A render that fails or is cancelled leaves no file behind.
"""
from __future__ import annotations

import math
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.errors import UserError
from app.masks.overlay import render_overlay
from engine import Cancelled

FORMATS = ("mp4", "gif", "webp", "png")
LAYERS = ("image+mask", "mask", "image")
GAP_PX, GAP_RGB = 4, (32, 32, 32)
MAX_SOURCES = 9
# GIF and WebP are for short clips: frames x width x height at most this many pixels.
SHORT_CLIP_PIXELS = 100_000_000


class RenderError(UserError, ValueError):
    """A render request that cannot be met; the message says what to change."""


@dataclass(frozen=True)
class MaskSource:
    """One panel of the clip: a label and, per frame index, one bool mask per object."""
    label: str
    masks: Callable[[int], Sequence[np.ndarray]]


# -- arguments ---------------------------------------------------------------------------------
def pick_format(fmt: str | None, out: str | Path, kind: str) -> str:
    """The format asked for; else the output file's extension; else mp4 for videos, png for images."""
    suffix = Path(out).suffix.lower().lstrip(".")
    suffix = "mp4" if suffix in ("m4v", "mov") else suffix
    if fmt is None:
        return suffix if suffix in FORMATS else ("png" if kind == "image" else "mp4")
    fmt = str(fmt).lower().lstrip(".")
    if suffix in FORMATS and suffix != fmt:
        raise RenderError(f"the output {Path(out).name} says {suffix} but the format asked for is {fmt}; "
                          f"name the file .{fmt} or ask for {suffix}")
    return fmt


def check_format(fmt: str, kind: str, frame_count: int) -> str:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise RenderError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "png" and frame_count != 1:
        raise RenderError(f"png holds one frame, but {frame_count} frames were asked for; pick one frame "
                          "(frames A:A+1) or write mp4, gif or webp")
    if fmt != "png" and kind == "image":
        raise RenderError(f"an image renders as png, not {fmt}")
    return fmt


def check_layers(layers: str) -> str:
    if layers not in LAYERS:
        raise RenderError(f"unknown layers {layers!r}; use image+mask (the frame with the masks), "
                          "mask (the masks alone, on black) or image (the frame alone, with the caption)")
    return layers


def parse_frames(spec: str | Sequence[int] | None, total: int) -> tuple[int, int]:
    """'A:B' (B excluded), 'A:', ':B' or 'A' (that frame alone) -> (start, stop) within 0..total."""
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return 0, total
    try:
        if isinstance(spec, str):
            parts = spec.strip().split(":")
            if len(parts) > 2:
                raise ValueError
            start = int(parts[0]) if parts[0].strip() else 0
            stop = (int(parts[1]) if parts[1].strip() else total) if len(parts) == 2 else start + 1
        else:
            start, stop = (int(v) for v in spec)
    except (TypeError, ValueError):
        raise RenderError(f"frames {spec!r} is not a range; write A:B (frames A to B-1), A: or :B") from None
    if not 0 <= start < stop <= total:
        raise RenderError(f"frames {start}:{stop} are outside the media, which has frames 0..{total - 1}; "
                          f"choose 0 <= A < B <= {total}")
    return start, stop


def frame_indices(start: int, stop: int, source_fps: float, fps: float | None) -> list[int]:
    """Source frames to show at `fps` so that the clip keeps its duration: a lower rate drops
    frames evenly; a higher one is refused (a clip cannot gain frames)."""
    if fps is None or fps == source_fps:
        return list(range(start, stop))
    if not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise RenderError(f"fps must be a positive number, got {fps!r}")
    if fps > source_fps + 1e-6:
        raise RenderError(f"fps {fps:g} is above the video's own {source_fps:g}; a clip cannot gain frames: "
                          f"choose at most {source_fps:g}, or leave fps out")
    count = math.ceil((stop - start) * fps / source_fps - 1e-9)
    return [start + int(k * source_fps / fps + 1e-9) for k in range(count)]


def output_size(width: int, height: int, scale: float) -> tuple[int, int]:
    if not (isinstance(scale, (int, float)) and math.isfinite(scale) and 0 < scale <= 4):
        raise RenderError(f"scale must be above 0 and at most 4, got {scale!r}")
    w, h = round(width * scale), round(height * scale)
    if min(w, h) < 16:
        raise RenderError(f"scale {scale:g} makes {width}x{height} frames {w}x{h}; frames need at least "
                          "16 px a side: choose a larger scale")
    return w, h


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) for n panels: side by side for two, then as square as it goes."""
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


def panel_origin(k: int, size: tuple[int, int], n: int) -> tuple[int, int]:
    """(x, y) of panel k's top-left corner in the grid."""
    cols, _ = grid_shape(n)
    return (k % cols) * (size[0] + GAP_PX), (k // cols) * (size[1] + GAP_PX)


def canvas_size(size: tuple[int, int], n: int, even: bool) -> tuple[int, int]:
    """The written frame's size: the grid of n panels, padded to even sides for H.264."""
    cols, rows = grid_shape(n)
    w, h = cols * size[0] + (cols - 1) * GAP_PX, rows * size[1] + (rows - 1) * GAP_PX
    return (w + w % 2, h + h % 2) if even else (w, h)


# -- drawing -----------------------------------------------------------------------------------
def boundary_px(size: tuple[int, int]) -> int:
    """Boundary width: 2 px up to 540p, growing with the frame so it survives video codecs."""
    return max(2, round(min(size) / 270))


def draw_masks(image: np.ndarray, masks: Sequence[np.ndarray], colours: Sequence[tuple[int, int, int]],
               layers: str = "image+mask", opacity: float = 0.5, out: np.ndarray | None = None) -> np.ndarray:
    """The frame (or black, for the mask layer) with each mask tinted in its colour and its
    boundary drawn at full colour; the image layer is the frame unchanged. Drawn into `out`
    (a frame-sized view) when given, else into a new array."""
    out = np.empty_like(image) if out is None else out
    if layers == "mask":
        out[...] = 0
    elif out is not image:
        out[...] = image
    if layers == "image":
        return out
    alpha = 1.0 if layers == "mask" else opacity
    width = boundary_px(image.shape[1::-1])
    for mask, rgb in zip(masks, colours):
        render_overlay(out, mask, opacity=alpha, color=rgb, contour_color=rgb, contour_px=width, inplace=True)
    return out


class TextPatch:
    """Lines of text on a dark translucent box, each line led by colour swatches; rendered once
    (FreeType, any script the font covers) and blended onto every frame."""

    def __init__(self, lines: Sequence[tuple[str, Sequence[tuple[int, int, int]]]], max_width: int,
                 font_px: int, max_lines: int = 6):
        if len(lines) > max_lines:
            lines = list(lines[:max_lines - 1]) + [(f"+{len(lines) - max_lines + 1} more", [])]
        font = ImageFont.load_default(size=font_px)
        pad, line_h = max(2, font_px // 4), round(font_px * 1.3)
        swatch = round(font_px * 0.8)
        texts = [(_fit(font, text, max_width - 2 * pad - len(rgbs) * (swatch + pad)), rgbs) for text, rgbs in lines]
        width = min(max_width, 2 * pad + max(len(rgbs) * (swatch + pad) + font.getlength(t) for t, rgbs in texts))
        height = 2 * pad + line_h * len(texts)
        box = Image.new("RGBA", (max(1, math.ceil(width)), height), (0, 0, 0, 170))
        draw = ImageDraw.Draw(box)
        for row, (text, rgbs) in enumerate(texts):
            y, x = pad + row * line_h, pad
            for rgb in rgbs:
                top = y + (line_h - swatch) // 2
                draw.rectangle([x, top, x + swatch - 1, top + swatch - 1], fill=(*rgb, 255),
                               outline=(255, 255, 255, 255))
                x += swatch + pad
            draw.text((x, y + (line_h - font_px) // 2), text, font=font, fill=(255, 255, 255, 255))
        rgba = np.asarray(box, np.float32)
        self.alpha = rgba[..., 3:] / 255.0
        self.premultiplied = rgba[..., :3] * self.alpha
        self.shape = rgba.shape[:2]

    def draw(self, image: np.ndarray, at: str = "bottom") -> np.ndarray:
        """Blend onto `image` (in place) at its top-left or bottom-left corner."""
        h, w = min(self.shape[0], image.shape[0]), min(self.shape[1], image.shape[1])
        y0 = 0 if at == "top" else image.shape[0] - h
        region = image[y0:y0 + h, :w]
        blended = region * (1.0 - self.alpha[:h, :w]) + self.premultiplied[:h, :w] + 0.5
        region[...] = blended.astype(np.uint8)
        return image


def font_px(height: int) -> int:
    return max(12, round(height / 22))


def _fit(font, text: str, width: float) -> str:
    """The longest start of `text` that fits `width` pixels ("..." added when cut): a binary
    search over the length, O(n log n) measures of characters, never one measure per character."""
    # A visible glyph is at least a pixel wide, so no more than `width` characters can show:
    # measuring beyond that only costs time (an 8,000-character expression took minutes).
    shown = text[:max(0, int(width)) + 1]
    if shown == text and font.getlength(text) <= width:
        return text
    text = shown
    fits, too_long = 0, len(text)  # text[:fits] + "..." fits; text[:too_long] + "..." does not
    while too_long - fits > 1:
        mid = (fits + too_long) // 2
        if font.getlength(text[:mid] + "...") <= width:
            fits = mid
        else:
            too_long = mid
    return text[:fits] + "..."


class Compositor:
    """Draws output frames: each source's masks over the (scaled) frame, the caption, the
    source labels when there are several, all placed in the grid."""

    def __init__(self, sources: Sequence[MaskSource], colours: Sequence[tuple[int, int, int]],
                 caption: Sequence[tuple[str, Sequence[tuple[int, int, int]]]] | None,
                 size: tuple[int, int], layers: str = "image+mask", opacity: float = 0.5, even: bool = False):
        if not sources:
            raise RenderError("nothing to draw: give at least one mask source")
        self.sources, self.colours, self.size = list(sources), list(colours), size
        self.layers, self.opacity = check_layers(layers), opacity
        px = font_px(size[1])
        self.caption = TextPatch(caption, size[0], px) if caption else None
        labelled = len(self.sources) > 1
        self.labels = [TextPatch([(s.label, [])], size[0], px) if labelled else None for s in self.sources]
        self.canvas = canvas_size(size, len(self.sources), even)

    def compose(self, index: int, image: np.ndarray, owned: bool = False) -> np.ndarray:
        """The output frame for source frame `index`; `owned`: `image` is the caller's to spend,
        so one panel is drawn on it (no full-frame copy)."""
        w, h = self.size
        if image.shape[1::-1] != (w, h):
            shrink = w < image.shape[1]
            image, owned = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR), True
        if self.canvas == (w, h) and owned and image.flags.writeable:
            out = image
        else:
            out = np.empty((self.canvas[1], self.canvas[0], 3), np.uint8)
            out[...] = GAP_RGB
        for k, source in enumerate(self.sources):
            masks = [self._scaled(m, (w, h)) for m in source.masks(index)]
            x, y = panel_origin(k, self.size, len(self.sources))
            panel = draw_masks(image, masks, self.colours, self.layers, self.opacity, out=out[y:y + h, x:x + w])
            if self.caption:
                self.caption.draw(panel, "bottom")
            if self.labels[k]:
                self.labels[k].draw(panel, "top")
        return out

    @staticmethod
    def _scaled(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        mask = np.asarray(mask, bool)
        if mask.shape[1::-1] == size:
            return mask
        return cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_NEAREST).view(bool)


def frames_of(compositor: Compositor, read_frame: Callable[[int], np.ndarray], indices: Sequence[int],
              progress: Callable[[int, int], None] | None = None, cancel: Callable[[], bool] | None = None,
              owned: bool = False) -> Iterator[np.ndarray]:
    """Output frames one at a time; checks `cancel` before each and reports (done, total) after.
    `owned`: read_frame returns a new array each call, which may be drawn on."""
    for done, index in enumerate(indices, 1):
        if cancel is not None and cancel():
            raise Cancelled(f"render cancelled at frame {index}; no file was written")
        yield compositor.compose(index, read_frame(index), owned)
        if progress is not None:
            progress(done, len(indices))


# -- writers -----------------------------------------------------------------------------------
def check_short_clip(fmt: str, count: int, canvas: tuple[int, int]) -> None:
    pixels = count * canvas[0] * canvas[1]
    if fmt in ("gif", "webp") and pixels > SHORT_CLIP_PIXELS:
        raise RenderError(f"a {fmt} of {count} frames at {canvas[0]}x{canvas[1]} holds {pixels / 1e6:.0f} Mpx, "
                          f"more than the {SHORT_CLIP_PIXELS / 1e6:.0f} Mpx of a short clip; lower the scale, "
                          "the frame range or the fps, or write mp4")


def write_clip(frames: Iterable[np.ndarray], out: str | Path, fmt: str, fps: float) -> Path:
    """Write the frames to `out` atomically: into a hidden partial file beside it, renamed when
    complete; removed on any error or cancel."""
    out = Path(out)
    if not out.parent.is_dir():
        raise RenderError(f"folder {out.parent} does not exist; create it or write elsewhere")
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        {"mp4": _write_ffmpeg, "webp": _write_ffmpeg, "gif": _write_gif, "png": _write_png}[fmt](
            iter(frames), partial, fmt, fps)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out


def _write_png(frames: Iterator[np.ndarray], path: Path, fmt: str, fps: float) -> None:
    Image.fromarray(next(frames)).save(path, format="PNG")
    for _ in frames:  # a png holds one frame; the caller asked for one
        raise RenderError("png holds one frame; pick one frame or write a clip format")


def _write_gif(frames: Iterator[np.ndarray], path: Path, fmt: str, fps: float) -> None:
    # One palette for the clip, from its first frame: unchanged pixels stay identical from frame to
    # frame, so each GIF frame stores only what moved. PIL keeps frames palettised (1 byte a pixel).
    first = Image.fromarray(next(frames)).quantize(255, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    rest = (Image.fromarray(f).quantize(palette=first, dither=Image.Dither.NONE) for f in frames)
    # GIF delays are in hundredths of a second.
    first.save(path, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps, -1) or 10,
               loop=0)


def ffmpeg_exe() -> str:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise RenderError("writing mp4 and webp needs the imageio-ffmpeg package: pip install "
                          "imageio-ffmpeg (it is in requirements.txt)") from None
    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_args(fmt: str, size: tuple[int, int], fps: float, path: Path) -> list[str]:
    rate = Fraction(fps).limit_denominator(1001)
    # mp4 frames arrive as 4:2:0 already (OpenCV converts faster than ffmpeg's scaler, and the
    # pipe carries half the bytes); OpenCV's matrix is BT.601, limited range: tagged so.
    pix_fmt = "yuv420p" if fmt == "mp4" else "rgb24"
    head = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", pix_fmt,
            "-s", f"{size[0]}x{size[1]}", "-r", f"{rate.numerator}/{rate.denominator}", "-i", "pipe:0", "-an"]
    if fmt == "mp4":  # what browsers and slide tools play: H.264, 4:2:0, index first
        return head + ["-c:v", "libx264", "-preset", "superfast", "-crf", "20", "-pix_fmt", "yuv420p",
                       "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
                       "-color_range", "tv", "-movflags", "+faststart", "-f", "mp4", str(path)]
    return head + ["-c:v", "libwebp_anim", "-quality", "80", "-loop", "0", "-f", "webp", str(path)]


def _write_ffmpeg(frames: Iterator[np.ndarray], path: Path, fmt: str, fps: float) -> None:
    first = next(frames)
    size = first.shape[1::-1]
    if fmt == "mp4" and (size[0] % 2 or size[1] % 2):
        raise RenderError(f"H.264 in 4:2:0 needs even sides, got {size[0]}x{size[1]}")
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(_ffmpeg_args(fmt, size, fps, path), stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            for frame in _chain(first, frames):
                if frame.shape[1::-1] != size:
                    raise RenderError(f"frame size changed from {size} to {frame.shape[1::-1]} mid-clip")
                raw = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420) if fmt == "mp4" else np.ascontiguousarray(frame)
                proc.stdin.write(raw.data)
            proc.stdin.close()
            code = proc.wait()
        except BrokenPipeError:
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        if code != 0:
            log.seek(0)
            raise RenderError(f"ffmpeg could not write the {fmt} (exit {code}): "
                              f"{log.read().decode(errors='replace').strip()[-800:]}")


def _chain(first, rest):
    yield first
    yield from rest
