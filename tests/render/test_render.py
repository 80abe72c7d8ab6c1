"""Overlay clips (app.render.clip through Studio.render_clip): decoded back with OpenCV and PIL and
checked against the source frames and the stored masks."""
import cv2
import numpy as np
import pytest
from PIL import Image

import engine
from app.commands import cli
from app.masks.overlay import OBJECT_COLOURS
from app.media.files import FrameReader
from app.render import clip as render
from app.render.clip import GAP_RGB, RenderError
from tests.helpers.media_fixtures import decode_sequentially, write_video

SIZE = (128, 96)
MAGENTA, YELLOW = OBJECT_COLOURS[0], OBJECT_COLOURS[1]


def box(y0, y1, x0, x1, shape=(SIZE[1], SIZE[0])) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.erode(mask.astype(np.uint8), np.ones((2 * px + 1,) * 2, np.uint8)).astype(bool)


def decode(path) -> np.ndarray:
    """Every frame of a video file, RGB [T,H,W,3], decoded here with OpenCV."""
    return np.stack(decode_sequentially(path))


@pytest.fixture
def clip(studio, tmp_path):
    """A 10-frame 128x96 video with one expression of two objects, masks on every frame."""
    write_video(tmp_path / "clip.avi", frames=10, size=SIZE, fps=10.0)
    media = studio.add_media(tmp_path / "clip.avi")[0]
    expr = studio.store.add_expression(media["id"], "the two boxes")
    second = studio.store.add_object(expr["id"])
    first = studio.store.list_objects(expr["id"])[0]["id"]
    masks = {f: box(20, 60, 10 + 3 * f, 50 + 3 * f) for f in range(10)}
    studio.store.save_masks(expr["id"], masks, object_id=first)
    studio.store.save_masks(expr["id"], {f: box(25, 55, 85, 120) for f in range(10)}, object_id=second)
    source = FrameReader(studio.store.media_file(media["id"]), "video")
    frames = np.stack([source.read(i) for i in range(10)])
    source.close()
    return {"media": media, "expression": expr["id"], "objects": (first, second), "masks": masks, "frames": frames}


def test_mp4_has_every_frame_at_the_right_size_with_coloured_masks_boundaries_and_caption(studio, clip, tmp_path):
    result = studio.render_clip(tmp_path / "out.mp4", expression_id=clip["expression"])
    assert result == {"path": str(tmp_path / "out.mp4"), "format": "mp4", "frames": 10, "width": 128,
                      "height": 96, "fps": 10.0}
    video = decode(tmp_path / "out.mp4")
    assert video.shape == (10, 96, 128, 3)
    for f in (0, 5, 9):
        shown, source, mask = video[f].astype(int), clip["frames"][f].astype(int), clip["masks"][f]
        inside = erode(mask, 4)  # away from the boundary and the codec's chroma blur
        expected = np.round(source * 0.5 + np.array(MAGENTA) * 0.5)
        assert np.abs(shown[inside] - expected[inside]).mean() < 6
        # The 2 px boundary at full colour; 4:2:0 chroma bleeds into it from the neighbours.
        ring_off = np.median(np.abs(shown[mask & ~erode(mask, 2)] - MAGENTA).mean(axis=-1))
        inside_off = np.median(np.abs(shown[inside] - MAGENTA).mean(axis=-1))
        assert ring_off < 40 and ring_off < 0.5 * inside_off
        second = erode(box(25, 55, 85, 120), 4)
        assert np.abs(shown[second] - np.round(source * 0.5 + np.array(YELLOW) * 0.5)[second]).mean() < 6
        outside = erode(~(mask | box(25, 55, 85, 120)), 3)
        outside[70:] = False  # the caption lives at the bottom
        assert np.abs(shown[outside] - source[outside]).mean() < 4
        caption = shown[84:, 4:60] - source[84:, 4:60]
        assert np.abs(caption).mean() > 25
        assert (shown[84:, :80] > 200).all(axis=-1).sum() > 20  # white letters


def test_mask_layer_carries_each_objects_exact_colour_on_black(studio, clip, tmp_path):
    studio.render_clip(tmp_path / "mask.mp4", expression_id=clip["expression"], layers="mask")
    shown = decode(tmp_path / "mask.mp4")[3].astype(int)
    first, second = erode(clip["masks"][3], 3), erode(box(25, 55, 85, 120), 3)
    assert np.abs(shown[first] - MAGENTA).max(axis=-1).mean() < 12
    assert np.abs(shown[second] - YELLOW).max(axis=-1).mean() < 12
    background = erode(~(clip["masks"][3] | box(25, 55, 85, 120)), 3)
    background[70:] = False  # the caption
    assert shown[background].mean() < 6


def test_image_layer_is_the_frame_with_the_caption_only(studio, clip, tmp_path):
    studio.render_clip(tmp_path / "image.png", expression_id=clip["expression"], frames="4", layers="image")
    shown = np.asarray(Image.open(tmp_path / "image.png")).astype(int)
    source = clip["frames"][4].astype(int)
    assert np.array_equal(shown[:70], source[:70])
    assert not np.array_equal(shown[70:], source[70:])


def test_png_of_an_image_is_exact(studio, tmp_path):
    rng = np.random.default_rng(3)
    picture = rng.integers(0, 256, (90, 120, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "still.png"), picture[..., ::-1])
    media = studio.add_media(tmp_path / "still.png")[0]
    expr = studio.store.add_expression(media["id"], "a patch")["id"]
    mask = box(10, 50, 20, 70, (90, 120))
    studio.store.save_mask(expr, 0, mask)
    result = studio.render_clip(tmp_path / "still-out.png", expression_id=expr)
    assert result["format"] == "png" and result["frames"] == 1
    shown = np.asarray(Image.open(tmp_path / "still-out.png")).astype(int)
    assert shown.shape == (90, 120, 3)
    inside, ring = erode(mask, 2), mask & ~erode(mask, 2)
    blend = np.rint(picture * 0.5 + np.array(MAGENTA) * 0.5)  # rounded half to even, as OpenCV does
    assert np.array_equal(shown[inside], blend[inside])
    assert (shown[ring] == MAGENTA).all()
    untouched = ~mask
    untouched[60:] = False  # the caption
    assert np.array_equal(shown[untouched], picture[untouched])


def test_gif_and_webp_frame_counts_follow_range_and_fps(studio, clip, tmp_path):
    studio.render_clip(tmp_path / "all.gif", expression_id=clip["expression"])
    with Image.open(tmp_path / "all.gif") as gif:
        assert gif.n_frames == 10 and gif.info["duration"] == 100 and gif.size == SIZE
    result = studio.render_clip(tmp_path / "half.webp", expression_id=clip["expression"], frames="2:10", fps=5)
    assert result["frames"] == 4
    with Image.open(tmp_path / "half.webp") as webp:
        assert webp.n_frames == 4 and webp.size == SIZE
        webp.seek(1)  # the second shown frame is source frame 4: the box has moved 6 px from frame 2
        second = np.asarray(webp.convert("RGB")).astype(int)
    left_edge = np.abs(second[40, :, :] - MAGENTA).sum(axis=-1) < 90
    assert abs(int(np.argmax(left_edge)) - (10 + 3 * 4)) <= 1


def test_scale_and_odd_sizes_give_even_mp4_frames(studio, tmp_path):
    write_video(tmp_path / "odd.avi", frames=4, size=(102, 70), fps=8.0)
    media = studio.add_media(tmp_path / "odd.avi")[0]
    expr = studio.store.add_expression(media["id"], "odd")["id"]
    result = studio.render_clip(tmp_path / "odd.mp4", expression_id=expr, scale=0.5)  # 51x35 -> 52x36
    assert (result["width"], result["height"]) == (52, 36)
    assert decode(tmp_path / "odd.mp4").shape == (4, 36, 52, 3)
    result = studio.render_clip(tmp_path / "odd.gif", expression_id=expr, scale=0.5)
    assert Image.open(tmp_path / "odd.gif").size == (51, 35) == (result["width"], result["height"])


def test_side_by_side_grid_has_one_labelled_panel_per_source(studio, clip, tmp_path):
    eid, (first, _) = clip["expression"], clip["objects"]
    proposal = box(30, 80, 60, 100)
    studio.store.save_masks(eid, {2: proposal}, object_id=first, source="engine-a", keep_manual=True)
    assert studio.store.get_mask(eid, 2, first).sum() == clip["masks"][2].sum()  # the correction stays
    out = tmp_path / "grid.png"
    result = studio.render_clip(out, expression_id=eid, frames="2", layers="mask", compare=["mask", "engine-a"])
    grid = np.asarray(Image.open(out)).astype(int)
    w, h = SIZE
    assert grid.shape == (h, 2 * w + 4, 3) and (result["width"], result["height"]) == (2 * w + 4, h)
    assert (grid[:, w:w + 4] == GAP_RGB).all()
    left, right = grid[:, :w], grid[:, w + 4:]
    corrected, proposed = erode(clip["masks"][2], 2), erode(proposal, 2)
    corrected[:24], proposed[70:] = False, False  # under the label; under the caption
    assert (left[corrected] == MAGENTA).all() and (right[proposed] == MAGENTA).all()
    assert (right[corrected] == 0).all()
    assert (left[proposed & ~box(25, 55, 85, 120)] == 0).all()  # left: the other object's cyan box only
    # Labels top-left in each panel, and different: "corrected mask" vs "engine-a proposal".
    assert (left[:22, :80] > 200).all(axis=-1).sum() > 15 and (right[:22, :80] > 200).all(axis=-1).sum() > 15
    assert not np.array_equal(left[:22, :80], right[:22, :80])
    single = studio.render_clip(tmp_path / "single.png", expression_id=eid, frames="2", layers="mask")
    alone = np.asarray(Image.open(single["path"])).astype(int)
    assert (alone[:20, :80] == 0).all()  # one source: no label

    three = studio.render_clip(tmp_path / "three.png", expression_id=eid, frames="2", layers="mask",
                               compare=["mask", "engine-a", "proposal"])
    grid = np.asarray(Image.open(three["path"])).astype(int)
    assert grid.shape == (2 * h + 4, 2 * w + 4, 3)
    assert (grid[h + 4:, w + 4:] == GAP_RGB).all()  # the fourth cell is empty
    assert (grid[h + 4:, :w][proposed] == MAGENTA).all()  # "proposal": the latest, engine-a's


def test_all_expressions_of_a_media_get_their_own_colours(studio, clip, tmp_path):
    other = studio.store.add_expression(clip["media"]["id"], "the left strip")["id"]
    studio.store.save_mask(other, 1, box(0, 96, 0, 6))
    result = studio.render_clip(tmp_path / "media.png", media_id=clip["media"]["id"], frames="1", layers="mask")
    shown = np.asarray(Image.open(result["path"])).astype(int)
    assert (shown[20:40, 2] == OBJECT_COLOURS[2]).all()  # third object overall
    assert (shown[erode(clip["masks"][1], 2)] == MAGENTA).all()


def test_progress_is_reported_and_cancel_leaves_no_file(studio, clip, tmp_path):
    seen = []
    studio.render_clip(tmp_path / "p.mp4", expression_id=clip["expression"], progress=lambda d, t: seen.append((d, t)))
    assert seen == [(d, 10) for d in range(1, 11)]
    for fmt in ("mp4", "gif", "webp"):
        calls = []
        with pytest.raises(engine.Cancelled, match="no file was written"):
            studio.render_clip(tmp_path / f"c.{fmt}", expression_id=clip["expression"],
                               cancel=lambda calls=calls: calls.append(1) or len(calls) > 4)
        assert len(calls) == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".c.", "c."))) == []


def test_frames_stream_one_at_a_time():
    """The drawing reads a frame only when the writer asks for the next one."""
    reads = []
    compositor = render.Compositor([render.MaskSource("m", lambda i: [np.zeros((20, 20), bool)])], [MAGENTA],
                                   None, (20, 20))
    frames = render.frames_of(compositor, lambda i: reads.append(i) or np.zeros((20, 20, 3), np.uint8),
                              range(100))
    next(frames), next(frames)
    assert reads == [0, 1]


@pytest.mark.parametrize("kwargs, message", [
    ({"frames": "5:2"}, "outside the media"),
    ({"frames": "a:b"}, "not a range"),
    ({"frames": "0:11"}, "0 <= A < B <= 10"),
    ({"fps": 30}, "above the video's own 10"),
    ({"fps": -1}, "positive"),
    ({"scale": 0}, "above 0"),
    ({"scale": 0.05}, "at least 16 px"),
    ({"fmt": "avi", "out": "bad.avi"}, "use one of mp4, gif, webp, png"),
    ({"fmt": "png", "out": "bad.png"}, "png holds one frame"),
    ({"fmt": "gif", "out": "x.mp4"}, "name the file .gif"),
    ({"layers": "outline"}, "unknown layers"),
    ({"compare": ["mask", "nobody"]}, "no proposals from 'nobody'"),
    ({"compare": ["mask", "proposal"]}, "no proposals yet .run an engine or propagate first"),
    ({"compare": ["mask", "mask"]}, "each source once"),
    ({"media_id": 1}, "exactly one of the two"),
    ({"expression_id": None}, "exactly one of the two"),
    ({"expression_id": 999}, "no expression with id 999"),
    ({"out": "missing/x.mp4"}, "does not exist"),
])
def test_bad_requests_are_refused_clearly_and_write_nothing(studio, clip, tmp_path, kwargs, message):
    kwargs = {"expression_id": clip["expression"], **kwargs}
    out = tmp_path / kwargs.pop("out", "bad.mp4")
    before = sorted(tmp_path.iterdir())
    with pytest.raises(Exception, match=message):
        studio.render_clip(out, **kwargs)
    assert sorted(tmp_path.iterdir()) == before


def test_an_image_renders_only_as_png_and_long_gifs_are_refused(studio, tmp_path, image_path):
    media = studio.add_media(image_path)[0]
    expr = studio.store.add_expression(media["id"], "x")["id"]
    with pytest.raises(RenderError, match="an image renders as png"):
        studio.render_clip(tmp_path / "x.mp4", expression_id=expr)
    with pytest.raises(RenderError, match="write mp4"):
        render.check_short_clip("gif", 3000, (1920, 1080))
    render.check_short_clip("mp4", 3000, (1920, 1080))


def test_cli_render_writes_the_file_and_explains_mistakes(studio, clip, tmp_path, capsys):
    project = str(studio.store.path)
    studio.store.save_masks(clip["expression"], {3: box(0, 10, 0, 10)}, source="engine-a", keep_manual=True)
    out = tmp_path / "cli.gif"
    code = cli.main(["render", "--project", project, "--expression", str(clip["expression"]), "--frames", "0:6",
                     "--scale", "0.5", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "wrote" in capsys.readouterr().out
    with Image.open(out) as gif:
        assert gif.n_frames == 6 and gif.size == (64, 48)
    code = cli.main(["render", "--project", project, "--media", str(clip["media"]["id"]), "--compare", "mask",
                     "proposal", "--format", "png", "--frames", "3", "--out", str(tmp_path / "cmp.png")])
    assert code == 0 and Image.open(tmp_path / "cmp.png").size == (2 * SIZE[0] + 4, SIZE[1])
    assert cli.main(["render", "--project", project, "--expression", "77", "--out", str(tmp_path / "n.mp4")]) == 1
    assert "no expression with id 77" in capsys.readouterr().err
    assert cli.main(["render", "--project", str(tmp_path / "none.sqlite"), "--expression", "1",
                     "--out", str(tmp_path / "n.mp4")]) == 2
    assert not (tmp_path / "n.mp4").exists()


def test_page_handler_shows_a_video_or_a_picture_and_offers_the_download(studio, clip, tmp_path, image_path):

    from app.ui.render_panel import render_for_page
    from app.ui.session import PageError
    steps = []
    video, picture, download = render_for_page(studio, tmp_path, {"expression_id": clip["expression"]},
                                               lambda f, desc="": steps.append(f))
    assert video["visible"] and not picture["visible"] and download["visible"]
    assert video["value"] == download["value"] == str(tmp_path / f"expression-{clip['expression']}.mp4")
    assert decode(video["value"]).shape == (10, 96, 128, 3) and steps[-1] == 1.0
    media = studio.add_media(image_path)[0]
    expr = studio.store.add_expression(media["id"], "the still")["id"]
    video, picture, download = render_for_page(studio, tmp_path, {"expression_id": expr})
    assert not video["visible"] and picture["visible"] and picture["value"].endswith(f"expression-{expr}.png")
    assert Image.open(picture["value"]).size == (40, 30)
    with pytest.raises(PageError, match="Pick or add an expression"):
        render_for_page(studio, tmp_path, {"expression_id": None})
