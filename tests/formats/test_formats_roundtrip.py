"""Every format: export -> import into a new project -> export gives the same masks and expressions."""
import json
import pickle

import cv2
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from app import formats
from app.formats import _frames
from app.media.files import FrameReader
from tests.formats.test_formats_common import canon, fresh, load, source  # noqa: F401 (fixtures)

VIDEOS, IMAGES, ALL = ("video",), ("image",), ("image", "video")


def export_import(fmt, store, target, tmp_path, name):
    """Export `store` as fmt under tmp_path/name; import it into target; returns (report, path)."""
    if fmt.startswith("coco"):
        out, images = tmp_path / name / "coco.json", tmp_path / name / "images"
        report = formats.get(fmt).export(store, out, images_dir=images)
        imported = formats.get(fmt).import_(target, out)  # images/ beside the json is the default
    else:
        out = tmp_path / name
        report = formats.get(fmt).export(store, out)
        imported = formats.get(fmt).import_(target, out)
    return report, imported, out


@pytest.mark.parametrize("fmt, kinds", [("coco", ALL), ("refcoco", IMAGES), ("ytvos", VIDEOS),
                                        ("mevis", VIDEOS)])
def test_round_trip_is_exact(fmt, kinds, source, fresh, tmp_path):
    first = fresh("first")
    _, report, out1 = export_import(fmt, source, first, tmp_path, "export1")
    assert canon(first) == canon(source, kinds)
    assert report.read["media"] == len(canon(source, kinds))
    second = fresh("second")
    export_import(fmt, first, second, tmp_path, "export2")
    assert canon(second) == canon(source, kinds)
    same_files(fmt, out1, tmp_path / "export2")


def same_files(fmt, a, b):
    """The two exports hold the same masks (decoded) and the same expressions."""
    if fmt == "coco":
        a, b = a, b / "coco.json"
        assert coco_content(load(a)) == coco_content(load(b))
    elif fmt == "refcoco":
        assert coco_content(load(a / "instances.json"), load(a / "refs.json")) == \
            coco_content(load(b / "instances.json"), load(b / "refs.json"))
        with open(a / "refs(unc).p", "rb") as f:  # the refs refer.py can index: those with a mask
            assert pickle.load(f) == [r for r in load(a / "refs.json") if r["ann_id"] is not None]
    elif fmt == "ytvos":
        assert load(a / "meta_expressions.json") == load(b / "meta_expressions.json")
        pngs = sorted(p.relative_to(a) for p in (a / "Annotations").rglob("*.png"))
        assert pngs == sorted(p.relative_to(b) for p in (b / "Annotations").rglob("*.png"))
        for p in pngs:
            assert np.array_equal(np.array(Image.open(a / p)), np.array(Image.open(b / p)))
    elif fmt == "mevis":
        assert mevis_content(a) == mevis_content(b)


def ann_mask(ann, image):
    """As pycocotools' annToMask: a list is polygons (merged), a dict is compressed RLE."""
    seg = ann["segmentation"]
    if isinstance(seg, list):
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, image["height"], image["width"])))
    return mask_utils.decode({"size": seg["size"], "counts": seg["counts"].encode()})


def coco_content(data, refs=None):
    files = {im["id"]: im["file_name"] for im in data["images"]}
    images = {im["id"]: im for im in data["images"]}
    cats = {c["id"]: c["name"] for c in data["categories"]}
    anns = sorted((files[a["image_id"]], cats[a["category_id"]], a["track_id"],
                   ann_mask(a, images[a["image_id"]]).tobytes())
                  for a in data["annotations"])
    ann_key = {a["id"]: (files[a["image_id"]], a["track_id"]) for a in data["annotations"]}
    refs = [(files[r["image_id"]], [s["raw"] for s in r["sentences"]], sorted(ann_key[i] for i in r["ann_ids"]))
            for r in (refs if refs is not None else data["refs"])]
    return sorted(files.values()), anns, refs


def mevis_content(folder):
    meta, masks = load(folder / "meta_expressions.json"), load(folder / "mask_dict.json")
    out = {}
    for vid, video in meta["videos"].items():
        exprs = [(e["exp"], e["obj_id"], [masks[a] for a in e["anno_id"]]) for e in video["expressions"].values()]
        out[vid] = (video["frames"], video["objects"], exprs)
    return out


def test_ytvos_palette_pngs_hold_several_objects_by_label(source, tmp_path):
    report = formats.export_ytvos(source, tmp_path / "yt")
    meta = load(tmp_path / "yt" / "meta_expressions.json")
    clip = meta["videos"]["clip"]
    assert clip["frames"] == [f"{i:05d}" for i in range(6)]
    assert [e["exp"] for e in clip["expressions"].values()] == [
        "the square moving right", "both dots at the bottom", "the shadow, not drawn yet"]
    assert clip["expressions"]["1"] == {"exp": "both dots at the bottom", "obj_id": "2", "obj_ids": ["2", "3"]}
    png = Image.open(tmp_path / "yt" / "Annotations" / "clip" / "00002.png")
    assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]  # DAVIS palette: id 1 dark red
    ids = np.array(png)
    assert sorted(np.unique(ids)) == [0, 1, 3]  # the square and the second dot on frame 2
    assert (ids == 3).sum() == 4 * 6
    assert any("several objects" in w for w in report.warnings)
    assert any("image media skipped" in w for w in report.warnings)


def test_mevis_writes_multi_object_expressions(source, tmp_path):
    formats.export_mevis(source, tmp_path / "mv")
    meta, masks = load(tmp_path / "mv" / "meta_expressions.json"), load(tmp_path / "mv" / "mask_dict.json")
    both = meta["videos"]["clip"]["expressions"]["1"]
    assert both["obj_id"] == [1, 2] and len(both["anno_id"]) == 2  # 0-based, as MeViS
    first, second = (masks[a] for a in both["anno_id"])
    assert len(first) == 6 and [f is None for f in second] == [True, True, False, True, True, True]
    assert mask_utils.area({"size": second[2]["size"], "counts": second[2]["counts"].encode()}) == 24


def test_imported_frames_are_exactly_the_jpeg_files(source, fresh, tmp_path):
    target = fresh()
    report = formats.export_ytvos(source, tmp_path / "yt")
    imported = formats.import_ytvos(target, tmp_path / "yt")
    assert any("FFV1" in n for n in imported.notes) and report.written["frames"] == 10
    media = target.list_media()[0]
    assert target.media_file(media["id"]).suffix == ".avi" and media["fps"] == pytest.approx(10.0)
    reader = FrameReader(target.media_file(media["id"]), "video", media["frames"])
    for i in (0, 3, 5, 1):  # seeking too
        jpeg = cv2.cvtColor(cv2.imread(str(tmp_path / "yt" / "JPEGImages" / "clip" / f"{i:05d}.jpg")),
                            cv2.COLOR_BGR2RGB)
        assert np.array_equal(reader.read(i), jpeg)
    reader.close()


def test_refcoco_pickle_is_python2_readable_and_images_are_copied(source, tmp_path):
    report = formats.export_refcoco(source, tmp_path / "rc")
    with open(tmp_path / "rc" / "refs(unc).p", "rb") as f:
        assert f.read(2) == b"\x80\x02"  # protocol 2
    refs = load(tmp_path / "rc" / "refs.json")
    assert [r["sentences"][0]["raw"] for r in refs] == ["the ring", "the two corners", "Le café, à gauche"]
    assert refs[0]["split"] == "train" and refs[0]["sentences"][0]["sent"] == "the ring"
    names = [im["file_name"] for im in load(tmp_path / "rc" / "instances.json")["images"]]
    assert len(set(names)) == 2 and "still.png" in names  # the two still.png get different names
    assert (tmp_path / "rc" / "images" / "still.png").read_bytes() == \
        (tmp_path / "media" / "still.png").read_bytes()
    assert any("video(s) skipped" in w for w in report.warnings)


def test_foreign_ytvos_keeps_ids_shares_objects_and_skips_harmlessly(fresh, tmp_path):
    """A dataset as Ref-YouTube-VOS ships it: sparse frame names, ids with gaps, two
    expressions per object, a frame without a PNG, an object no expression names."""
    root = tmp_path / "ytvos"
    frames = ["00000", "00005", "00010"]
    (root / "JPEGImages" / "v1").mkdir(parents=True)
    (root / "Annotations" / "v1").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in frames:
        cv2.imwrite(str(root / "JPEGImages" / "v1" / f"{name}.jpg"), rng.integers(0, 255, (20, 30, 3), np.uint8))
    ids = np.zeros((20, 30), np.uint8)
    ids[2:6, 2:6], ids[10:15, 10:20], ids[0:2, 25:30] = 2, 5, 7
    from app.formats.ytvos import write_palette_png
    write_palette_png(root / "Annotations" / "v1" / "00000.png", ids)
    write_palette_png(root / "Annotations" / "v1" / "00010.png", np.where(ids == 5, 5, 0).astype(np.uint8))
    (root / "meta_expressions.json").write_text(
        '{"videos": {"v1": {"expressions": {"0": {"exp": "a cat", "obj_id": "2"}, '
        '"1": {"exp": "the  big\\ndog", "obj_id": "5"}, "2": {"exp": "the cat on the left", "obj_id": "2"}}, '
        '"frames": ["00000", "00005", "00010"]}}}')
    target = fresh()
    report = formats.import_ytvos(target, root)
    assert report.read == {"media": 1, "expressions": 3, "objects": 2, "masks": 3}
    skipped = dict(report.skipped)
    assert "no Annotations PNG" in skipped["videos['v1']"] and "no expression" in skipped["videos['v1'] object 7"]
    assert [e["text"] for e in target.list_expressions()] == ["a cat", "the big dog", "the cat on the left"]
    assert [o["label"] for o in target.all_objects()] == [2, 5]
    e = target.list_expressions()
    assert [o["id"] for o in target.list_objects(e[0]["id"])] == [o["id"] for o in target.list_objects(e[2]["id"])]
    assert np.array_equal(target.get_mask(e[1]["id"], 2), ids == 5)
    assert not target.get_mask(e[1]["id"], 1).any()
    # Exported again: the same ids, on every frame (an empty PNG where there was none).
    formats.export_ytvos(target, tmp_path / "again")
    again = np.array(Image.open(tmp_path / "again" / "Annotations" / "v1" / "00000.png"))
    assert np.array_equal(again, np.where(ids == 7, 0, ids))
    assert load(tmp_path / "again" / "meta_expressions.json")["videos"]["v1"]["expressions"]["2"]["obj_id"] == "2"


def test_foreign_mevis_zero_based_ids_int_anno_ids(fresh, tmp_path):
    root = tmp_path / "mevis"
    (root / "JPEGImages" / "v").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(root / "JPEGImages" / "v" / f"{i:05d}.jpg"), np.full((16, 24, 3), 40 * i, np.uint8))
    a = np.zeros((16, 24), bool)
    a[1:5, 1:5] = True
    b = np.zeros((16, 24), bool)
    b[3:9, 3:9] = True  # overlaps a: MeViS keeps both

    def enc(m):
        return {"size": [16, 24], "counts": mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))["counts"].decode()}
    (root / "mask_dict.json").write_text(json.dumps(
        {"10": [enc(a), None, enc(a)], "11": [None, enc(b), enc(b)], "99": [None, None, None]}))
    (root / "meta_expressions.json").write_text(json.dumps({"videos": {"v": {
        "expressions": {"0": {"exp": "two birds", "obj_id": [0, 1], "anno_id": [10, 11]},
                        "1": {"exp": "the first bird", "obj_id": [0], "anno_id": ["10"]}},
        "frames": ["00000", "00001", "00002"]}}}))
    target = fresh()
    report = formats.import_mevis(target, root / "meta_expressions.json")
    assert report.read == {"media": 1, "expressions": 2, "objects": 2, "masks": 4}
    assert "anno_id" in dict(report.skipped)["mask_dict.json"]
    two, first = target.list_expressions()
    objects = target.list_objects(two["id"])
    assert [o["label"] for o in objects] == [1, 2]
    assert [o["id"] for o in target.list_objects(first["id"])] == [objects[0]["id"]]
    assert np.array_equal(target.get_mask(two["id"], 1, object_id=objects[1]["id"]), b)
    formats.export_mevis(target, tmp_path / "again")
    again = load(tmp_path / "again" / "meta_expressions.json")["videos"]["v"]["expressions"]["0"]
    assert again["obj_id"] == [0, 1]


def test_foreign_refcoco_python2_pickle_several_sentences(fresh, tmp_path):
    from tests.formats.test_formats_common import py2_pickle
    root = tmp_path / "refcoco"
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "COCO_1.jpg"), np.full((20, 30, 3), 90, np.uint8))
    cv2.imwrite(str(root / "images" / "COCO_2.jpg"), np.full((20, 30, 3), 90, np.uint8) + 1)
    square = [5.0, 5.0, 15.0, 5.0, 15.0, 15.0, 5.0, 15.0]
    (root / "instances.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "COCO_1.jpg", "width": 30, "height": 20},
                   {"id": 2, "file_name": "COCO_2.jpg", "width": 30, "height": 20},
                   {"id": 3, "file_name": "not_there.jpg", "width": 30, "height": 20}],
        "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "segmentation": [square], "iscrowd": 0},
                        {"id": 8, "image_id": 1, "category_id": 1, "segmentation": [square], "iscrowd": 0},
                        {"id": 9, "image_id": 3, "category_id": 1, "segmentation": [square], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "person"}]}))
    refs = [{"ref_id": 1, "ann_id": 7, "image_id": 1, "category_id": 1, "split": "train",
             "file_name": "COCO_1_7.jpg", "sent_ids": [1, 2],
             "sentences": [{"sent_id": 1, "sent": "man in red", "raw": "Man in red", "tokens": ["man"]},
                           {"sent_id": 2, "sent": "gar\xe7on", "raw": "gar\xe7on", "tokens": []}]}]
    (root / "refs(unc).p").write_bytes(py2_pickle(refs))
    target = fresh()
    report = formats.import_refcoco(target, root)
    assert report.read["media"] == 1 and report.read["expressions"] == 2
    assert [e["text"] for e in target.list_expressions()] == ["Man in red", "gar\xe7on"]
    skipped = dict(report.skipped)
    assert "no ref" in skipped["images"] and "no ref" in skipped["annotations"]
    mask = target.get_mask(target.list_expressions()[0]["id"], 0)
    assert mask[5:15, 5:15].all() and mask.sum() == 100


def test_plain_coco_without_refs_gets_one_expression_per_object(fresh, tmp_path):
    (tmp_path / "c").mkdir()
    cv2.imwrite(str(tmp_path / "c" / "a.png"), np.zeros((10, 12, 3), np.uint8))
    m = np.zeros((10, 12), np.uint8)
    m[2:5, 3:9] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    (tmp_path / "c" / "coco.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.png", "width": 12, "height": 10}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 2, "iscrowd": 0,
             "segmentation": {"size": [10, 12], "counts": rle["counts"].decode()}},
            {"id": 2, "image_id": 1, "category_id": 2, "iscrowd": 1,  # uncompressed RLE, as crowds use
             "segmentation": {"size": [10, 12], "counts": [20, 10, 90]}}],
        "categories": [{"id": 2, "name": "cup"}]}))
    target = fresh()
    report = formats.import_coco(target, tmp_path / "c" / "coco.json")
    assert [e["text"] for e in target.list_expressions()] == ["cup", "cup"]
    assert any("no refs" in n for n in report.notes)
    first, second = target.list_expressions()
    assert np.array_equal(target.get_mask(first["id"], 0), m.astype(bool))
    assert target.get_mask(second["id"], 0).T.ravel()[20:30].all() and target.get_mask(second["id"], 0).sum() == 10


def test_frames_from_exports_are_written_with_the_chosen_quality(source, tmp_path):
    formats.export_ytvos(source, tmp_path / "hq", jpeg_quality=100)
    formats.export_ytvos(source, tmp_path / "lq", jpeg_quality=30)
    hq = (tmp_path / "hq" / "JPEGImages" / "clip" / "00000.jpg").stat().st_size
    lq = (tmp_path / "lq" / "JPEGImages" / "clip" / "00000.jpg").stat().st_size
    assert hq > lq
    assert _frames.frame_name(7) == "00007"
