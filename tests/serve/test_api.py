"""The scripting API (Gradio named endpoints), through gradio_client against the real app."""
import json
import os
import re
import subprocess
import sys

import cv2
import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from pycocotools.coco import COCO

from bench.live_app import ROOT, LiveApp
from tests.helpers.media_fixtures import write_image


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One real app for the whole module, on an empty project."""
    root = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TMPDIR", str(root))  # the app's temporary files land here, not in /tmp
        live = LiveApp(root / "api.sqlite")
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(app):
    return Client(app.url, verbose=False)


@pytest.fixture
def video(client, video_path):
    return client.predict(handle_file(video_path), api_name="/add_media")


@pytest.fixture
def image(client, image_path):
    return client.predict(handle_file(image_path), api_name="/add_media")


@pytest.fixture
def expression_id(client, video):
    return client.predict(video["media_id"], "the red square", api_name="/add_expression")["expression_id"]


def decoded_facts(path) -> tuple[int, int, int]:
    """(frames, width, height) by decoding the file here, independently of the app."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    frames, shape = 0, None
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames, shape = frames + 1, bgr.shape
    cap.release()
    return frames, shape[1], shape[0]


def random_mask(height, width, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).random((height, width)) > 0.6


def write_png(path, array) -> str:
    assert cv2.imwrite(str(path), array)
    return str(path)


def read_png(path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def save(client, expression_id, frame, mask, path, base_revision=None) -> int:
    png = write_png(path, mask.astype(np.uint8) * 255)
    return client.predict(expression_id, frame, handle_file(png), base_revision,
                          api_name="/save_mask")["revision"]


def get(client, expression_id, frame) -> np.ndarray:
    return read_png(client.predict(expression_id, frame, api_name="/get_mask"))


def error_of(client, *args, api_name) -> str:
    with pytest.raises(AppError) as info:
        client.predict(*args, api_name=api_name)
    return str(info.value)


# -- happy paths ----------------------------------------------------------------------------

def test_add_media_video_reports_the_decoded_file(client, video_path):
    out = client.predict(handle_file(video_path), api_name="/add_media")
    assert set(out) == {"media_id", "kind", "frames", "width", "height"}
    assert isinstance(out["media_id"], int)
    assert (out["kind"], out["frames"], out["width"], out["height"]) == ("video", *decoded_facts(video_path))
    assert (out["frames"], out["width"], out["height"]) == (6, 48, 32)
    # The same content again is the same media, not a copy.
    assert client.predict(handle_file(video_path), api_name="/add_media") == out


def test_add_media_image_reports_its_size(client, image_path):
    out = client.predict(handle_file(image_path), api_name="/add_media")
    height, width = cv2.imread(str(image_path)).shape[:2]
    assert (out["kind"], out["frames"], out["width"], out["height"]) == ("image", 1, width, height)


def test_add_expression_returns_a_new_id_each_time(client, video):
    first = client.predict(video["media_id"], "the red square", api_name="/add_expression")
    second = client.predict(video["media_id"], "the red square", api_name="/add_expression")
    assert set(first) == {"expression_id"}
    assert isinstance(first["expression_id"], int)
    assert second["expression_id"] != first["expression_id"]


def _gray01(mask):
    return mask.astype(np.uint8)


def _gray255(mask):
    return mask.astype(np.uint8) * 255


def _gray16(mask):
    return mask.astype(np.uint16) * 40000


def _channels(mask, n):
    """Each object pixel nonzero in one channel only (which one varies), background all zero."""
    out = np.zeros((*mask.shape, n), np.uint8)
    channel = np.random.default_rng(1).integers(0, n, mask.shape)
    ys, xs = np.nonzero(mask)
    out[ys, xs, channel[ys, xs]] = np.random.default_rng(2).integers(1, 256, len(ys))
    return out


def _rgba_on_black(mask):
    """What image editors export: opaque black background, the object in some colour."""
    out = np.zeros((*mask.shape, 4), np.uint8)
    out[..., :3] = _channels(mask, 3)
    out[..., 3] = 255
    return out


@pytest.mark.parametrize("encode", [_gray01, _gray255, _gray16, lambda m: _channels(m, 3), _rgba_on_black],
                         ids=["gray-0-1", "gray-0-255", "gray-16bit", "rgb", "rgba"])
def test_save_mask_accepts_png_forms_and_get_mask_returns_0_255(client, video, expression_id, tmp_path,
                                                                   encode):
    mask = random_mask(video["height"], video["width"], seed=3)
    png = write_png(tmp_path / "mask.png", encode(mask))
    out = client.predict(expression_id, 2, handle_file(png), api_name="/save_mask")
    assert out == {"revision": 1}

    back = get(client, expression_id, 2)
    assert back.dtype == np.uint8 and back.shape == (video["height"], video["width"])
    assert set(np.unique(back)) <= {0, 255}
    assert np.array_equal(back, mask.astype(np.uint8) * 255)
    # A frame with nothing saved reads back empty, at the frame's size.
    assert np.array_equal(get(client, expression_id, 3), np.zeros((video["height"], video["width"]), np.uint8))


def test_get_mask_of_an_image_is_its_size(client, image, tmp_path):
    expression_id = client.predict(image["media_id"], "the still", api_name="/add_expression")["expression_id"]
    mask = random_mask(image["height"], image["width"], seed=4)
    save(client, expression_id, 0, mask, tmp_path / "m.png")
    assert np.array_equal(get(client, expression_id, 0), mask.astype(np.uint8) * 255)


def test_revisions_increase_and_a_stale_base_is_refused(client, video, expression_id, tmp_path):
    h, w = video["height"], video["width"]
    a, b, c = (random_mask(h, w, seed=s) for s in (10, 11, 12))
    r1 = save(client, expression_id, 0, a, tmp_path / "a.png")
    r2 = save(client, expression_id, 0, b, tmp_path / "b.png", base_revision=r1)
    assert r2 > r1 >= 1

    message = error_of(client, expression_id, 0, handle_file(write_png(tmp_path / "c.png", _gray255(c))), r1,
                       api_name="/save_mask")
    assert "Reload" in message and f"revision {r2}" in message and f"revision {r1}" in message
    assert np.array_equal(get(client, expression_id, 0), _gray255(b))

    r3 = save(client, expression_id, 0, c, tmp_path / "c2.png", base_revision=r2)
    assert r3 > r2
    assert np.array_equal(get(client, expression_id, 0), _gray255(c))


def test_export_coco_decodes_to_the_saved_masks(client, video, image, expression_id, tmp_path):
    masks = {1: random_mask(video["height"], video["width"], seed=20),
             4: random_mask(video["height"], video["width"], seed=21)}
    for frame, mask in masks.items():
        save(client, expression_id, frame, mask, tmp_path / f"{frame}.png")
    image_expression = client.predict(image["media_id"], "the still", api_name="/add_expression")["expression_id"]
    still = random_mask(image["height"], image["width"], seed=22)
    save(client, image_expression, 0, still, tmp_path / "still.png")

    coco = COCO(client.predict(api_name="/export_coco"))
    refs = {ref["expression_id"]: ref for ref in coco.dataset["refs"]}
    assert refs[expression_id]["sentences"][0]["raw"] == "the red square"

    found = {}
    for ann_id in refs[expression_id]["ann_ids"]:
        ann = coco.anns[ann_id]
        img = coco.imgs[ann["image_id"]]
        assert (img["media_id"], img["width"], img["height"]) == (video["media_id"], video["width"],
                                                                   video["height"])
        found[img["frame_index"]] = coco.annToMask(ann)
        assert ann["area"] == found[img["frame_index"]].sum() and ann["iscrowd"] == 0
    assert found.keys() == masks.keys()
    for frame, mask in masks.items():
        assert np.array_equal(found[frame], mask.astype(np.uint8))

    [ann_id] = refs[image_expression]["ann_ids"]
    assert np.array_equal(coco.annToMask(coco.anns[ann_id]), still.astype(np.uint8))


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name, content, expected", [
    ("notes.txt", b"some notes", ["notes.txt", "unsupported extension '.txt'", ".mp4"]),
    ("broken.mp4", b"this is not a video at all", ["broken.mp4", "contains text, not video data"]),
    ("broken.png", b"\x00\x01\x02\x03garbage" * 4, ["broken.png", "not a valid PNG image"]),
])
def test_add_media_refuses_bad_files_with_clear_messages(client, tmp_path, name, content, expected):
    (tmp_path / name).write_bytes(content)
    images_before = len(COCO(client.predict(api_name="/export_coco")).imgs)
    message = error_of(client, handle_file(tmp_path / name), api_name="/add_media")
    for fragment in expected:
        assert fragment in message
    assert len(COCO(client.predict(api_name="/export_coco")).imgs) == images_before


def test_save_mask_of_the_wrong_size_names_both_sizes(client, video, expression_id, tmp_path):
    png = write_png(tmp_path / "small.png", np.full((10, 20), 255, np.uint8))
    message = error_of(client, expression_id, 0, handle_file(png), api_name="/save_mask")
    assert "20x10" in message and f"{video['width']}x{video['height']}" in message
    assert not get(client, expression_id, 0).any()


def test_save_mask_that_is_not_an_image_is_refused(client, expression_id, tmp_path):
    (tmp_path / "mask.png").write_text("not a png")
    message = error_of(client, expression_id, 0, handle_file(tmp_path / "mask.png"), api_name="/save_mask")
    assert "is not a PNG" in message


@pytest.mark.parametrize("frame", [6, -1, 1000])
def test_frame_out_of_range_is_refused(client, video, expression_id, tmp_path, frame):
    png = write_png(tmp_path / "m.png", np.full((video["height"], video["width"]), 255, np.uint8))
    expected = f"frame {frame} is outside clip.avi, which has frames 0..5"
    assert expected in error_of(client, expression_id, frame, handle_file(png), api_name="/save_mask")
    assert expected in error_of(client, expression_id, frame, api_name="/get_mask")


def test_unknown_ids_are_refused(client, video, tmp_path):
    png = write_png(tmp_path / "m.png", np.full((video["height"], video["width"]), 255, np.uint8))
    unknown = "no expression with id 987654 in this project"
    assert unknown in error_of(client, 987654, 0, handle_file(png), api_name="/save_mask")
    assert unknown in error_of(client, 987654, 0, api_name="/get_mask")
    assert unknown in error_of(client, 987654, "flowrvs", api_name="/segment")
    assert "no media with id 987654" in error_of(client, 987654, "a cat", api_name="/add_expression")


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_expression_text_is_refused(client, video, text):
    message = error_of(client, video["media_id"], text, api_name="/add_expression")
    assert "the expression is empty" in message


def raw_call(app, api_name: str, body: str) -> str:
    """One call posted as raw JSON (what gradio_client would never send); its event stream."""
    call = httpx.post(f"{app.url}gradio_api/call/{api_name}", content=body,
                      headers={"Content-Type": "application/json"}).json()
    return httpx.get(f"{app.url}gradio_api/call/{api_name}/{call['event_id']}").text


def test_expression_text_that_is_not_unicode_or_too_long_is_refused_clearly(app, client, video):
    # gradio_client cannot send a lone surrogate (httpx encodes UTF-8), so post the JSON escape as is.
    events = raw_call(app, "add_expression", '{"data": [%d, "the cat \\ud800"]}' % video["media_id"])
    assert "event: error" in events
    assert "not valid Unicode: character 9 is a lone surrogate (U+D800)" in events
    message = error_of(client, video["media_id"], "a" * 2001, api_name="/add_expression")
    assert "FLOWLABEL_MAX_EXPRESSION_CHARS" in message


def test_a_path_sent_as_a_media_name_never_reaches_the_project_or_an_export(app, client, tmp_path):
    write_image(tmp_path / "upload.png", seed=24)
    with open(tmp_path / "upload.png", "rb") as f:
        uploaded = httpx.post(f"{app.url}gradio_api/upload", files={"files": ("upload.png", f)}).json()[0]
    file = {"path": uploaded, "orig_name": "../../../../tmp/evil\n.png", "meta": {"_type": "gradio.FileData"}}
    events = raw_call(app, "add_media", json.dumps({"data": [file, False]}))
    media_id = json.loads(events.split("event: complete\ndata: ", 1)[1].splitlines()[0])[0]["media_id"]
    coco = json.loads(open(client.predict(api_name="/export_coco")).read())
    image = next(im for im in coco["images"] if im["media_id"] == media_id)
    assert image["original_name"] == "evil.png" and image["file_name"] == "evil.png"
    names = [im["file_name"] for im in coco["images"]]
    assert len(set(names)) == len(names) and not any(".." in n or n.startswith("/") for n in names)


@pytest.mark.parametrize("args, api_name, expected", [
    ((1.5, 0), "/get_mask", "expression_id must be a whole number, got 1.5"),
    (("{eid}", 1.5), "/get_mask", "frame must be a whole number, got 1.5"),
    (("{eid}", "1"), "/get_mask", "frame must be an integer, got str '1'"),
    (("{eid}", True), "/get_mask", "frame must be an integer, got bool True"),
    (("{eid}", None), "/get_mask", "frame must be an integer, got NoneType None"),
    (("{media}", None), "/add_expression", "text must be a string, got NoneType None"),
    (("{media}", 7), "/add_expression", "text must be a string, got int 7"),
    (("abc", "a cat"), "/add_expression", "media_id must be an integer, got str 'abc'"),
    (("{eid}", 0, "forward", 2.5), "/propagate", "count must be a whole number, got 2.5"),
    (("{eid}", 0, "forward", -3), "/propagate", "count must be 0 or more, got -3"),
    (("{eid}", 0, "forward", 2, "yes"), "/propagate", "overwrite_manual must be true or false, got str 'yes'"),
    (("{eid}", 0), "/segment", "engine must be a string, got int 0"),
])
def test_wrong_types_are_refused_at_the_edge_and_nothing_is_saved(client, video, expression_id, tmp_path, args,
                                                                   api_name, expected):
    ids = {"{eid}": expression_id, "{media}": video["media_id"]}
    args = [ids.get(a, a) if isinstance(a, str) else a for a in args]
    before = project_contents(client, expression_id, tmp_path)
    assert expected in error_of(client, *args, api_name=api_name)
    assert project_contents(client, expression_id, tmp_path) == before


def test_a_fractional_frame_is_refused_not_rounded_and_a_whole_float_is_taken(client, video, expression_id,
                                                                             tmp_path):
    mask = random_mask(video["height"], video["width"])
    png = handle_file(write_png(tmp_path / "m.png", _gray255(mask)))
    assert "frame must be a whole number, got 1.5" in error_of(client, expression_id, 1.5, png,
                                                              api_name="/save_mask")
    assert "base_revision must be a whole number" in error_of(client, expression_id, 1, png, 0.5,
                                                             api_name="/save_mask")
    assert not get(client, expression_id, 1).any()  # frame 1 was not touched
    assert "mask must be a file" in error_of(client, expression_id, 1, "m.png", api_name="/save_mask")
    client.predict(expression_id, 2.0, png, api_name="/save_mask")  # JSON has one number type
    assert np.array_equal(get(client, expression_id, 2) > 0, mask)


def project_contents(client, expression_id, tmp_path) -> list:
    """The annotations and refs of the whole project, as exported: what a refused call must not change."""
    coco = json.loads(open(client.predict(api_name="/export_coco")).read())
    return [a for a in coco["annotations"] if a.get("object_id") is not None] + coco["refs"]


@pytest.mark.parametrize("engine", ["sam9", "no-such-engine"])
def test_segment_names_the_registered_engines(client, video, image, expression_id, engine):
    image_expression = client.predict(image["media_id"], "the still", api_name="/add_expression")["expression_id"]
    for target in (expression_id, image_expression):
        message = error_of(client, target, engine, api_name="/segment")
        assert f"unknown segmentation engine {engine!r}" in message and "flowrvs, flowrvs-demo, flowseg" in message


def test_segment_with_an_image_engine_on_a_video_says_so(client, video, image, expression_id):
    assert "choose an engine for videos" in error_of(client, expression_id, "flowseg", api_name="/segment")
    image_expression = client.predict(image["media_id"], "the still", api_name="/add_expression")["expression_id"]
    assert "--flowseg-dir" in error_of(client, image_expression, "flowseg", api_name="/segment")


def test_segment_with_unconfigured_flowrvs_says_which_paths(client, video, expression_id):
    message = error_of(client, expression_id, "flowrvs", api_name="/segment")
    for flag in ("--flowrvs-wan-dir", "FLOWLABEL_FLOWRVS_WAN_DIR", "--flowrvs-checkpoint"):
        assert flag in message


# -- docs/scripting.md's example -----------------------------------------------------------

@pytest.mark.parametrize("media, summary", [("shapes.png", "image, 1 frame(s), 320x240"),
                                            ("shapes.mp4", "video, 24 frame(s), 320x240")])
def test_api_example_script_runs(app, client, media, summary, tmp_path):
    temp = tmp_path / "temp"  # the script's temp dir: gradio_client's download folders land here
    temp.mkdir()
    done = subprocess.run([sys.executable, "scripts/api_example.py", app.url, f"assets/demo/{media}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(temp), "GRADIO_TEMP_DIR": ""})
    assert done.returncode == 0, done.stderr
    assert list(temp.iterdir()) == []  # the script cleaned up after itself
    assert summary in done.stdout
    assert "read back identical" in done.stdout and "COCO export:" in done.stdout

    # What the script says it saved is what the project holds.
    expression_id = int(re.search(r"expression (\d+): frame 0 saved", done.stdout).group(1))
    mask = get(client, expression_id, 0)
    h, w = mask.shape
    expected = np.zeros((h, w), np.uint8)
    expected[h // 4:3 * h // 4, w // 4:3 * w // 4] = 255
    assert (w, h) == (320, 240) and np.array_equal(mask, expected)


def test_propagate_endpoint_follows_the_object_and_keeps_manual_frames(client, tmp_path):
    from app.masks.frame_tools import mask_iou
    from tests.helpers.page_fixtures import write_moving_square

    truth = write_moving_square(tmp_path / "square.avi", frames=10)
    media = client.predict(handle_file(str(tmp_path / "square.avi")), api_name="/add_media")
    eid = client.predict(media["media_id"], "the square", api_name="/add_expression")["expression_id"]
    save(client, eid, 0, truth[0], tmp_path / "m0.png")
    save(client, eid, 4, truth[4], tmp_path / "m4.png")
    out = client.predict(eid, 0, "forward", 6, api_name="/propagate")
    assert out["frames"] == [1, 2, 3, 5, 6] and out["flagged"] is None  # frame 4 is manual: kept
    assert np.array_equal(get(client, eid, 4) > 0, truth[4])
    assert min(mask_iou(get(client, eid, f) > 0, truth[f]) for f in out["frames"]) >= 0.9
    message = error_of(client, eid, 9, "forward", 3, api_name="/propagate")
    assert "no mask to propagate" in message
    assert "direction" in error_of(client, eid, 0, "sideways", 3, api_name="/propagate")
    # no SAM 2 weights on this app: DIS is the default, and asking for SAM 2 says how to configure it
    assert out["method"] == "dis" and out["absent"] == []
    assert "--sam-model" in error_of(client, eid, 0, "forward", 3, False, "sam2", api_name="/propagate")
    assert "'sam2' or 'dis'" in error_of(client, eid, 0, "forward", 3, False, "flow", api_name="/propagate")


# -- frames, truncated files, untrusted sizes -------------------------------------------------

def test_get_frame_gives_the_sequential_frame_of_a_real_avi_in_any_order(client):
    """b.avi's timestamps skip a frame near the start; jumps once showed the frame before."""
    from tests.helpers.media_fixtures import GRADIO_VIDEOS, decode_sequentially

    path = GRADIO_VIDEOS / "b.avi"
    sequential = decode_sequentially(path)
    media = client.predict(handle_file(str(path)), api_name="/add_media")
    assert media["frames"] == len(sequential) == 150
    order = [100, 101, 149, 30, 120] + np.random.default_rng(0).permutation(150)[:25].tolist()
    for i in order:
        png = read_png(client.predict(media["media_id"], i, api_name="/get_frame"))
        assert np.array_equal(png[..., ::-1], sequential[i]), f"frame {i}"


@pytest.mark.parametrize("frame, phrase", [(10**9, "frame 1000000000 is outside clip.avi, which has frames 0..5"),
                                           (-1, "frame -1 is outside"), (1.5, "whole number")])
def test_get_frame_refuses_bad_indices(client, video, frame, phrase):
    assert phrase in error_of(client, video["media_id"], frame, api_name="/get_frame")


def test_add_media_refuses_a_truncated_video_unless_kept(client, tmp_path):
    from tests.helpers.media_fixtures import GRADIO_VIDEOS

    data = (GRADIO_VIDEOS / "world.mp4").read_bytes()
    (tmp_path / "world.mp4").write_bytes(data[: len(data) // 2])
    message = error_of(client, handle_file(str(tmp_path / "world.mp4")), api_name="/add_media")
    assert "of the 901 frames its container declares" in message and "keep_partial" in message
    kept = client.predict(handle_file(str(tmp_path / "world.mp4")), True, api_name="/add_media")
    assert 0 < kept["frames"] < 901


def test_save_mask_refuses_a_huge_declared_png_without_decoding_it(client, expression_id, tmp_path):
    import time

    from tests.helpers.media_fixtures import write_png_bomb

    bomb = write_png_bomb(tmp_path / "bomb.png")
    start = time.perf_counter()
    message = error_of(client, expression_id, 0, handle_file(str(bomb)), api_name="/save_mask")
    assert time.perf_counter() - start < 5
    assert "30000x30000" in message and "FLOWLABEL_MAX_PIXELS" in message
    assert not get(client, expression_id, 0).any()


def test_add_media_refuses_a_server_path_that_was_not_uploaded(app, tmp_path):
    """A client can name any path in a FileData; only files it uploaded may be read (Gradio's check,
    kept here as a regression test because it is what keeps server files out of exports)."""
    import httpx
    outside = write_png(tmp_path / "server-side.png", np.full((30, 40), 200, np.uint8))
    with httpx.Client(base_url=app.url, timeout=60) as http:
        event = http.post("gradio_api/call/add_media",
                          json={"data": [{"path": outside, "meta": {"_type": "gradio.FileData"}}, False]}).json()
        reply = http.get(f"gradio_api/call/add_media/{event['event_id']}").text
    assert "event: error" in reply and "not uploaded by a user" in reply, reply
