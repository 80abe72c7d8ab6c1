"""Sizes, counts and indices from files and callers are checked before anything is decoded or
allocated; refusals name the limit and how to raise it, and nothing is imported."""
import time

import cv2
import numpy as np
import pytest

from app.masks.png import MaskFileError, read_mask_png
from app.media import files as media
from app.media.files import MediaError, probe
from app.media.limits import LimitError
from app.studio.studio import Studio
from tests.helpers.media_fixtures import GRADIO_VIDEOS, write_image, write_png_bomb, write_video


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    return write_png_bomb(tmp_path_factory.mktemp("bomb") / "bomb.png")  # ~110 KB, 30000x30000


@pytest.fixture
def studio(tmp_path):
    s = Studio(tmp_path / "p.sqlite")
    yield s
    s.close()


def nothing_imported(studio):
    return studio.store.list_media() == [] and not any(studio.store.media_dir.glob("*"))


class CountingCapture:
    """A real capture that counts the frames decoded through it."""

    def __init__(self, cap, log):
        self.cap, self.log = cap, log

    def grab(self):
        self.log.append("grab")
        return self.cap.grab()

    def __getattr__(self, name):
        return getattr(self.cap, name)


@pytest.fixture
def grabs(monkeypatch):
    log = []
    real_open = media._open_capture
    monkeypatch.setattr(media, "_open_capture", lambda p: CountingCapture(real_open(p), log))
    return log


def test_an_image_declaring_30000x30000_is_refused_from_its_header(bomb, studio):
    assert bomb.stat().st_size < 200_000
    start = time.perf_counter()
    with pytest.raises(LimitError) as info:
        studio.add_media(bomb)
    assert time.perf_counter() - start < 1.0  # the header only: decoding would take GBs and seconds
    message = str(info.value)
    for part in ("bomb.png", "30000x30000", "64,000,000", "FLOWLABEL_MAX_PIXELS=900000000", "nothing was"):
        assert part in message
    assert nothing_imported(studio)


def test_the_pixel_limit_is_set_by_environment(tmp_path, studio, monkeypatch):
    write_image(tmp_path / "small.png", size=(80, 60))
    monkeypatch.setenv("FLOWLABEL_MAX_PIXELS", "4000")
    with pytest.raises(LimitError, match=r"80x60 = 4,800 pixels, over the limit of 4,000 pixels"):
        studio.add_media(tmp_path / "small.png")
    assert nothing_imported(studio)
    monkeypatch.setenv("FLOWLABEL_MAX_PIXELS", "4800")
    assert studio.add_media(tmp_path / "small.png")[0]["width"] == 80
    monkeypatch.setenv("FLOWLABEL_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="FLOWLABEL_MAX_PIXELS='lots' is not a positive whole number"):
        probe(tmp_path / "small.png")


def test_a_mask_declaring_30000x30000_is_refused_before_decoding(bomb, monkeypatch):
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a))
    with pytest.raises(LimitError, match=r"declares a mask of 30000x30000 .* FLOWLABEL_MAX_PIXELS"):
        read_mask_png(bomb)
    with pytest.raises(MaskFileError, match=r"bomb.png is 30000x30000 but the frame is 48x32"):
        monkeypatch.setenv("FLOWLABEL_MAX_PIXELS", str(10**9))
        read_mask_png(bomb, size=(48, 32))
    assert decoded == []


def test_a_video_declaring_too_many_pixels_is_refused_before_decoding(tmp_path, studio, monkeypatch, grabs):
    write_video(tmp_path / "v.avi", frames=5, size=(96, 64))
    monkeypatch.setenv("FLOWLABEL_MAX_PIXELS", "5000")
    with pytest.raises(LimitError, match=r"v.avi declares a video frame of 96x64 = 6,144 pixels.*"
                                         r"FLOWLABEL_MAX_PIXELS=6144"):
        studio.add_media(tmp_path / "v.avi")
    assert grabs == [] and nothing_imported(studio)


def test_a_video_declaring_a_billion_frames_is_refused_before_decoding(tmp_path, studio, grabs):
    write_video(tmp_path / "liar.avi", frames=12)
    data = bytearray((tmp_path / "liar.avi").read_bytes())
    strh = data.find(b"strh")
    data[strh + 40:strh + 44] = (10**9).to_bytes(4, "little")  # the stream header's dwLength
    data[48:52] = (10**9).to_bytes(4, "little")  # the main header's dwTotalFrames
    (tmp_path / "liar.avi").write_bytes(data)
    with pytest.raises(LimitError, match=r"liar.avi declares 1,000,000,000 frames, over the limit of "
                                         r"200,000 frames \(FLOWLABEL_MAX_FRAMES\)"):
        studio.add_media(tmp_path / "liar.avi")
    assert grabs == [] and nothing_imported(studio)


def test_decoding_stops_at_the_frame_limit(tmp_path, monkeypatch, grabs):
    """A container that declares no count cannot make the import decode without bound."""
    write_video(tmp_path / "v.avi", frames=12)
    monkeypatch.setenv("FLOWLABEL_MAX_FRAMES", "8")
    real_declared = media._declared_frames
    monkeypatch.setattr(media, "_declared_frames", lambda cap: None)
    with pytest.raises(LimitError, match="v.avi decodes to more than 8 frames"):
        probe(tmp_path / "v.avi")
    assert len(grabs) == 9
    monkeypatch.setattr(media, "_declared_frames", real_declared)
    with pytest.raises(LimitError, match="v.avi declares 12 frames, over the limit of 8"):
        probe(tmp_path / "v.avi")


@pytest.mark.parametrize("frame, phrase", [(10**9, "frame 1000000000 is outside"), (-1, "frame -1 is outside"),
                                           (1e9, "frame 1000000000 is outside"), (1.5, "whole number"),
                                           ("x", "whole number"), (True, "whole number"),
                                           (float("nan"), "whole number"), (float("inf"), "whole number")])
def test_frame_indices_are_checked_before_decoding(tmp_path, studio, frame, phrase, grabs):
    write_video(tmp_path / "v.avi", frames=6)
    media_id = studio.add_media(tmp_path / "v.avi")[0]["id"]
    grabs.clear()
    with pytest.raises(LimitError, match=phrase):
        studio.frame(media_id, frame)
    assert grabs == []
    assert studio.frame(media_id, 5.0).shape == (64, 96, 3)  # a whole float is a frame number


# -- truncated videos ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def half_world(tmp_path_factory):
    """world.mp4 (901 frames) cut at half its bytes, as an interrupted copy leaves it."""
    data = (GRADIO_VIDEOS / "world.mp4").read_bytes()
    path = tmp_path_factory.mktemp("cut") / "world.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_video_is_refused_with_what_to_do(half_world, studio):
    with pytest.raises(MediaError) as info:
        studio.add_media(half_world)
    message = str(info.value)
    assert "world.mp4 decodes to only" in message and "of the 901 frames its container declares" in message
    assert "truncated" in message and "keep_partial=True" in message and "Keep what decodes" in message
    assert nothing_imported(studio)


def test_keep_partial_keeps_what_decodes_exactly(half_world, studio):
    row = studio.add_media(half_world, keep_partial=True)[0]
    assert 0 < row["frames"] < 901 and (row["width"], row["height"]) == (480, 270)
    reader = media.FrameReader(half_world, "video", row["frames"])
    last = row["frames"] - 1
    sequential = {i: reader.read(i) for i in (0, 5, last // 2, last)}  # in order: no seeks
    for i in (last, 0, last // 2, 5):
        assert np.array_equal(studio.frame(row["id"], i), sequential[i]), f"frame {i}"
    with pytest.raises(LimitError, match=f"frame {last + 1} is outside"):
        studio.frame(row["id"], last + 1)


def test_variable_frame_rate_mkv_is_not_mistaken_for_truncated(tmp_path):
    """Matroska declares duration x fps, far above the real count of a VFR file."""
    from tests.helpers.media_fixtures import write_ffmpeg_video
    write_ffmpeg_video(tmp_path / "vfr.mkv", 30, ["-c:v", "libx264", "-pix_fmt", "yuv420p"], "(N+N*N/10)/(10*TB)")
    cap = cv2.VideoCapture(str(tmp_path / "vfr.mkv"), cv2.CAP_FFMPEG)
    declared = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    cap.release()
    assert declared > 60  # the premise
    assert probe(tmp_path / "vfr.mkv").frames == 30


@pytest.mark.parametrize("name, codec, setpts", [
    ("vfr.mkv", ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "12"], "(N+N*N/30)/(10*TB)"),
    ("vp9.webm", ["-c:v", "libvpx-vp9", "-g", "12", "-b:v", "200k"], None),
    ("h264.avi", ["-c:v", "libx264", "-bf", "3", "-g", "12", "-pix_fmt", "yuv420p"], None)])
def test_cut_matroska_webm_and_avi_are_refused_whole_ones_are_not(tmp_path, name, codec, setpts):
    from tests.helpers.media_fixtures import write_ffmpeg_video
    write_ffmpeg_video(tmp_path / name, 60, codec, setpts)
    assert probe(tmp_path / name).frames == 60
    data = (tmp_path / name).read_bytes()
    cut = tmp_path / f"cut-{name}"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match=rf"cut-{name} decodes to only \d+ of the \d+ frames"):
        probe(cut)
    assert 0 < probe(cut, keep_partial=True).frames < 60
