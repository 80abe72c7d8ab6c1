"""Media at the edges: pixel formats the decoders do not read, clips trimmed without
re-encoding (an edit list), uploads that fail half-written."""
import cv2
import numpy as np
import pytest
from PIL import Image

from app.media import files as media_io


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
