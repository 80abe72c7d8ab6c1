"""Media files: validate them, probe them, and decode their frames on demand.

Frames are always uint8 RGB arrays of shape [H, W, 3], C-contiguous.

Orientation: images are decoded with cv2.IMREAD_COLOR, which applies the EXIF orientation
tag, so sizes and pixels are what a photo viewer shows. probe() and FrameReader share
_decode_image(), so they always agree. Videos go through OpenCV's FFmpeg backend, which
applies rotation metadata itself; sizes come from decoded frames, never from the container.

Untrusted sizes: an image's declared size (its header, read by Pillow without decoding) and a
video's declared frame size and frame count are checked against app.media.limits before decoding.

Exact frames: importing a video decodes it once in sequence and records its frame index
(app.media.frame_index). FrameReader seeks by timestamp, identifies where it landed by timestamp and
checks the returned pixels against the index, falling back to decoding forward from frame 0, so
random access always returns what sequential decoding gives.
"""
from __future__ import annotations

import hashlib
import math
import operator
import re
import struct
import threading
import unicodedata
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin

from app.errors import UserError
from app.media import limits, mp4
from app.media.frame_index import FrameIndex, checksum

IMAGE_EXTS = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff"}
VIDEO_EXTS = {".mp4", ".mov", ".avi", ".webm", ".mkv"}

# A read this close ahead of the decoder grabs forward; further, or backwards, seeks.
SEEK_WINDOW = 64

# Format sniffed from the first bytes -> (what to call it, extensions it may carry).
_FORMATS = {
    "png": ("PNG image", (".png",)),
    "jpeg": ("JPEG image", (".jpg", ".jpeg")),
    "webp": ("WebP image", (".webp",)),
    "bmp": ("BMP image", (".bmp",)),
    "tiff": ("TIFF image", (".tif", ".tiff")),
    "gif": ("GIF image", ()),
    "heif": ("HEIC/AVIF image", ()),
    "avi": ("AVI video", (".avi",)),
    "isobmff": ("MP4/MOV video", (".mp4", ".mov")),
    "matroska": ("Matroska/WebM video", (".mkv", ".webm")),
}
_EXT_FORMAT = {ext: fmt for fmt, (_, exts) in _FORMATS.items() for ext in exts}


def media_name(name) -> str:
    """The name a media is shown and exported under, from an upload (page, API, script): its
    last path part only, without control characters; "media" when nothing is left."""
    name = re.split(r"[\\/]", str(name))[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cs")).strip()
    return "media" if name in ("", ".", "..") else name


class MediaError(UserError, ValueError):
    """Bad input. str(e) names the file, the problem, and what to do."""


# Decoding this much short of the container's frame count means the file was cut.
TRUNCATION_SLACK = 0.02


@dataclass(frozen=True)
class MediaInfo:
    kind: str  # "image" or "video"
    width: int
    height: int
    frames: int  # 1 for images; frames actually decoded for videos
    fps: float | None  # None for images, or when the container gives none
    sha256: str
    index: FrameIndex | None = None  # videos: what sequential decoding gives at each frame
    declared_frames: int | None = None  # videos: what the container claims, when it does


def _supported() -> str:
    return (f"images {', '.join(sorted(IMAGE_EXTS))}; "
            f"videos {', '.join(sorted(VIDEO_EXTS))}")


def media_kind(path) -> str:
    path = Path(path)
    ext = path.suffix.lower()
    if ext in IMAGE_EXTS:
        return "image"
    if ext in VIDEO_EXTS:
        return "video"
    raise MediaError(f"{path.name} has an unsupported extension '{ext or '(none)'}'; "
                     f"supported are {_supported()}; convert it to one of these")


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"AVI "):
        return "webp" if head[8:12] == b"WEBP" else "avi"
    # "BM" alone is too weak (a text file may start with it): check the DIB header size too.
    dib_header_size = int.from_bytes(head[14:18], "little")
    if head[:2] == b"BM" and dib_header_size in (12, 40, 52, 56, 64, 108, 124):
        return "bmp"
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "tiff"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"avif", b"avis"):
        return "heif"  # ISO BMFF too, but stills: phone photos, which must not pass as .mp4
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"):
        return "isobmff"
    return None


def _looks_like_text(head: bytes) -> bool:
    return bool(head) and not any(b < 9 or 13 < b < 32 or b == 127 for b in head)


def _check_file(path) -> tuple[Path, str]:
    """Existence, extension, size and magic bytes; returns (path, kind)."""
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path.name} does not exist (looked for {path}); check the path")
    if not path.is_file():
        raise MediaError(f"{path.name} is a folder, not a media file; "
                         "pass a file, or list the folder with list_media_files()")
    kind = media_kind(path)
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name} is empty (0 bytes); the upload or copy probably "
                         "failed; copy the file again")
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise MediaError(f"{path.name} cannot be read ({e.strerror}); check its permissions") from e
    ext = path.suffix.lower()
    fmt = _sniff(head)
    if fmt is None:
        if _looks_like_text(head):
            raise MediaError(f"{path.name} contains text, not {kind} data; "
                             f"it is not a real {ext} file; export the {kind} again")
        label = _FORMATS[_EXT_FORMAT[ext]][0]
        raise MediaError(f"{path.name} is not a valid {label} file (unrecognised first bytes "
                         f"{head[:12].hex(' ')}); it is corrupt or not a {kind}; export it again")
    label, exts = _FORMATS[fmt]
    if not exts:
        raise MediaError(f"{path.name} contains {label} data, which is not supported; "
                         f"convert it to one of: {_supported()}")
    if ext not in exts:
        real_kind = "video" if exts[0] in VIDEO_EXTS else "image"
        named = _FORMATS[_EXT_FORMAT[ext]][0] if real_kind == kind else kind
        named = ("an " if named[0] in "AEIMOaeio" else "a ") + named
        raise MediaError(f"{path.name} is named as {named} but contains {label} data; "
                         f"rename it to {exts[0]}")
    return path, kind


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()  # streams in chunks


# Pillow's header parsers, used without Image.open, whose own bomb check would refuse large
# images with its message and its limit instead of this project's.
_HEADER_READERS = {"png": PngImagePlugin.PngImageFile, "jpeg": JpegImagePlugin.JpegImageFile,
                   "webp": WebPImagePlugin.WebPImageFile, "bmp": BmpImagePlugin.BmpImageFile,
                   "tiff": TiffImagePlugin.TiffImageFile}


def check_image_size(path) -> None:
    """Refuse an image whose header declares too many pixels, before anything is decoded."""
    path = Path(path)
    with open(path, "rb") as f:
        reader = _HEADER_READERS.get(_sniff(f.read(32)))
    try:
        if reader is None:
            raise ValueError("not a PNG, JPEG, WebP, BMP or TIFF image")
        with reader(str(path)) as im:  # reads the header only
            width, height = im.size
    except (OSError, EOFError, ValueError, SyntaxError, KeyError, IndexError, TypeError, struct.error) as e:
        _refuse_tiff_pixel_format(path)
        raise MediaError(f"{path.name} could not be read as an image ({e}); it is corrupt or truncated; "
                         "export or copy it again") from None
    limits.check_pixels(path.name, width, height, "an image")


_TIFF_SAMPLE_FORMATS = {1: "unsigned integer", 2: "signed integer", 3: "floating-point", 5: "complex integer",
                        6: "complex floating-point"}


def _refuse_tiff_pixel_format(path: Path) -> None:
    """A valid TIFF whose samples the decoders do not read (32-bit float, say) is refused naming
    its pixel format, not as corrupt; anything else returns."""
    try:
        with open(path, "rb") as f, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a cut file warns; it is then refused as corrupt
            ifd = TiffImagePlugin.ImageFileDirectory_v2(f.read(8))
            f.seek(ifd.next)
            ifd.load(f)
    except (OSError, EOFError, ValueError, SyntaxError, KeyError, IndexError, TypeError, struct.error):
        return
    bits, sample_format = ifd.get(258, (1,)), ifd.get(339, (1,))
    if not bits or not sample_format or (sample_format[0] == 1 and bits[0] in (1, 8, 16)):
        return
    kind = _TIFF_SAMPLE_FORMATS.get(sample_format[0], f"SampleFormat {sample_format[0]}")
    raise MediaError(f"{path.name} is a TIFF of {bits[0]}-bit {kind} samples ({len(bits)} per pixel), a pixel "
                     "format FlowLabel does not read (it reads 8- and 16-bit unsigned integer images); "
                     "convert it to 8 or 16 bits per channel (e.g. PNG) and add that")


def _decode_image(path: Path) -> np.ndarray:
    check_image_size(path)
    try:
        bgr = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error:
        bgr = None
    if bgr is None:
        _refuse_tiff_pixel_format(path)
        raise MediaError(f"{path.name} could not be decoded as an image; it is corrupt or "
                         "truncated; export or copy it again")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _open_capture(path: Path):
    # FFmpeg only: other backends (image sequences, the built-in MJPEG reader) differ in
    # what they accept and how they seek.
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise MediaError(f"{path.name} could not be opened by the video decoder "
                         "(OpenCV/FFmpeg); it is corrupt, cut before its header, or uses an "
                         "unsupported codec; "
                         f"re-encode it, e.g. ffmpeg -i {path.name} -c:v libx264 out.mp4")
    return cap


def _fps(cap) -> float | None:
    fps = cap.get(cv2.CAP_PROP_FPS)
    return float(fps) if fps > 0 else None  # also rejects nan


def _no_frames(path: Path) -> MediaError:
    return MediaError(f"{path.name} opens but has no decodable frames; it is empty or "
                      "damaged; export the video again")


def _size_changed(path: Path, index: int, old, new) -> MediaError:
    return MediaError(f"{path.name} changes frame size at frame {index} ({old[1]}x{old[0]} to "
                      f"{new[1]}x{new[0]}); re-encode it at one size, e.g. ffmpeg -i "
                      f"{path.name} -vf scale={old[1]}:{old[0]} out.mp4")


def _declared_frames(cap) -> int | None:
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    return int(count) if math.isfinite(count) and count >= 1 else None


def _check_declared_size(path: Path, cap) -> None:
    width, height = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    if math.isfinite(width) and math.isfinite(height) and width >= 1 and height >= 1:
        limits.check_pixels(path.name, width, height, "a video frame")


def _scan_video(path: Path, check: bool = True) -> tuple[tuple, float | None, FrameIndex, int | None]:
    """Decode every frame once, in sequence: (frame shape, fps, frame index, declared count).
    With check, declared sizes and counts are held to the project limits first."""
    cap = _open_capture(path)
    try:
        fps, declared = _fps(cap), _declared_frames(cap)
        if check:
            _check_declared_size(path, cap)
            if declared is not None:
                limits.check_frame_count(path.name, declared)
        max_frames = limits.max_frames() if check else math.inf
        pts, crcs, shape, buf = [], [], None, None
        # Count frames that decode; container frame counts are often wrong.
        while cap.grab():
            if len(pts) >= max_frames:
                limits.check_frame_count(path.name, len(pts) + 1, decoded=True)
            ok, buf = cap.retrieve(buf)
            if not ok:
                break
            if shape is None:
                if check:
                    limits.check_pixels(path.name, buf.shape[1], buf.shape[0], "a video frame")
                shape = buf.shape
            elif buf.shape != shape:
                raise _size_changed(path, len(pts), shape, buf.shape)
            pts.append(cap.get(cv2.CAP_PROP_POS_MSEC))
            crcs.append(checksum(buf))
    finally:
        cap.release()
    if not pts:
        raise _no_frames(path)
    return shape, fps, FrameIndex(np.array(pts, np.float64), np.array(crcs, np.uint32)), declared


def _check_complete(path: Path, index: FrameIndex, declared: int | None, fps: float | None) -> None:
    """Refuse a video that decodes well short of what its container declares (a cut file)."""
    decoded = len(index)
    slack = max(2, math.ceil(declared * TRUNCATION_SLACK)) if declared else 0
    if declared is None or decoded >= declared - slack:
        return
    presented = mp4.presented_seconds(path) if fps else None
    if presented is not None:  # an edit list (a clip cut with -c copy) presents fewer frames than it holds
        declared = min(declared, round(presented * fps))
        slack = max(2, math.ceil(declared * TRUNCATION_SLACK))
        if decoded >= declared - slack:
            return
    if fps:  # Matroska/WebM declare duration x fps, approximate for variable frame rates: the
        # decoded timestamps reaching the declared duration mean nothing is missing.
        covered = float(index.pts_ms.max() - index.pts_ms.min()) + 1000.0 / fps
        if covered >= (declared - slack) * 1000.0 / fps:
            return
    raise MediaError(f"{path.name} decodes to only {decoded} of the {declared} frames its container declares; "
                     "it is probably truncated (an interrupted copy, upload or download). Copy or export it "
                     f"again; or, to keep the {decoded} frames that decode, import it with keep_partial=True "
                     "(the page's 'Keep what decodes' box, /add_media's keep_partial)")


def probe(path, keep_partial: bool = False) -> MediaInfo:
    """Check a file fully. Videos are decoded once in sequence (counting frames, building the
    frame index); one that decodes well short of its declared count is refused unless
    keep_partial, which keeps the frames that decode."""
    path, kind = _check_file(path)
    if kind == "image":
        height, width = _decode_image(path).shape[:2]
        return MediaInfo("image", width, height, 1, None, _sha256(path))
    shape, fps, index, declared = _scan_video(path)
    if not keep_partial:
        _check_complete(path, index, declared, fps)
    return MediaInfo("video", shape[1], shape[0], len(index), fps, _sha256(path), index, declared)


def build_frame_index(path) -> FrameIndex:
    """The frame index of an already imported video (projects from before indexes existed)."""
    return _scan_video(Path(path), check=False)[2]


def list_media_files(path) -> list[Path]:
    path = Path(path)
    if not path.exists():
        raise MediaError(f"{path.name or path} does not exist (looked for {path}); "
                         "check the path")
    if path.is_file():
        media_kind(path)
        return [path]
    # Dotfiles skipped: macOS "._x.mp4" sidecars carry a media extension but no media.
    files = sorted((f for f in path.iterdir() if f.is_file() and not f.name.startswith(".")
                    and f.suffix.lower() in IMAGE_EXTS | VIDEO_EXTS), key=lambda f: f.name)
    if not files:
        raise MediaError(f"folder {path.name} has no supported media files (subfolders are "
                         f"not searched); add files with these extensions: {_supported()}")
    return files


class FrameReader:
    """Random access to one media's frames, decoding on demand. Thread-safe (a lock inside).

    frames=None means the count is unknown: it is learned when the decoder runs out.
    index: the video's FrameIndex, or a function returning it (called when a seek first needs
    it, e.g. the store's, which builds and keeps one for media imported before indexes); None
    builds one from the file when a seek first needs it. Sequential reads never need it.
    close() releases the decoder; a later read() reopens it.
    """

    def __init__(self, path, kind: str, frames: int | None = None, index=None):
        if kind not in ("image", "video"):
            raise ValueError(f"kind must be 'image' or 'video', not {kind!r}")
        self.path, self.kind = Path(path), kind
        self.frames = 1 if kind == "image" else frames
        self._lock = threading.Lock()
        self._cap = None
        self._pos = 0  # index of the frame the next grab() returns
        self._grabbed = -1  # index of the frame grabbed last, still retrievable; -1 if none
        self._in_sequence = True  # the decoder got here by decoding forward from frame 0
        self._shape = None
        self._fps: float | None = None
        self._index: FrameIndex | None = index if isinstance(index, FrameIndex) else None
        self._index_source = None if isinstance(index, FrameIndex) else index

    def read(self, index: int) -> np.ndarray:
        index = operator.index(index)
        with self._lock:
            if index < 0 or (self.frames is not None and index >= self.frames):
                raise IndexError(self._range_message(index))
            if self.kind == "image":
                return _decode_image(self.path)
            if self._cap is None:
                self._open()
            bgr = self._decode(index)
            if self._index is not None and not self._index.matches(index, bgr):
                if not self._in_sequence:  # a seek decoded it differently: decode it in sequence
                    self._open()
                    self._grab_to(index)
                    bgr = self._retrieve(index)
                if not self._index.matches(index, bgr):
                    # The decoder itself now gives other pixels (an FFmpeg upgrade): what it
                    # decodes in sequence is the truth; stop trusting the old index.
                    self._index, self._index_source = None, None
            if self._shape is None:
                self._shape = bgr.shape
            elif bgr.shape != self._shape:
                raise _size_changed(self.path, index, self._shape, bgr.shape)
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def close(self):
        with self._lock:
            self._release()

    def _range_message(self, index: int) -> str:
        if self.frames is None:
            return f"frame {index} is out of range for {self.path.name}; indices start at 0"
        return (f"frame {index} is out of range for {self.path.name}, which has "
                f"{self.frames} frame(s): use 0..{self.frames - 1}")

    def _decode(self, index: int) -> np.ndarray:
        if index != self._grabbed:
            if not 0 <= index - self._pos < SEEK_WINDOW and not self._seek(index):
                self._open()  # seek failed or unverifiable: decode forward from 0
            self._grab_to(index)
        return self._retrieve(index)

    def _retrieve(self, index: int) -> np.ndarray:
        ok, bgr = self._cap.retrieve()
        if not ok:
            raise MediaError(f"{self.path.name}: frame {index} could not be decoded; the "
                             "file may be damaged; export the video again")
        return bgr

    def _release(self):
        if self._cap is not None:
            self._cap.release()
        self._cap, self._pos, self._grabbed = None, 0, -1

    def _open(self):
        self._release()
        cap = _open_capture(self.path)
        self._fps = _fps(cap)
        if not cap.grab():
            cap.release()
            raise _no_frames(self.path)
        self._cap, self._pos, self._grabbed, self._in_sequence = cap, 1, 0, True

    def _grab_to(self, index: int):
        while self._pos <= index:
            if not self._cap.grab():
                count, known = self._pos, self.frames
                self._release()
                if known is not None:
                    raise self._changed(count)
                self.frames = count
                raise IndexError(self._range_message(index))
            self._pos += 1
        self._grabbed = index

    def _changed(self, count: int) -> MediaError:
        return MediaError(f"{self.path.name} now decodes to {count} frames, not the {self.frames} it had "
                          "when imported; it changed since; import it again")

    def _frame_index(self) -> FrameIndex:
        if self._index is None:
            source, self._index_source = self._index_source, None
            found = source() if source is not None else build_frame_index(self.path)
            if self.frames is not None and len(found) != self.frames:
                raise self._changed(len(found))
            self._index, self.frames = found, len(found)
        return self._index

    def _seek(self, index: int) -> bool:
        """Seek so that a frame at or before `index` is grabbed, identified by its timestamp;
        False if that cannot be done (the caller then decodes from frame 0). The pixels are
        checked against the frame index after decoding."""
        self._grabbed = -1
        if self._fps is None or not index:
            return False
        frames = self._frame_index()
        guess = index
        for attempt in range(3):
            position = frames.seek_position(guess, self._fps)
            if position < 1 or not self._cap.set(cv2.CAP_PROP_POS_FRAMES, position) or not self._cap.grab():
                return False
            landed = frames.find(self._cap.get(cv2.CAP_PROP_POS_MSEC))
            if landed is None:
                return False
            if landed <= index:
                self._pos, self._grabbed, self._in_sequence = landed + 1, landed, False
                return True
            guess = max(0, guess - (landed - index) - 2 ** attempt)  # overshot: aim earlier
        return False


class FrameCache:
    """Bounded LRU of decoded frames shared by the whole app, keyed by (path, index).

    Bounded by bytes; at most max_readers decoders stay open (least recently used closed).
    Decoding happens outside the cache lock, so different media decode in parallel.
    """

    def __init__(self, max_bytes: int = 512 * 2**20, max_readers: int = 8):
        if max_bytes < 0 or max_readers < 1:
            raise ValueError("max_bytes must be >= 0 and max_readers >= 1")
        self.max_bytes, self.max_readers = max_bytes, max_readers
        self._lock = threading.Lock()
        self._frames: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._readers: OrderedDict[tuple[str, str], FrameReader] = OrderedDict()
        self._nbytes = 0

    def frame(self, path, kind: str, index: int, frames: int | None = None, frame_index=None) -> np.ndarray:
        """Frame `index` of a media; `frames` and `frame_index` go to its FrameReader when one
        is opened (see FrameReader)."""
        path = str(Path(path).resolve())
        key = (path, index)
        evicted = []
        with self._lock:
            array = self._frames.get(key)
            if array is not None:
                self._frames.move_to_end(key)
                return array.view()
            reader = self._readers.get((path, kind))
            if reader is None:
                reader = self._readers[(path, kind)] = FrameReader(path, kind, frames, frame_index)
                while len(self._readers) > self.max_readers:
                    evicted.append(self._readers.popitem(last=False)[1])
            self._readers.move_to_end((path, kind))
        for old in evicted:  # closed outside the lock: close() waits for a decode in progress
            old.close()
        array = reader.read(index)
        array.flags.writeable = False
        with self._lock:
            if key in self._frames:  # another thread decoded it meanwhile
                array = self._frames[key]
            elif array.nbytes <= self.max_bytes:
                self._frames[key] = array
                self._nbytes += array.nbytes
                while self._nbytes > self.max_bytes:
                    self._nbytes -= self._frames.popitem(last=False)[1].nbytes
        # A view of a read-only array cannot be made writeable again by the caller.
        return array.view()

    def clear(self):
        with self._lock:
            readers = list(self._readers.values())
            self._readers.clear()
            self._frames.clear()
            self._nbytes = 0
        for reader in readers:
            reader.close()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._nbytes
