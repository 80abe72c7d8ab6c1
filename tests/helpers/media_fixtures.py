"""Generate small test media: videos whose frames identify themselves, and seeded images.

Codecs this OpenCV (4.14 pip wheel, FFmpeg backend) writes: mp4v in .mp4/.mov, MJPG in
.avi/.mkv, VP8 in .webm (FFmpeg warns that the 'VP80' tag is unused by WebM; harmless).
H.264 ('avc1') cannot be written here (no encoder in the wheel).
"""
from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import cv2
import numpy as np

# Real media from the wild, shipped with Gradio (b.avi's timestamps skip a frame near the start).
GRADIO_VIDEOS = Path(__import__("gradio").__file__).parent / "media_assets" / "videos"
FOURCC_BY_EXT = {".mp4": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}
_BITS = 8  # frame index bits in the top band: up to 256 frames


def make_frame(index: int, size=(96, 64)) -> np.ndarray:
    """RGB frame `index`: a coloured background, a moving square, and the index in binary
    as black/white cells across the top band (read back by frame_signature)."""
    width, height = size
    if width < 2 * _BITS or height < 16:
        raise ValueError(f"size {size} too small: need width >= {2 * _BITS}, height >= 16")
    frame = np.empty((height, width, 3), np.uint8)
    # Channels deliberately unequal, so a BGR/RGB swap shows.
    frame[:] = (200, 90 + (index * 7) % 60, 30 + (index * 11) % 40)
    band, cell = max(4, height // 8), width // _BITS
    side = max(4, height // 4)
    x = (index * 5) % (width - side)
    y = band + (index * 3) % (height - band - side)
    frame[y:y + side, x:x + side] = (20, 220, 250)
    for bit in range(_BITS):
        frame[:band, bit * cell:(bit + 1) * cell] = 255 if (index >> bit) & 1 else 0
    return frame


def frame_signature(frame: np.ndarray) -> int:
    """The frame index written by make_frame, robust to lossy codecs (reads cell centres)."""
    height, width = frame.shape[:2]
    band, cell = max(4, height // 8), width // _BITS
    grey = frame[:band].mean(axis=2)
    index = 0
    rows = slice(band // 4, band - band // 4)
    for bit in range(_BITS):
        centre = grey[rows, bit * cell + cell // 4:(bit + 1) * cell - cell // 4]
        index |= int(centre.mean() > 127) << bit
    return index


def write_video(path, frames=12, size=(96, 64), fps=10.0, fourcc=None) -> np.ndarray:
    """Write `frames` frames of make_frame with cv2.VideoWriter; returns them, RGB [N, H, W, 3]."""
    path = Path(path)
    if frames > 2**_BITS:
        raise ValueError(f"at most {2**_BITS} frames can carry their index")
    fourcc = fourcc or FOURCC_BY_EXT[path.suffix.lower()]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, tuple(size))
    if not writer.isOpened():
        raise RuntimeError(f"this OpenCV cannot write {fourcc} into {path.name}")
    written = np.stack([make_frame(i, size) for i in range(frames)]) if frames else \
        np.zeros((0, size[1], size[0], 3), np.uint8)
    for frame in written:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return written


def ffmpeg_exe() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def write_ffmpeg_video(path, frames: int, codec: list[str], setpts: str | None = None, size=(96, 64),
                       fps: int = 10) -> None:
    """Encode make_frame frames with the imageio-ffmpeg binary (codecs OpenCV cannot write:
    H.264 with B-frames, VP9, MPEG-4 with B-frames). `setpts` rewrites the timestamps (gaps,
    variable frame rate), kept as they are in the file (-fps_mode passthrough)."""
    if frames > 2**_BITS:
        raise ValueError(f"at most {2**_BITS} frames can carry their index")
    raw = b"".join(make_frame(i, size).tobytes() for i in range(frames))
    retime = ["-vf", f"setpts='{setpts}'", "-fps_mode", "passthrough"] if setpts else []
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
           "-r", str(fps), "-i", "-", *retime, *codec, str(path)]
    subprocess.run(cmd, input=raw, check=True, timeout=120)


def decode_sequentially(path) -> list[np.ndarray]:
    """Every frame, RGB, by a plain OpenCV loop from the start: the reference for exactness."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def write_image(path, size=(80, 60), seed=0) -> np.ndarray:
    """Write a seeded RGB image (gradient plus random rectangles); returns the array written.
    WebP is written lossless so that every format but JPEG round-trips exactly."""
    width, height = size
    rng = np.random.default_rng(seed)
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    image[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    image[..., 2] = 60
    for _ in range(4):
        x, y = rng.integers(0, width - 8), rng.integers(0, height - 8)
        image[y:y + 8, x:x + 8] = rng.integers(0, 256, 3, dtype=np.uint8)
    params = [cv2.IMWRITE_WEBP_QUALITY, 101] if Path(path).suffix.lower() == ".webp" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), params):
        raise RuntimeError(f"this OpenCV cannot write {path}")
    return image


def write_png_bomb(path, width: int = 30000, height: int = 30000) -> Path:
    """A valid 1-bit black PNG of width x height: about 110 KB on disk for 30000x30000, 900
    million pixels once decoded (the probe's file)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    path = Path(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def write_world_clip(path, frames: int) -> Path:
    """The first `frames` frames of gradio's world.mp4 (480x270), re-encoded as an MJPG avi: real
    footage, short enough for a model run in a test."""
    cap = cv2.VideoCapture(str(GRADIO_VIDEOS / "world.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (480, 270))
    for _ in range(frames):
        ok, frame = cap.read()
        assert ok, "world.mp4 decodes short"
        writer.write(frame)
    writer.release()
    cap.release()
    return Path(path)
