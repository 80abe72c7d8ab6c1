import hashlib
import shutil
import threading

import cv2
import numpy as np
import pytest
from PIL import Image

from app.media import files as media
from app.media.files import FrameCache, FrameReader, MediaError, list_media_files, media_kind, probe
from tests.helpers.media_fixtures import frame_signature, write_image, write_video

IMAGE_FORMATS = [".png", ".jpg", ".webp", ".bmp", ".tiff"]
VIDEO_FORMATS = [".mp4", ".mov", ".avi", ".mkv", ".webm"]


def sha256_of(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_all(reader, n):
    return [reader.read(i) for i in range(n)]


@pytest.fixture(scope="module")
def clip40(tmp_path_factory):
    """A 40-frame mp4 and its frames decoded sequentially by a fresh reader."""
    path = tmp_path_factory.mktemp("clip") / "clip40.mp4"
    write_video(path, frames=40, size=(64, 48))
    reader = FrameReader(path, "video", frames=40)
    frames = read_all(reader, 40)
    reader.close()
    return path, frames


# --- kinds, images -----------------------------------------------------------------------

def test_media_kind():
    assert media_kind("a/b.PNG") == "image"
    assert media_kind("clip.Mkv") == "video"
    for name in ("anim.gif", "notes.txt", "noext"):
        with pytest.raises(MediaError, match=name) as info:
            media_kind(name)
        assert "unsupported extension" in str(info.value)
        assert ".png" in str(info.value) and ".mp4" in str(info.value)


@pytest.mark.parametrize("ext", IMAGE_FORMATS)
def test_probe_image(tmp_path, ext):
    path = tmp_path / f"img{ext}"
    write_image(path, size=(80, 60))
    info = probe(path)
    assert (info.kind, info.width, info.height, info.frames, info.fps) == ("image", 80, 60, 1, None)
    assert info.sha256 == sha256_of(path) == probe(path).sha256


@pytest.mark.parametrize("ext", [".png", ".webp", ".bmp", ".tiff", ".jpg"])
def test_image_pixels_rgb(tmp_path, ext):
    path = tmp_path / f"img{ext}"
    written = write_image(path, seed=3)
    frame = FrameReader(path, "image").read(0)
    assert frame.dtype == np.uint8 and frame.shape == (60, 80, 3) and frame.flags.c_contiguous
    if ext == ".jpg":  # lossy, but a BGR/RGB swap would be far off
        assert np.abs(frame.astype(int) - written).mean() < 8
    else:
        assert np.array_equal(frame, written)


@pytest.mark.parametrize("array", [np.full((6, 9), 77, np.uint8),
                                   np.full((6, 9), 60000, np.uint16),
                                   np.full((6, 9, 4), 200, np.uint8)],
                         ids=["grey", "16bit", "rgba"])
def test_image_becomes_8bit_rgb(tmp_path, array):
    path = tmp_path / "odd.png"
    cv2.imwrite(str(path), array)
    frame = FrameReader(path, "image").read(0)
    assert frame.shape == (6, 9, 3) and frame.dtype == np.uint8


def test_exif_orientation_consistent(tmp_path):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.new("RGB", (40, 20), (255, 0, 0)).save(path, exif=exif)
    info = probe(path)
    assert (info.width, info.height) == (20, 40)  # as displayed
    assert FrameReader(path, "image").read(0).shape == (info.height, info.width, 3)


def test_image_reader_index_range(tmp_path):
    path = tmp_path / "one.png"
    write_image(path)
    with pytest.raises(IndexError, match="one.png"):
        FrameReader(path, "image").read(1)


# --- videos ------------------------------------------------------------------------------

@pytest.mark.parametrize("ext", VIDEO_FORMATS)
def test_probe_video(tmp_path, ext):
    path = tmp_path / f"clip{ext}"
    written = write_video(path, frames=12, size=(96, 64), fps=10.0)
    info = probe(path)
    assert (info.kind, info.width, info.height, info.frames) == ("video", 96, 64, 12)
    assert info.fps == pytest.approx(10.0)
    assert info.sha256 == sha256_of(path)
    frames = read_all(FrameReader(path, "video", info.frames), info.frames)
    assert [frame_signature(f) for f in frames] == list(range(12))
    # Lossy, but close; a BGR/RGB swap would be off by ~100.
    assert np.abs(np.stack(frames).astype(int) - written).mean() < 12


def test_same_family_extensions_accepted(tmp_path):
    write_video(tmp_path / "a.mp4", frames=3)
    write_video(tmp_path / "b.mkv", frames=3)
    shutil.copy(tmp_path / "a.mp4", tmp_path / "a.mov")
    shutil.copy(tmp_path / "b.mkv", tmp_path / "b.webm")
    assert probe(tmp_path / "a.mov").frames == 3
    assert probe(tmp_path / "b.webm").frames == 3


def test_truncated_video_refused_unless_kept(tmp_path):
    path = tmp_path / "cut.avi"
    write_video(path, frames=20)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    metadata_count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    cap.release()
    assert metadata_count == 20  # the premise: the header still claims all of them
    with pytest.raises(MediaError, match=r"cut.avi decodes to only \d+ of the 20 frames .* keep_partial=True"):
        probe(path)
    info = probe(path, keep_partial=True)
    assert 0 < info.frames < 20 and info.declared_frames == 20
    reader = FrameReader(path, "video", info.frames)
    assert frame_signature(reader.read(info.frames - 1)) == info.frames - 1
    with pytest.raises(IndexError):
        reader.read(info.frames)


# --- bad input ---------------------------------------------------------------------------

def _png_bytes():
    return cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


def _jpeg_bytes():
    return cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()


def _truncated_png():
    data = cv2.imencode(".png", np.random.default_rng(0).integers(0, 256, (60, 80, 3), np.uint8))[1]
    return data.tobytes()[: len(data) // 2]


BAD_INPUTS = [
    ("empty.png", b"", "empty (0 bytes)"),
    ("anim.gif", b"GIF89a....", "unsupported extension"),
    ("notes.txt", b"hello", "unsupported extension"),
    ("notes.mp4", b"this is not a video\n", "contains text"),
    ("image.mp4", _png_bytes(),
     "is named as a video but contains PNG image data; rename it to .png"),
    ("photo.png", _jpeg_bytes(),
     "is named as a PNG image but contains JPEG image data; rename it to .jpg"),
    ("clip.mp4", b"RIFF\x00\x10\x00\x00AVI LIST" + bytes(40),
     "is named as an MP4/MOV video but contains AVI video data; rename it to .avi"),
    ("phone.jpg", b"\x00\x00\x00\x18ftypheic" + bytes(40), "HEIC/AVIF image data"),
    ("gif.png", b"GIF89a" + bytes(40), "GIF image data, which is not supported"),
    ("half.png", _truncated_png(), "could not be decoded"),
    ("noise.avi", np.random.default_rng(1).bytes(4000), "not a valid AVI video"),
    ("headonly.avi", b"RIFF\xa0\x0f\x00\x00AVI " + np.random.default_rng(2).bytes(4000),
     "could not be opened"),
]


@pytest.mark.parametrize("name,data,phrase", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input(tmp_path, name, data, phrase):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(MediaError) as info:
        probe(path)
    message = str(info.value)
    assert name in message and phrase in message
    assert isinstance(info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(MediaError, match="gone.mp4 does not exist"):
        probe(tmp_path / "gone.mp4")


def test_folder_is_not_a_file(tmp_path):
    (tmp_path / "dir.mp4").mkdir()
    with pytest.raises(MediaError, match="dir.mp4 is a folder"):
        probe(tmp_path / "dir.mp4")


def test_video_without_frames(tmp_path):
    write_video(tmp_path / "zero.avi", frames=0)  # a valid AVI header, no frames
    with pytest.raises(MediaError, match="zero.avi opens but has no decodable frames"):
        probe(tmp_path / "zero.avi")
    write_video(tmp_path / "zero.mp4", frames=0)  # only an ftyp box: FFmpeg refuses it
    with pytest.raises(MediaError, match="zero.mp4 could not be opened"):
        probe(tmp_path / "zero.mp4")


class ResizingCapture:
    """Wraps a real capture; frames from the third on come out at half size.

    OpenCV's FFmpeg backend rescales a stream whose frame size changes to its first size,
    so a real file cannot reach this check here; other backends or versions may."""

    def __init__(self, cap):
        self.cap, self.n = cap, 0

    def grab(self):
        self.n += 1
        return self.cap.grab()

    def retrieve(self, *args):
        ok, frame = self.cap.retrieve()
        return ok, frame if self.n < 3 else frame[::2, ::2].copy()

    def __getattr__(self, name):
        return getattr(self.cap, name)


def test_frame_size_change_is_an_error(tmp_path, monkeypatch):
    path = tmp_path / "resize.avi"
    write_video(path, frames=6)
    real_open = media._open_capture
    monkeypatch.setattr(media, "_open_capture", lambda p: ResizingCapture(real_open(p)))
    with pytest.raises(MediaError, match="resize.avi changes frame size at frame 2"):
        probe(path)
    reader = FrameReader(path, "video")
    read_all(reader, 2)
    with pytest.raises(MediaError, match="changes frame size"):
        reader.read(2)


# --- FrameReader -------------------------------------------------------------------------

@pytest.mark.parametrize("window", [64, 4])
def test_reader_random_order_is_exact(clip40, monkeypatch, window):
    path, sequential = clip40
    monkeypatch.setattr(media, "SEEK_WINDOW", window)  # 4: far forward jumps seek too
    reader = FrameReader(path, "video", frames=40)
    order = np.random.default_rng(0).permutation(40).tolist() + [5, 5, 39, 0, 38, 1]
    for i in order:
        frame = reader.read(i)
        assert np.array_equal(frame, sequential[i]), f"frame {i}"
        assert frame.flags.c_contiguous and frame.dtype == np.uint8
    reader.close()
    assert [frame_signature(f) for f in sequential] == list(range(40))


def test_seeks_only_backwards_or_far_ahead(clip40, monkeypatch):
    path, sequential = clip40
    monkeypatch.setattr(media, "SEEK_WINDOW", 8)
    seeks = []
    real_seek = FrameReader._seek
    monkeypatch.setattr(FrameReader, "_seek",
                        lambda self, i: seeks.append((i, real_seek(self, i))) or seeks[-1][1])
    reader = FrameReader(path, "video", frames=40)
    for i in (0, 3, 3, 10, 17):  # each within 8 of the decoder's position: grab forward
        reader.read(i)
    assert seeks == []
    for i in (2, 30):  # backwards, then 27 ahead
        assert np.array_equal(reader.read(i), sequential[i])
    assert seeks == [(2, True), (30, True)]  # and verified, so no decode from frame 0


def test_reader_falls_back_when_seek_unverifiable(clip40, monkeypatch):
    path, sequential = clip40
    monkeypatch.setattr(FrameReader, "_seek", lambda self, i: False)
    reader = FrameReader(path, "video", frames=40)
    for i in (30, 2, 17, 0, 39):
        assert np.array_equal(reader.read(i), sequential[i])


class OffByOneSeek:
    """A capture whose seeks land one frame late, as some demuxers do near keyframes."""

    def __init__(self, cap):
        self.cap = cap

    def set(self, prop, value):
        return self.cap.set(prop, value + 1 if prop == cv2.CAP_PROP_POS_FRAMES else value)

    def __getattr__(self, name):
        return getattr(self.cap, name)


def test_reader_detects_wrong_seek(clip40, monkeypatch):
    path, sequential = clip40
    real_open = media._open_capture
    monkeypatch.setattr(media, "_open_capture", lambda p: OffByOneSeek(real_open(p)))
    reader = FrameReader(path, "video", frames=40)
    for i in (30, 2, 17, 5):
        assert np.array_equal(reader.read(i), sequential[i]), f"frame {i}"


def test_reader_index_errors(clip40):
    path, _ = clip40
    reader = FrameReader(path, "video", frames=40)
    for bad in (40, -1):
        with pytest.raises(IndexError, match=r"clip40.mp4, which has 40 frame\(s\): use 0..39"):
            reader.read(bad)
    unknown = FrameReader(path, "video")  # count learned when the decoder runs out
    assert frame_signature(unknown.read(39)) == 39
    with pytest.raises(IndexError, match="out of range"):
        unknown.read(40)
    assert unknown.frames == 40
    assert frame_signature(unknown.read(7)) == 7  # still usable


def test_reader_reopens_after_close(clip40):
    path, sequential = clip40
    reader = FrameReader(path, "video", frames=40)
    reader.read(10)
    reader.close()
    assert np.array_equal(reader.read(11), sequential[11])


def test_reader_is_thread_safe(clip40):
    path, sequential = clip40
    reader = FrameReader(path, "video", frames=40)
    errors = []

    def worker(seed):
        for i in np.random.default_rng(seed).integers(0, 40, 25).tolist():
            if not np.array_equal(reader.read(i), sequential[i]):
                errors.append(i)

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# --- FrameCache --------------------------------------------------------------------------

def test_cache_respects_max_bytes(clip40):
    path, sequential = clip40
    frame_bytes = sequential[0].nbytes
    cache = FrameCache(max_bytes=5 * frame_bytes + 100)
    for i in list(range(40)) + [3, 39, 0]:
        frame = cache.frame(path, "video", i)
        assert np.array_equal(frame, sequential[i])
        assert 0 < cache.nbytes <= cache.max_bytes
    assert cache.nbytes == 5 * frame_bytes
    tiny = FrameCache(max_bytes=frame_bytes - 1)  # a frame too big to keep is still returned
    assert np.array_equal(tiny.frame(path, "video", 4), sequential[4]) and tiny.nbytes == 0
    cache.clear()
    assert cache.nbytes == 0


def test_cache_returns_read_only(clip40):
    path, sequential = clip40
    cache = FrameCache()
    for _ in range(2):  # miss, then hit
        frame = cache.frame(path, "video", 6)
        assert not frame.flags.writeable
        with pytest.raises(ValueError):
            frame[0, 0, 0] = 1
        with pytest.raises(ValueError):
            frame.flags.writeable = True
    assert np.array_equal(frame, sequential[6])


def test_cache_closes_readers_beyond_max(tmp_path, monkeypatch):
    paths = []
    for name in ("a.avi", "b.avi", "c.avi"):
        write_video(tmp_path / name, frames=3, size=(32, 16))
        paths.append(tmp_path / name)
    closed = []
    real_close = FrameReader.close
    monkeypatch.setattr(FrameReader, "close",
                        lambda self: closed.append(self.path.name) or real_close(self))
    cache = FrameCache(max_readers=2)
    cache.frame(paths[0], "video", 0)
    cache.frame(paths[1], "video", 0)
    cache.frame(paths[0], "video", 1)  # a is now more recent than b
    assert closed == []
    cache.frame(paths[2], "video", 0)
    assert closed == ["b.avi"]
    assert frame_signature(cache.frame(paths[1], "video", 2)) == 2  # reopened on demand
    assert closed == ["b.avi", "a.avi"]
    cache.clear()
    assert sorted(closed[2:]) == ["b.avi", "c.avi"]


def test_cache_is_thread_safe(clip40):
    path, sequential = clip40
    cache = FrameCache(max_bytes=7 * sequential[0].nbytes, max_readers=1)
    errors = []

    def worker(seed):
        for i in np.random.default_rng(seed).integers(0, 40, 30).tolist():
            if not np.array_equal(cache.frame(path, "video", i), sequential[i]):
                errors.append(i)
            if cache.nbytes > cache.max_bytes:
                errors.append("over budget")

    threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache.nbytes == sum(a.nbytes for a in cache._frames.values())


def test_cache_images(tmp_path):
    path = tmp_path / "pic.png"
    written = write_image(path)
    cache = FrameCache()
    assert np.array_equal(cache.frame(path, "image", 0), written)
    with pytest.raises(IndexError):
        cache.frame(path, "image", 1)


# --- list_media_files --------------------------------------------------------------------

def test_list_media_files(tmp_path):
    for name in ("b.png", "a.JPG", "c.mp4", "notes.txt", "._c.mp4", "anim.gif"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "sub.png" / "inner.png").write_bytes(b"x")
    assert [p.name for p in list_media_files(tmp_path)] == ["a.JPG", "b.png", "c.mp4"]
    assert list_media_files(tmp_path / "b.png") == [tmp_path / "b.png"]


def test_list_media_files_errors(tmp_path):
    with pytest.raises(MediaError, match="has no supported media files"):
        list_media_files(tmp_path)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(MediaError, match=f"folder {tmp_path.name} has no supported media"):
        list_media_files(tmp_path)
    with pytest.raises(MediaError, match="nowhere does not exist"):
        list_media_files(tmp_path / "nowhere")
    with pytest.raises(MediaError, match="readme.txt has an unsupported extension"):
        list_media_files(tmp_path / "readme.txt")
