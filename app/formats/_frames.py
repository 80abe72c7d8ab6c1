"""Frames out of the project's media, and folders of frames into lossless videos.

Export: video frames are decoded with app.media.FrameReader and written as JPEG files
00000.jpg, 00001.jpg, ... (quality 95 by default: what dataset loaders expect; JPEG is lossy
for pixels, never for masks, which are written separately). Image media are copied byte for
byte, except those with an EXIF orientation, which are written turned as the project shows
them (write_image_media), so that their pixels have the declared width and height.

Import: a folder of frames becomes one video media, FFV1 in AVI. FFV1 is lossless: the video
decodes to exactly the pixels the JPEG files decode to, so importing adds no loss of its own
(MJPG, the other codec every OpenCV wheel writes, would re-compress each frame). Each frame
is one intra frame, so seeking is frame-exact. AVI rather than Matroska because the AVI
muxer is deterministic (Matroska writes a random segment id): the same frames give the same
file, so importing a dataset twice reuses the media (the store deduplicates by content).
The store's public add_media() takes one file per media, which this keeps.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from app.formats._base import Problems
from app.media import files as media_io
from app.media import limits

LOSSLESS_FOURCC, LOSSLESS_EXT = "FFV1", ".avi"
FRAME_NOTE = ("frame folders were stored as lossless FFV1 .avi videos (frames decode exactly as "
              "the JPEG files did)")


def frame_name(index: int) -> str:
    return f"{index:05d}"


def write_video_frames(path: Path, frames: int, folder: Path, quality: int = 95) -> list[str]:
    """Decode a video media and write its frames as JPEG files; returns the frame names."""
    folder.mkdir(parents=True, exist_ok=True)
    reader = media_io.FrameReader(path, "video", frames)
    names = []
    try:
        for i in range(frames):
            bgr = cv2.cvtColor(reader.read(i), cv2.COLOR_RGB2BGR)
            name = frame_name(i)
            if not cv2.imwrite(str(folder / f"{name}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
                raise OSError(f"could not write {folder / name}.jpg")
            names.append(name)
    finally:
        reader.close()
    return names


def copy_media_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)


EXIF_ORIENTATION = 0x0112


def exif_orientation(path: Path) -> int | None:
    try:
        with Image.open(path) as image:
            return image.getexif().get(EXIF_ORIENTATION)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def write_image_media(src: Path, dst: Path, quality: int = 95) -> None:
    """An image media as the project shows it, in the format of `src`.

    Copied byte for byte, unless the file carries an EXIF orientation: loaders that ignore
    the tag (Pillow, skimage) would then see the image turned, with its width and height
    swapped against the dataset's. Such an image is written as decoded here, the orientation
    applied and no tag left (JPEG at `quality`, other formats losslessly).
    """
    if exif_orientation(src) in (None, 1):
        copy_media_file(src, dst)
        return
    rgb = media_io.FrameReader(src, "image", 1).read(0)
    ext = src.suffix.lower()
    params = {".jpg": [cv2.IMWRITE_JPEG_QUALITY, int(quality)], ".jpeg": [cv2.IMWRITE_JPEG_QUALITY, int(quality)],
              ".webp": [cv2.IMWRITE_WEBP_QUALITY, 101]}.get(ext, [])  # WebP above 100 is lossless
    ok, data = cv2.imencode(ext, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode {src.name} as {ext}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data.tobytes())


def header_problem(path: Path) -> str | None:
    """Whether the file's header declares more pixels than allowed; read before any decoding."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except Image.DecompressionBombError as e:
        return (f"its header declares more pixels than Pillow will open ({e}); the limit here is "
                f"{limits.PIXELS.value:,} pixels ({limits.PIXELS.env})")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None  # not an image Pillow knows: the decoder says what is wrong with it
    problem = limits.size_problem(width, height)
    return f"it is {width}x{height}: {problem}" if problem else None


def decode_frame(path: Path) -> np.ndarray | None:
    """BGR uint8, decoded as app.media.files decodes images (EXIF orientation applied); None if not."""
    try:
        data = np.fromfile(path, np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    except (OSError, cv2.error):
        return None
    return bgr


MIN_FPS, MAX_FPS = 0.01, 1000.0


def assemble_video(frames: list[Path], out: Path, fps: float, size: tuple[int, int] | None,
                   problems: Problems, entry: str) -> tuple[int, int] | None:
    """Write frame files into a lossless video at `out`; returns (width, height) or None.

    `size` (w, h), when known from the masks, is what every frame must be; otherwise the
    first frame sets it. Problems name each unreadable frame or frame of the wrong size.
    """
    if not MIN_FPS <= fps <= MAX_FPS:  # OpenCV's FFV1 writer fails on such rates with a misleading message
        problems.add(frames[0].parent if frames else out, entry, f"frame rate {fps:g} is outside {MIN_FPS:g}..{MAX_FPS:g} frames per second; "
                                      "fix the dataset's fps for this video")
        return None
    writer, before = None, len(problems)
    try:
        for path in frames:
            if not path.is_file():
                problems.add(path, entry, "frame file is missing")
                continue
            too_big = header_problem(path)
            if too_big:
                problems.add(path, entry, f"frame refused: {too_big}")
                continue
            bgr = decode_frame(path)
            if bgr is None:
                problems.add(path, entry, "frame cannot be decoded as an image (corrupt or not an image)")
                continue
            h, w = bgr.shape[:2]
            if size is None:
                size = (w, h)
            if (w, h) != tuple(size):
                problems.add(path, entry, f"frame is {w}x{h} but the video's masks/frames are "
                                          f"{size[0]}x{size[1]}")
                continue
            if len(problems) > before:
                continue  # keep checking the remaining frames, but write nothing more
            if writer is None:
                writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*LOSSLESS_FOURCC), float(fps),
                                         (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"this OpenCV cannot write {LOSSLESS_FOURCC} video into {out.suffix}; "
                                       "frame folders cannot be imported here")
            writer.write(bgr)
    finally:
        if writer is not None:
            writer.release()
    if len(problems) > before or size is None:
        return None
    return size
