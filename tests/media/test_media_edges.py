"""Media at the edges: pixel formats the decoders do not read, clips trimmed without
re-encoding (an edit list), uploads that fail half-written."""
import re
import subprocess

import cv2
import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image

from app.media import files as media_io
from app.media.mp4 import presented_seconds
from tests.helpers.media_fixtures import GRADIO_VIDEOS, decode_sequentially


def float_tiff_grey(path):
    Image.fromarray(np.random.default_rng(0).random((20, 30)).astype(np.float32), mode="F").save(path)


def float_tiff_rgb(path):
    assert cv2.imwrite(str(path), np.random.default_rng(0).random((20, 30, 3)).astype(np.float32))


@pytest.mark.parametrize("write, per_pixel", [(float_tiff_grey, 1), (float_tiff_rgb, 3)])
def test_a_32_bit_float_tiff_is_refused_naming_its_pixel_format(tmp_path, write, per_pixel):
    path = tmp_path / "depth.tif"
    write(path)
    with pytest.raises(media_io.MediaError) as refused:
        media_io.probe(path)
    message = str(refused.value)
    assert f"depth.tif is a TIFF of 32-bit floating-point samples ({per_pixel} per pixel)" in message
    assert "pixel format FlowLabel does not read" in message and "corrupt" not in message


def test_a_cut_tiff_is_still_called_corrupt(tmp_path):
    path = tmp_path / "cut.tif"
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(media_io.MediaError, match="corrupt or truncated"):
        media_io.probe(path)


def ffmpeg(*args) -> str:
    done = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "info", "-y", *map(str, args)],
                          capture_output=True, text=True, check=True)
    return done.stderr


def presented_by_ffmpeg(path) -> int:
    """How many frames ffmpeg (a player's decoder) presents: its own count after decoding."""
    return int(re.findall(r"frame=\s*(\d+)", ffmpeg("-i", path, "-map", "0:v:0", "-f", "null", "-"))[-1])


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory):
    """world.mp4 cut at 1.3 s for 2 s without re-encoding: an edit list hides the frames between
    the keyframe before the cut and the cut."""
    path = tmp_path_factory.mktemp("trim") / "trimmed.mp4"
    ffmpeg("-ss", 1.3, "-i", GRADIO_VIDEOS / "world.mp4", "-t", 2, "-c", "copy", "-movflags", "+faststart", path)
    return path


def test_a_clip_trimmed_with_stream_copy_imports_with_the_frames_a_player_presents(studio, trimmed):
    cap = cv2.VideoCapture(str(trimmed), cv2.CAP_FFMPEG)
    declared = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    presented = presented_by_ffmpeg(trimmed)
    assert declared > presented + 10  # the premise: the container declares the hidden frames too
    assert presented_seconds(trimmed) * 30 == pytest.approx(presented, abs=1)
    media = studio.add_media(trimmed)[0]
    assert media["frames"] == presented
    original = decode_sequentially(GRADIO_VIDEOS / "world.mp4")
    first, last = studio.frame(media["id"], 0), studio.frame(media["id"], presented - 1)
    start = next(i for i, frame in enumerate(original) if np.array_equal(frame, first))
    assert abs(start - 39) <= 1  # 1.3 s at 30 fps: the cut, not the keyframe before it
    assert np.array_equal(last, original[start + presented - 1])


def test_a_trimmed_clip_cut_short_is_still_refused_as_truncated(tmp_path, trimmed):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(trimmed.read_bytes()[: trimmed.stat().st_size * 5 // 10])
    with pytest.raises(media_io.MediaError, match=r"cut.mp4 decodes to only \d+ of the \d+ frames .* truncated"):
        media_io.probe(cut)
