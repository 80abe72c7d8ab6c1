"""Exports of awkward projects: EXIF-turned photos, names past 255 bytes, object order and
category ids kept through round trips."""
import json

import numpy as np
import pytest
from PIL import Image

from app import formats
from app.formats._base import MAX_STEM_BYTES
from app.media.files import FrameReader
from tests.formats.test_formats_common import box, canon, fresh, load, source  # noqa: F401 (fixtures)
from tests.formats.test_formats_roundtrip import export_import
from tests.helpers.field_loaders import pycocotools_masks

FOLDER_FORMATS = ["refcoco", "ytvos", "mevis"]
KINDS = {"coco": ("image", "video"), "refcoco": ("image",), "ytvos": ("video",), "mevis": ("video",)}


def exif_turned_jpeg(path, orientation=6):
    """A 40x30 JPEG (a white block top left) whose EXIF tag says: turn it 90 degrees to show it."""
    pixels = np.zeros((30, 40, 3), np.uint8)
    pixels[:10, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif.tobytes(), quality=95)


@pytest.mark.parametrize("fmt", ["coco", "refcoco"])
def test_exif_turned_images_are_written_as_declared(fmt, fresh, tmp_path):
    exif_turned_jpeg(tmp_path / "photo.jpg")
    store = fresh("photos")
    media = store.add_media(tmp_path / "photo.jpg")
    assert (media["width"], media["height"]) == (30, 40)  # the project shows it turned
    e = store.add_expression(media["id"], "the white block")["id"]
    mask = box(40, 30, 0, 20, 20, 30)
    store.save_mask(e, 0, mask)
    out = tmp_path / fmt
    if fmt == "coco":
        formats.export_coco(store, out / "coco.json", images_dir=out / "images")
        instances = out / "coco.json"
    else:
        formats.export_refcoco(store, out)
        instances = out / "instances.json"
    image = load(instances)["images"][0]
    with Image.open(out / "images" / image["file_name"]) as written:  # Pillow ignores EXIF orientation
        assert written.size == (image["width"], image["height"]) == (30, 40)
        assert written.getexif().get(0x0112) in (None, 1)
        pixels = np.asarray(written.convert("RGB"), np.int16)
    shown = FrameReader(store.media_dir / media["path"], "image", 1).read(0).astype(np.int16)
    assert np.abs(pixels - shown).mean() < 2  # the same picture, up to JPEG
    assert np.array_equal(next(iter(pycocotools_masks(instances).values())).astype(bool), mask)
    target = fresh("again")
    formats.get(fmt).import_(target, instances if fmt == "coco" else out)
    assert canon(target) == canon(store)


def test_images_without_orientation_are_still_copied_byte_for_byte(source, tmp_path):
    formats.export_refcoco(source, tmp_path / "rc")
    assert (tmp_path / "rc" / "images" / "still.png").read_bytes() == (tmp_path / "media" / "still.png").read_bytes()


@pytest.fixture
def long_names(source, tmp_path):
    """The shared project, its media renamed past 255 bytes (two share their first 300)."""
    long = "é" * 150 + "x" * 150  # 450 bytes of UTF-8
    names = [f"{long}-a.avi", f"{long}-b.mp4", f"{long}.png", "z" * 400 + ".png"]
    for m, name in zip(source.list_media(), names):
        source.db.execute("UPDATE media SET name = ? WHERE id = ?", [name, m["id"]])
    return source


@pytest.mark.parametrize("fmt", ["coco", *FOLDER_FORMATS])
def test_names_past_255_bytes_export_and_round_trip(fmt, long_names, fresh, tmp_path):
    target = fresh()
    _, report, out = export_import(fmt, long_names, target, tmp_path, "long")
    assert canon(target) == canon(long_names, KINDS[fmt])
    for path in out.parent.rglob("*"):
        assert len(path.name.encode()) <= MAX_STEM_BYTES + 10, path.name
    again = export_import(fmt, long_names, fresh("again"), tmp_path, "long-again")[2]
    assert written(out) == written(again) and len(written(out)) > 5  # the same names every time


def written(out):
    root = out.parent if out.suffix == ".json" else out
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.name != "flowlabel_export.json")


def objects_in_order(store, kinds):
    """Per media: its objects as (label, category) by label, and per expression its objects' labels."""
    out = []
    for m in store.list_media():
        if m["kind"] not in kinds:
            continue
        objects = sorted((o["label"], o["category"]) for o in store.all_objects() if o["media_id"] == m["id"])
        exprs = [[o["label"] for o in store.list_objects(e["id"])] for e in store.list_expressions(m["id"])]
        out.append((objects, exprs))
    return out


@pytest.mark.parametrize("fmt", ["coco", *FOLDER_FORMATS])
def test_object_order_and_categories_survive_round_trips(fmt, source, fresh, tmp_path):
    target = fresh()
    export_import(fmt, source, target, tmp_path, "order")
    assert objects_in_order(target, KINDS[fmt]) == objects_in_order(source, KINDS[fmt])


@pytest.mark.parametrize("fmt", ["coco", "refcoco"])
def test_category_ids_of_a_dataset_are_kept(fmt, fresh, tmp_path):
    """A COCO file whose categories are 7 (dog) and 3 (person) exports them as 7 and 3 again."""
    root = tmp_path / "foreign"
    (root / "images").mkdir(parents=True)
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(root / "images" / "a.png")
    rle = {"size": [20, 30], "counts": [20, 40, 540]}  # column-major: 20 off, 40 on, the rest off
    data = {"images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 7, "segmentation": rle},
                            {"id": 2, "image_id": 1, "category_id": 3, "segmentation": rle}],
            "categories": [{"id": 3, "name": "person"}, {"id": 7, "name": "dog"}]}
    (root / "instances.json").write_text(json.dumps(data))
    store = fresh()
    formats.import_coco(store, root / "instances.json")
    e = store.add_expression(store.list_media()[0]["id"], "a new thing", category="cat")["id"]
    store.save_mask(e, 0, box(20, 30, 0, 2, 0, 2))
    out = tmp_path / "out"
    if fmt == "coco":
        formats.export_coco(store, out / "coco.json")
        exported = load(out / "coco.json")
    else:
        formats.export_refcoco(store, out)
        exported = load(out / "instances.json")
    assert {c["name"]: c["id"] for c in exported["categories"]} == {"person": 3, "dog": 7, "cat": 8}
    by_label = {a["track_id"]: a["category_id"] for a in exported["annotations"]}
    assert by_label == {1: 7, 2: 3, 3: 8}  # annotation order kept as object order
