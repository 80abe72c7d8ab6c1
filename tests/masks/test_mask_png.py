import cv2
import numpy as np
import pytest

from app.masks.png import MaskFileError, read_mask_png, write_mask_png

OBJ = np.zeros((20, 30), bool)
OBJ[4:12, 5:25] = True


def save(path, img):
    assert cv2.imwrite(str(path), img)
    return path


def test_grey_8_and_16_bit(tmp_path):
    assert np.array_equal(read_mask_png(save(tmp_path / "a.png", OBJ.astype(np.uint8))), OBJ)
    assert np.array_equal(read_mask_png(save(tmp_path / "b.png", OBJ.astype(np.uint16) * 300)), OBJ)


def test_colour_any_channel(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8)
    img[4:12, 5:15, 2] = 1
    img[4:12, 15:25, 0] = 200
    assert np.array_equal(read_mask_png(save(tmp_path / "c.png", img)), OBJ)


def test_rgba_with_opaque_black_background_is_not_all_object(tmp_path):
    img = np.zeros((20, 30, 4), np.uint8)
    img[..., 3] = 255
    img[OBJ, :3] = 255
    assert np.array_equal(read_mask_png(save(tmp_path / "d.png", img)), OBJ)


def test_rgba_transparent_background_and_alpha_only(tmp_path):
    img = np.zeros((20, 30, 4), np.uint8)
    img[..., :3] = 255  # colour everywhere, but only the object is opaque
    img[OBJ, 3] = 255
    assert np.array_equal(read_mask_png(save(tmp_path / "e.png", img)), OBJ)
    img = np.zeros((20, 30, 4), np.uint8)
    img[OBJ, 3] = 128
    assert np.array_equal(read_mask_png(save(tmp_path / "f.png", img)), OBJ)


def test_non_png_and_damaged_png_are_refused(tmp_path):
    with pytest.raises(MaskFileError, match="not a PNG"):
        read_mask_png(save(tmp_path / "g.jpg", OBJ.astype(np.uint8) * 255))
    good = save(tmp_path / "h.png", OBJ.astype(np.uint8))
    (tmp_path / "i.png").write_bytes(good.read_bytes()[:40])
    with pytest.raises(MaskFileError, match="damaged"):
        read_mask_png(tmp_path / "i.png")


def test_write_round_trip_is_0_255(tmp_path):
    path = write_mask_png(OBJ, tmp_path / "out.png")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint8 and set(np.unique(img)) == {0, 255}
    assert np.array_equal(read_mask_png(path), OBJ)
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_colour_images_keep_their_channel_order(tmp_path):
    """The page's JPEG frames and written RGB PNGs both go through OpenCV's BGR: red stays red."""
    import base64

    from app.masks.png import write_png
    from app.ui.frame_images import jpeg_data_url
    rgb = np.zeros((32, 48, 3), np.uint8)
    rgb[:, :16] = (220, 30, 10)
    rgb[:, 16:32] = (10, 200, 40)
    rgb[:, 32:] = (20, 40, 230)
    back = cv2.cvtColor(cv2.imread(str(write_png(rgb, tmp_path / "c.png"))), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, rgb)
    jpeg = base64.b64decode(jpeg_data_url(rgb).split(",", 1)[1])
    shown = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.abs(shown.astype(int) - rgb).max() <= 12  # JPEG at quality 92, 4:4:4
