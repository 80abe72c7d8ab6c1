"""Malformed datasets: one FormatError naming file and entry; the project is left unchanged."""
import os
import pickle

import cv2
import numpy as np
import pytest
import sqlite_utils

from app import formats
from app.formats import FormatError
from app.formats.ytvos import write_palette_png
from app.project.store import ProjectStore
from engine import rle
from tests.formats.test_formats_common import box, dump, load, py2_pickle, source, state  # noqa: F401 (fixture)


@pytest.fixture
def target(tmp_path):
    """A project with work in it already: an image, an expression, a mask."""
    from tests.helpers.media_fixtures import write_image
    write_image(tmp_path / "mine.png", size=(20, 10), seed=9)
    store = ProjectStore(tmp_path / "target" / "target.sqlite")
    media = store.add_media(tmp_path / "mine.png")
    e = store.add_expression(media["id"], "my own work")["id"]
    store.save_mask(e, 0, box(10, 20, 1, 5, 1, 5))
    yield store
    store.close()


def exported(fmt, store, tmp_path):
    folder = tmp_path / f"dataset-{fmt}"
    if fmt == "coco":
        formats.export_coco(store, folder / "coco.json", images_dir=folder / "images")
        return folder / "coco.json", folder
    formats.get(fmt).export(store, folder)
    return folder, folder


def edit_json(path, change):
    data = load(path)
    change(data)
    dump(data, path)


def replace_bytes(path, old: bytes, new: bytes):
    raw = path.read_bytes()
    assert old in raw
    path.write_bytes(raw.replace(old, new, 1))


def set_segmentation(index, **values):
    def change(data):
        data["annotations"][index]["segmentation"].update(values)
    return change


def set_rle_list(index, **values):
    """refclef style: the segmentation as a list holding one RLE, then changed."""
    def change(data):
        ann = data["annotations"][index]
        image = next(im for im in data["images"] if im["id"] == ann["image_id"])
        ann["segmentation"] = [{**rle.encode(box(image["height"], image["width"], 1, 3, 1, 3)), **values}]
    return change


def set_polygons(index, polygons):
    def change(data):
        data["annotations"][index]["segmentation"] = polygons
    return change


def set_image(index, **values):
    def change(data):
        data["images"][index].update(values)
    return change


ZIGZAG = [[v for i in range(300) for v in (0, i % 32, 48, (i + 1) % 32)]]  # 600 points, 28,800 px of outline


def png_declaring(path, width, height):
    """A valid 1x1 PNG whose header then claims width x height (a decompression bomb's header)."""
    import io
    import struct
    import zlib

    from PIL import Image
    buf = io.BytesIO()
    Image.new("P", (1, 1)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    path.write_bytes(bytes(raw))


def coco_unknown_ann(data):
    ref = data["refs"][0] if isinstance(data, dict) else data[0]
    ref.pop("object_ids")
    ref["ann_ids"] = [12345]


def refs_unknown_ann(data):
    data[0].pop("object_ids")
    data[0]["ann_ids"] = [999]


class Evil:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def py2_refs_with_latin1(d):
    (d / "refs.json").unlink()
    refs = load_pickle(d / "refs(unc).p")
    refs[0]["sentences"][0]["raw"] = "caf\xe9".encode("latin-1")
    (d / "refs(unc).p").write_bytes(py2_pickle(refs))


def load_pickle(path):
    with open(path, "rb") as f:
        return pickle.load(f)


def evil_pickle(d):
    (d / "refs.json").unlink()
    (d / "refs(unc).p").write_bytes(pickle.dumps([Evil()], protocol=2))


def png(path, array):
    write_palette_png(path, np.asarray(array, np.uint8))


def rgb_png(path):
    cv2.imwrite(str(path), np.zeros((32, 48, 3), np.uint8))


def mevis_anno(d, video="clip", expression="0"):
    return load(d / "meta_expressions.json")["videos"][video]["expressions"][expression]["anno_id"][0]


CASES = {
    # format: [(case, corrupt(dataset folder), words the error must contain: file, entry, why)]
    "coco": [
        ("missing frame", lambda d: (d / "images" / "clip" / "00002.jpg").unlink(),
         ["clip/00002.jpg", "video 1", "missing"]),
        ("missing image", lambda d: (d / "images" / "still.png").unlink(),
         ["still.png", "images[10]", "does not exist"]),
        ("mask of the wrong size", lambda d: edit_json(d / "coco.json", set_segmentation(0, size=[33, 48])),
         ["coco.json", "annotations[0] (id 1)", "48x33", "48x32"]),
        ("broken RLE", lambda d: edit_json(d / "coco.json", set_segmentation(1, counts="PP0")),
         ["coco.json", "annotations[1] (id 2)", "broken RLE"]),
        ("unknown image id", lambda d: edit_json(d / "coco.json", lambda x: x["annotations"][2].update(image_id=999)),
         ["coco.json", "annotations[2] (id 3)", "unknown image_id 999"]),
        ("unknown ann id", lambda d: edit_json(d / "coco.json", coco_unknown_ann),
         ["coco.json", "refs[0] (ref_id 1)", "unknown ann_id 12345"]),
        ("invalid JSON", lambda d: (d / "coco.json").write_text((d / "coco.json").read_text()[:-20]),
         ["coco.json", "line 1 column", "invalid JSON"]),
        ("non-UTF-8", lambda d: replace_bytes(d / "coco.json", "café".encode(), b"caf\xe9"),
         ["coco.json", "byte ", "not UTF-8"]),
        ("polygon at 1e9", lambda d: edit_json(d / "coco.json", set_polygons(0, [[0, 0, 1e9, 0, 1e9, 1e9]])),
         ["coco.json", "annotations[0] (id 1)", "(1e+09, 0) outside the 48x32 image", "x must be in -2..50"]),
        ("polygon outline too long", lambda d: edit_json(d / "coco.json", set_polygons(0, ZIGZAG)),
         ["coco.json", "annotations[0] (id 1)", "over the limit of 64", "FLOWLABEL_MAX_POLYGON_OUTLINE"]),
        ("image declared huge", lambda d: edit_json(d / "coco.json", set_image(10, width=100000, height=100000)),
         ["coco.json", "images[10]", "10,000,000,000 pixels", "FLOWLABEL_MAX_PIXELS"]),
        ("RLE declared huge", lambda d: edit_json(d / "coco.json", set_segmentation(0, size=[90000, 90000])),
         ["coco.json", "annotations[0] (id 1)", "RLE size 90000x90000", "FLOWLABEL_MAX_PIXELS"]),
        ("frame_index 1e9", lambda d: edit_json(d / "coco.json", set_image(2, frame_index=10**9)),
         ["coco.json", "images[2]", "frame_index must be an integer in 0..11"]),
        ("digits past int()", lambda d: edit_json(d / "coco.json", set_image(2, frame_index="9" * 5000)),
         ["coco.json", "images[2]", "frame_index must be an integer"]),
        ("image file declaring a huge size", lambda d: png_declaring(d / "images" / "still.png", 30000, 30000),
         ["still.png", "image refused", "more pixels than Pillow will open", "FLOWLABEL_MAX_PIXELS"]),
        ("null", lambda d: (d / "coco.json").write_text("null"), ["coco.json", "holds only null"]),
        ("nothing in it", lambda d: (d / "coco.json").write_text('{"images": [], "annotations": []}'),
         ["coco.json", "holds nothing to import"]),
    ],
    "refcoco": [
        ("missing image", lambda d: (d / "images" / "still.png").unlink(),
         ["images/still.png", "images[0]", "does not exist"]),
        ("mask of the wrong size", lambda d: edit_json(d / "instances.json", set_rle_list(0, size=[30, 41])),
         ["instances.json", "annotations[0]", "41x30", "40x30"]),
        ("broken RLE", lambda d: edit_json(d / "instances.json", set_rle_list(1, counts="not rle at all")),
         ["instances.json", "annotations[1]", "broken RLE"]),
        ("unknown ann id", lambda d: edit_json(d / "refs.json", refs_unknown_ann),
         ["refs.json", "refs[0] (ref_id 5)", "unknown ann_id 999"]),
        ("invalid JSON", lambda d: (d / "refs.json").write_text("[{]"),
         ["refs.json", "line 1 column 3", "invalid JSON"]),
        ("non-UTF-8 in the pickle", py2_refs_with_latin1, ["refs(unc).p", "refs[0].sentences[0].raw", "not UTF-8"]),
        ("objects in the pickle", evil_pickle, ["refs(unc).p", "posix.system", "can run code"]),
        ("non-UTF-8 JSON", lambda d: replace_bytes(d / "instances.json", b'"ring"', b'"r\xffng"'),
         ["instances.json", "byte ", "not UTF-8"]),
        ("polygon at 1e9", lambda d: edit_json(d / "instances.json", set_polygons(0, [[-1e9, 0, 1, 0, 1, 1]])),
         ["instances.json", "annotations[0]", "(-1e+09, 0) outside the 40x30 image"]),
        ("RLE in a list declared huge", lambda d: edit_json(d / "instances.json", set_rle_list(0, size=[90000, 90000])),
         ["instances.json", "annotations[0]", "RLE size 90000x90000", "FLOWLABEL_MAX_PIXELS"]),
        ("refs null", lambda d: (d / "refs.json").write_text("null"), ["refs.json", "holds only null"]),
        ("no refs", lambda d: (d / "refs.json").write_text("[]"), ["holds nothing to import"]),
    ],
    "ytvos": [
        ("missing frame", lambda d: (d / "JPEGImages" / "clip" / "00003.jpg").unlink(),
         ["JPEGImages/clip/00003.jpg", "videos['clip']", "missing"]),
        ("mask of the wrong size", lambda d: png(d / "Annotations" / "clip" / "00001.png", np.zeros((10, 10))),
         ["Annotations/clip/00001.png", "videos['clip'] frame '00001'", "10x10"]),
        ("frame of the wrong size", lambda d: cv2.imwrite(str(d / "JPEGImages" / "walk" / "00001.jpg"),
                                                          np.zeros((10, 12, 3), np.uint8)),
         ["JPEGImages/walk/00001.jpg", "videos['walk']", "frame is 12x10", "40x24"]),
        ("unknown obj_id", lambda d: edit_json(d / "meta_expressions.json", lambda x: x["videos"]["clip"]
                                               ["expressions"]["0"].update(obj_id="9")),
         ["meta_expressions.json", "videos['clip'] expressions['0']", "unknown obj_id 9"]),
        ("unknown id in a mask", lambda d: png(d / "Annotations" / "clip" / "00000.png", np.full((32, 48), 9)),
         ["Annotations/clip/00000.png", "frame '00000'", "unknown object id 9"]),
        ("colour PNG", lambda d: rgb_png(d / "Annotations" / "clip" / "00004.png"),
         ["Annotations/clip/00004.png", "frame '00004'", "RGB PNG"]),
        ("broken PNG", lambda d: (d / "Annotations" / "walk" / "00002.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
         ["Annotations/walk/00002.png", "frame '00002'", "cannot be read"]),
        ("invalid JSON", lambda d: (d / "meta_expressions.json").write_text('{"videos": {"clip": ]}'),
         ["meta_expressions.json", "line 1 column 21", "invalid JSON"]),
        ("non-UTF-8", lambda d: replace_bytes(d / "meta_expressions.json", b"square", b"squ\xe2re"),
         ["meta_expressions.json", "byte ", "not UTF-8"]),
        ("expression over the length limit", lambda d: edit_json(d / "meta_expressions.json", lambda x: x["videos"]
                                                                 ["clip"]["expressions"]["0"].update(exp="a " * 1001)),
         ["meta_expressions.json", "videos['clip'] expressions['0']", "exp is too long", "2,001 characters",
          "FLOWLABEL_MAX_EXPRESSION_CHARS"]),
        ("mask PNG declaring a huge size", lambda d: png_declaring(d / "Annotations" / "clip" / "00001.png",
                                                                   9000, 9000),
         ["Annotations/clip/00001.png", "mask refused: it is 9000x9000: 81,000,000 pixels", "FLOWLABEL_MAX_PIXELS"]),
        ("frame declaring a huge size", lambda d: png_declaring(d / "JPEGImages" / "walk" / "00002.jpg",
                                                                40000, 20000),
         ["JPEGImages/walk/00002.jpg", "frame refused", "FLOWLABEL_MAX_PIXELS"]),
        ("null", lambda d: (d / "meta_expressions.json").write_text("null"),
         ["meta_expressions.json", "holds only null"]),
    ],
    "mevis": [
        ("missing frame", lambda d: (d / "JPEGImages" / "walk" / "00000.jpg").unlink(),
         ["JPEGImages/walk/00000.jpg", "videos['walk']", "missing"]),
        ("mask of the wrong size", lambda d: edit_json(d / "mask_dict.json", lambda x: x[mevis_anno(d)][1].update(
            size=[32, 47])), ["mask_dict.json", "frame 1 ('00001')", "47x32", "48x32"]),
        ("broken RLE", lambda d: edit_json(d / "mask_dict.json", lambda x: x[mevis_anno(d)][2].update(counts="!!")),
         ["mask_dict.json", "frame 2 ('00002')", "broken RLE"]),
        ("unknown anno_id", lambda d: edit_json(d / "meta_expressions.json", lambda x: x["videos"]["walk"]
                                                ["expressions"]["0"].update(anno_id=["424242"])),
         ["meta_expressions.json", "videos['walk'] expressions['0']", "unknown anno_id '424242'"]),
        ("track of the wrong length", lambda d: edit_json(d / "mask_dict.json", lambda x: x[mevis_anno(d)].pop()),
         ["mask_dict.json", "6 entries"]),
        ("invalid JSON", lambda d: (d / "mask_dict.json").write_text('{"1": [null,'),
         ["mask_dict.json", "line 1 column", "invalid JSON"]),
        ("non-UTF-8", lambda d: replace_bytes(d / "meta_expressions.json", b"shadow", b"sh\xc3\x28dow"),
         ["meta_expressions.json", "byte ", "not UTF-8"]),
        ("RLE declared huge", lambda d: edit_json(d / "mask_dict.json", lambda x: x[mevis_anno(d)][1].update(
            size=[100000, 100000])), ["mask_dict.json", "RLE size 100000x100000", "FLOWLABEL_MAX_PIXELS"]),
        ("null", lambda d: (d / "meta_expressions.json").write_text("null"),
         ["meta_expressions.json", "holds only null"]),
        ("no videos", lambda d: (d / "meta_expressions.json").write_text('{"videos": {}}'),
         ["meta_expressions.json", "holds nothing to import"]),
        ("mask_dict null", lambda d: (d / "mask_dict.json").write_text("null"), ["mask_dict.json", "holds only null"]),
        ("absurd frame rate", lambda d: edit_json(d / "meta_expressions.json", lambda x: x["videos"]["walk"].update(
            fps=1e308)), ["JPEGImages/walk", "frame rate 1e+308 is outside 0.01..1000"]),
    ],
}


@pytest.mark.parametrize("fmt, case, corrupt, words",
                         [(fmt, *case) for fmt, cases in CASES.items() for case in cases],
                         ids=[f"{fmt}-{case[0]}" for fmt, cases in CASES.items() for case in cases])
def test_malformed_dataset_is_refused_whole(fmt, case, corrupt, words, source, target, tmp_path):
    src, folder = exported(fmt, source, tmp_path)
    corrupt(folder)
    before = state(target)
    with pytest.raises(FormatError) as info:
        formats.get(fmt).import_(target, src)
    message = str(info.value)
    for word in words:
        assert word in message, f"{word!r} not in:\n{message}"
    assert "nothing was imported" in message
    assert state(target) == before
    assert not [p for p in target.path.parent.iterdir() if p.name.startswith(".flowlabel-import")]


def test_every_problem_is_listed_not_only_the_first(source, target, tmp_path):
    src, folder = exported("coco", source, tmp_path)

    def many(data):
        for ann in data["annotations"]:
            ann["segmentation"]["counts"] = "x"
        data["annotations"] += [{**ann, "id": 100 + i} for i, ann in enumerate(data["annotations"])]
    edit_json(src, many)
    with pytest.raises(FormatError) as info:
        formats.import_coco(target, src)
    n = len(load(src)["annotations"])
    assert n > 20 and len(info.value.problems) == n
    assert f"and {n - 20} more" in str(info.value)


def test_a_failure_while_writing_leaves_no_rows_and_no_files(source, target, tmp_path, monkeypatch):
    src, _ = exported("mevis", source, tmp_path)
    before = state(target)
    real = sqlite_utils.db.Table.insert_all

    def insert_all(self, records, *args, **kwargs):
        if self.name == "masks":
            raise OSError("disk full")
        return real(self, records, *args, **kwargs)
    monkeypatch.setattr(sqlite_utils.db.Table, "insert_all", insert_all)
    with pytest.raises(OSError, match="disk full"):
        formats.import_mevis(target, src)
    monkeypatch.undo()
    assert state(target) == before  # the two videos were copied in, then removed again
    assert target.integrity_check() == "ok"
    formats.import_mevis(target, src)  # and the same import then works
    assert len(target.list_media()) == 3


def test_importing_media_the_project_has_reuses_it(source, tmp_path):
    """The same dataset twice: the media are the same files (by content), expressions are added."""
    src, _ = exported("ytvos", source, tmp_path)
    with ProjectStore(tmp_path / "twice.sqlite") as store:
        formats.import_ytvos(store, src)
        report = formats.import_ytvos(store, src)
        assert len(store.list_media()) == 2 and len(store.list_expressions()) == 8
        assert any("new labels" in n for n in report.notes)
        labels = sorted(o["label"] for o in store.all_objects() if o["media_id"] == store.list_media()[0]["id"])
        assert labels == list(range(1, 9))


def test_export_refuses_a_folder_that_is_not_an_earlier_export(source, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(FormatError, match="not an earlier FlowLabel export"):
        formats.export_ytvos(source, out)
    assert (out / "thesis.tex").read_text() == "years of work"
    formats.export_ytvos(source, tmp_path / "again")
    formats.export_ytvos(source, tmp_path / "again")  # an earlier export is replaced
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".again")]


def test_too_many_objects_for_a_palette_png(source, tmp_path):
    e = source.list_expressions()[0]["id"]
    for _ in range(255):
        source.add_object(e)
    with pytest.raises(FormatError, match="1..255"):
        formats.export_ytvos(source, tmp_path / "yt")
    assert not (tmp_path / "yt").exists()
    formats.export_mevis(source, tmp_path / "mv")  # MeViS has no such limit


@pytest.mark.parametrize("fmt, env, value, words", [
    ("coco", "FLOWLABEL_MAX_FRAMES", 5, ["frame_index must be an integer in 0..4"]),
    ("ytvos", "FLOWLABEL_MAX_FRAMES", 5, ["videos['clip']", "6 frames in one video is over the limit of 5",
                                                "FLOWLABEL_MAX_FRAMES"]),
    ("mevis", "FLOWLABEL_MAX_OBJECTS", 1, ["videos['clip']", "4 objects in one image or video is over the limit of 1",
                                           "FLOWLABEL_MAX_OBJECTS"]),
    ("refcoco", "FLOWLABEL_MAX_OBJECTS", 1, ["images[0]", "3 objects", "over the limit of 1", "FLOWLABEL_MAX_OBJECTS"]),
    ("refcoco", "FLOWLABEL_MAX_PIXELS", 1000, ["images[0]", "1,200 pixels", "limit of 1,000"]),
])
def test_limits_are_named_and_can_be_raised(fmt, env, value, words, source, target, tmp_path, monkeypatch):
    src, _ = exported(fmt, source, tmp_path)
    before = state(target)
    monkeypatch.setenv(env, str(value))
    with pytest.raises(FormatError) as info:
        formats.get(fmt).import_(target, src)
    for word in words:
        assert word in str(info.value), f"{word!r} not in:\n{info.value}"
    assert state(target) == before
    monkeypatch.setenv(env, str(10**9))  # raised: the same dataset imports
    formats.get(fmt).import_(target, src)
    assert len(target.list_media()) > 1
